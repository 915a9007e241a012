"""He, Zhang, Ren & Sun 2015, Delving deep into rectifiers (ICCV): a 30-layer ReLU net
with Xavier init stalls at the class-prior loss while He init trains; in a shallower net
both train, He sooner."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..plots import Chart
from .finding import Finding, Reproduction, compare_at, learned

if TYPE_CHECKING:
    from ..config import Config

METHODS = [("xavier_normal", {}), ("he_normal", {})]


def run(cfg: Config, fast: bool) -> Finding:
    from ..experiments import load_dataset

    chance = math.log(cfg.model.num_classes)
    # The shallow net gets twice the steps: both inits train there, He sooner.
    depths = {"deep": cfg.model.depth, "shallow": 6}
    steps = {"deep": cfg.train.steps, "shallow": 2 * cfg.train.steps}
    data = load_dataset(cfg)
    rows: list[dict[str, Any]] = []
    charts, results = {}, {}
    for label, depth in depths.items():
        result = compare_at(
            cfg, METHODS, data, f"model.depth={depth}", f"train.steps={steps[label]}"
        )
        results[label] = {run.method: run.train for run in result.runs}
        for method_run in result.runs:
            rows.append(
                {
                    "net": f"{label} ({depth} layers)",
                    "init": method_run.method,
                    "final loss": method_run.train.final_loss,
                    "steps to target": method_run.train.steps_to_target,
                }
            )
        charts[f"he2015_{label}.png"] = Chart(
            "loss_curves",
            {"histories": results[label], "title": f"He et al. 2015: {depth} layers"},
        )
    deep, shallow = results["deep"], results["shallow"]
    stalls = deep["xavier_normal"].final_loss > chance - 0.05
    he_trains = learned(deep["he_normal"], cfg)
    both = all(h.steps_to_target is not None for h in shallow.values())
    he_faster = (
        both and shallow["he_normal"].steps_to_target < shallow["xavier_normal"].steps_to_target
    )
    measured = (
        f"{depths['deep']} layers: xavier ends at {deep['xavier_normal'].final_loss:.3f} "
        f"(chance {chance:.3f}), he at {deep['he_normal'].final_loss:.3f}; 6 layers: "
        f"target reached at step {shallow['xavier_normal'].steps_to_target} (xavier) and "
        f"{shallow['he_normal'].steps_to_target} (he)"
    )
    return REPRODUCTION.finding(measured, stalls and he_trains and he_faster, rows, charts)


REPRODUCTION = Reproduction(
    "he2015",
    "He et al. 2015",
    "a 30-layer ReLU net with Xavier init stalls at the class-prior loss while He "
    "init trains; in a shallower (6-layer) net both train but He is faster",
    run,
)
