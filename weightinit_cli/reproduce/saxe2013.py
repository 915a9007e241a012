"""Saxe, McClelland & Ganguli 2014, Exact solutions to the nonlinear dynamics of learning
in deep linear neural networks (ICLR): orthogonal init learns a deep linear net in a
number of steps that does not grow with depth; a scaled Gaussian slows down with depth."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..plots import Chart
from .finding import Finding, Reproduction, compare_at

if TYPE_CHECKING:
    from ..config import Config

METHODS = [("orthogonal", {}), ("lecun_normal", {})]


def run(cfg: Config, fast: bool) -> Finding:
    from ..experiments import load_dataset

    depths = [8, 32, 64] if fast else [8, 16, 32, 64]
    data = load_dataset(cfg)
    steps: dict[str, list[int | None]] = {m: [] for m, _ in METHODS}
    rows: list[dict[str, Any]] = []
    for depth in depths:
        for method_run in compare_at(cfg, METHODS, data, f"model.depth={depth}").runs:
            reached = method_run.train.steps_to_target
            steps[method_run.method].append(reached)
            rows.append({"depth": depth, "init": method_run.method, "steps to target": reached})
    never = cfg.train.steps * 2  # a run that never reaches the target counts as slower
    orth = [s if s is not None else never for s in steps["orthogonal"]]
    gauss = [s if s is not None else never for s in steps["lecun_normal"]]
    agree = orth[-1] <= 1.25 * orth[0] and gauss[-1] >= 2 * gauss[0]
    measured = (
        f"steps to the target loss at depths {depths}: orthogonal {steps['orthogonal']}, "
        f"scaled Gaussian {steps['lecun_normal']}"
    )
    chart = Chart(
        "steps_against",
        {
            "xs": depths,
            "series": {
                "orthogonal": steps["orthogonal"],
                "scaled Gaussian (lecun_normal)": steps["lecun_normal"],
            },
            "x_label": "depth",
            "ceiling": cfg.train.steps,
            "title": "Saxe et al. 2014: deep linear nets",
        },
    )
    return REPRODUCTION.finding(measured, agree, rows, {"saxe2013.png": chart})


REPRODUCTION = Reproduction(
    "saxe2013",
    "Saxe et al. 2014",
    "in deep linear nets, orthogonal init converges in a number of steps that does "
    "not grow with depth, while a scaled Gaussian init slows down with depth",
    run,
)
