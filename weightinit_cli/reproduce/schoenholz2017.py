"""Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, Deep information propagation
(ICLR): a deep tanh net trains near the order-to-chaos critical line σ_w²* and not far
from it, where the correlation depth scale ξ_c is short: nets train up to about 6·ξ_c
layers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..plots import Chart
from .finding import Finding, Reproduction, compare_at, learned

if TYPE_CHECKING:
    from ..config import Config


def run(cfg: Config, fast: bool) -> Finding:
    from ..experiments import load_dataset
    from ..meanfield import criticality

    bias_var = cfg.init.params.get("bias_var", 0.05)
    line = criticality(cfg.model.activation, bias_var).critical_weight_var
    weight_vars = [0.5, line, 5.0] if fast else [0.5, 1.0, line, 2.5, 5.0]
    states = {
        w: criticality(cfg.model.activation, bias_var, w, critical_weight_var=line)
        for w in weight_vars
    }
    depths = [cfg.model.depth] if fast else [20, cfg.model.depth, 100]
    data = load_dataset(cfg)
    rows: list[dict[str, Any]] = []
    charts, verdicts = {}, []
    for depth in depths:
        methods = [
            ("variance_scaling", {**cfg.init.params, "scale": w, "bias_var": bias_var})
            for w in weight_vars
        ]
        result = compare_at(cfg, methods, data, f"model.depth={depth}")
        histories = {}
        for w, method_run in zip(weight_vars, result.runs, strict=True):
            state = states[w]
            trained = learned(method_run.train, cfg)
            predicted = depth < 6 * state.depth_scale_c
            verdicts.append(trained == predicted)
            rows.append(
                {
                    "depth": depth,
                    "σ_w²": w,
                    "phase": state.phase(),
                    "ξ_c": state.depth_scale_c,
                    "6·ξ_c > depth": predicted,
                    "final loss": method_run.train.final_loss,
                    "trained": trained,
                }
            )
            histories[f"σ_w²={w:.3g} ({state.phase()})"] = method_run.train
        charts[f"schoenholz2017_depth{depth}.png"] = Chart(
            "loss_curves",
            {
                "histories": histories,
                "title": f"Schoenholz et al. 2017: tanh, depth {depth}, σ_b²={bias_var}",
            },
        )
    # The 6·ξ_c rule is a boundary, not a sharp law: it must call at least 90% of runs.
    agree = sum(verdicts) >= 0.9 * len(verdicts)
    trained_at = sorted({f"{r['σ_w²']:.3g}" for r in rows if r["trained"]})
    measured = (
        f"critical σ_w² = {line:.3f} (σ_b² = {bias_var}); trained (loss below chance − 0.4) "
        f"at σ_w² {', '.join(trained_at) or 'none'}; the 6·ξ_c depth rule predicted "
        f"{sum(verdicts)} of {len(verdicts)} runs"
    )
    return REPRODUCTION.finding(measured, agree, rows, charts)


REPRODUCTION = Reproduction(
    "schoenholz2017",
    "Schoenholz et al. 2017",
    "a deep tanh net trains near the order-to-chaos critical line σ_w²* and not far "
    "from it, where the correlation depth scale ξ_c is short: nets train up to about "
    "6·ξ_c layers (the rule must call at least 90% of the runs)",
    run,
)
