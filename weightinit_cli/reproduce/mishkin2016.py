"""Mishkin & Matas 2016, All you need is a good init (ICLR): LSUV brings every layer of a
deep ReLU net to unit output variance, and the net trains."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..plots import Chart
from .finding import Finding, Reproduction, compare_at, learned

if TYPE_CHECKING:
    from ..config import Config


def run(cfg: Config, fast: bool) -> Finding:
    from ..experiments import load_dataset

    chance = math.log(cfg.model.num_classes)
    methods = [("lsuv", dict(cfg.init.params)), ("orthogonal", {})]
    result = compare_at(cfg, methods, load_dataset(cfg))
    lsuv, orthogonal = result.runs
    tol = lsuv.stats.init.layers[0].params["tol"]
    variances = [r.lsuv_variance for r in lsuv.stats.init.layers]
    measured_var = [layer.preactivation.std**2 for layer in lsuv.stats.layers]
    unit = all(abs(v - 1) <= tol for v in variances) and all(
        abs(v - 1) <= tol + 1e-6 for v in measured_var
    )
    trains = learned(lsuv.train, cfg)
    rows = [
        {
            "layer": record.name,
            "iterations": record.lsuv_iterations,
            "output variance": record.lsuv_variance,
        }
        for record in lsuv.stats.init.layers
    ]
    measured = (
        f"every one of {len(variances)} layers at output variance 1 ± {tol} "
        f"(range {min(variances):.3f}-{max(variances):.3f}, at most "
        f"{max(r['iterations'] for r in rows)} rescalings); final loss "
        f"{lsuv.train.final_loss:.3f} against chance {chance:.3f}, where the orthogonal "
        f"pre-init alone ends at {orthogonal.train.final_loss:.3f}"
    )
    charts = {
        "mishkin2016_profile.png": Chart(
            "std_profiles",
            {
                "profiles": {"lsuv": lsuv.stats.layers, "orthogonal": orthogonal.stats.layers},
                "title": "Mishkin & Matas 2016: LSUV vs its orthogonal pre-init",
            },
        ),
        "mishkin2016_loss.png": Chart(
            "loss_curves",
            {
                "histories": {"lsuv": lsuv.train, "orthogonal": orthogonal.train},
                "title": "30-layer ReLU MLP",
            },
        ),
    }
    return REPRODUCTION.finding(measured, unit and trains, rows, charts)


REPRODUCTION = Reproduction(
    "mishkin2016",
    "Mishkin & Matas 2016",
    "LSUV brings every layer of a 30-layer ReLU net to unit output variance, and the net trains",
    run,
)
