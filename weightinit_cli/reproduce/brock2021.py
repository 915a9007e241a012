"""Brock, De & Smith 2021, Characterizing signal propagation to close the performance gap
in unnormalized ResNets (ICLR): the signal propagation plot of a BN-ReLU-Conv
pre-activation ResNet at init. Within a stage the average channel variance grows linearly
with depth, and it is reset at each transition block (their Figure 1, ResNetV2-600).

Theory (their Section 4.1): a conv z = W·g(x) of ReLU outputs g of unit Gaussians has, per
channel i, mean N·μ_g·μ_Wi and variance N·σ_g²·(σ_Wi² + μ_Wi²), with μ_g = 1/√(2π) and
σ_g² = (1 − 1/π)/2 for ReLU (μ_Wi, σ_Wi²: the mean and variance of the N weights of row
i). Under He init (N·E[W²] = 2) each branch, ending in a conv of ReLU(BN(·)), adds
1 − 1/π ≈ 0.68 to the average channel variance and 1/π ≈ 0.32 to the average squared
channel mean: 1 in all to E[x²] per block. The skip adds its input's unchanged (the two
are uncorrelated at init), so the variance grows linearly. A transition block's skip is a
projection of the normalized input it shares with the branch, which forgets the stream:
block k of a stage (k = 1 the transition) has variance (k + 1)(1 − 1/π) and squared mean
(k + 1)/π.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from ..plots import Chart
from .finding import Finding, Reproduction

if TYPE_CHECKING:
    from ..config import Config
    from ..spp import SppBlock

BRANCH_VARIANCE = 1 - 1 / math.pi  # what one branch adds to the average channel variance
BRANCH_MEAN_SQUARE = 1 / math.pi  # and to the average squared channel mean
FAST_BLOCKS = 4  # per stage, on 16x16 inputs
FAST_SHAPE = [3, 16, 16]
TOLERANCE = 0.1  # relative, for each block's variance and each stage's slope


def shortened(cfg: Config, blocks: int, input_shape: list[int], batch_size: int) -> Config:
    """The config's network with only the first `blocks` residual blocks of each stage (a
    stage opens with a block that has a skip projection), on smaller inputs."""
    from ..loading import config_data, config_from_data

    data = config_data(cfg)
    kept, in_stage = [], 0
    for layer in data["model"]["layers"]:
        if layer["type"] == "residual":
            in_stage = 1 if layer.get("skip") else in_stage + 1
            if in_stage > blocks:
                continue
        kept.append(layer)
    data["model"].update(layers=kept, input_shape=input_shape)
    data["train"]["batch_size"] = batch_size
    return config_from_data(data)


def stages(cfg: Config) -> list[int]:
    """The stage (1-based) of each top-level residual block."""
    stage, out = 0, []
    for layer in cfg.model.plan.layers:
        if layer.kind == "residual":
            stage += layer.skip is not None
            out.append(max(stage, 1))
    return out


def slope(ys: list[float]) -> float:
    """The least-squares slope of ys against 1, 2, ..."""
    xs = range(1, len(ys) + 1)
    mx, my = sum(xs) / len(ys), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def measure(cfg: Config) -> list[SppBlock]:
    """The config's network under its init, one forward pass on its first batch."""
    from ..experiments import first_batch, initialized, load_dataset
    from ..spp import residual_blocks

    data = load_dataset(cfg)
    model, _ = initialized(cfg, cfg.init.spec, data)
    x, _ = first_batch(data, cfg.train.batch_size, "cpu")
    return residual_blocks(model, x, cfg.model.plan)


def run(cfg: Config, fast: bool) -> Finding:
    if fast:
        cfg = shortened(cfg, FAST_BLOCKS, FAST_SHAPE, 64)
    blocks = measure(cfg)
    rows: list[dict[str, Any]] = []
    in_stage = 0
    for block, stage in zip(blocks, stages(cfg), strict=True):
        in_stage = 1 if not rows or rows[-1]["stage"] != stage else in_stage + 1
        rows.append(
            {
                "stage": stage,
                "block": in_stage,
                "channel mean²": block.channel_squared_mean,
                "theory mean²": (in_stage + 1) * BRANCH_MEAN_SQUARE,
                "channel variance": block.channel_variance,
                "theory variance": (in_stage + 1) * BRANCH_VARIANCE,
                "branch variance": block.residual_variance,
            }
        )
    by_stage: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_stage.setdefault(row["stage"], []).append(row)
    slopes = {s: slope([r["channel variance"] for r in rs]) for s, rs in by_stage.items()}
    moment_slopes = {
        s: slope([r["channel variance"] + r["channel mean²"] for r in rs])
        for s, rs in by_stage.items()
    }
    worst = max(abs(r["channel variance"] / r["theory variance"] - 1) for r in rows)
    resets = [
        (before["channel variance"], after["channel variance"])
        for before, after in pairwise(rows)
        if after["block"] == 1
    ]
    agree = (
        worst <= TOLERANCE
        and all(abs(s / BRANCH_VARIANCE - 1) <= TOLERANCE for s in slopes.values())
        and all(after < 0.5 * before for before, after in resets)
    )
    slope_text = ", ".join(f"{s:.3f}" for s in slopes.values())
    moment_text = ", ".join(f"{s:.2f}" for s in moment_slopes.values())
    reset_text = "; ".join(f"{b:.2f} → {a:.2f}" for b, a in resets)
    measured = (
        f"{len(by_stage)} stages of {len(rows) // len(by_stage)} blocks: the average channel "
        f"variance grows by {slope_text} per block within each stage (theory 1 − 1/π = "
        f"{BRANCH_VARIANCE:.3f}; E[x²] by {moment_text}, theory 1) and is reset at each "
        f"transition ({reset_text}; theory 2(1 − 1/π) = {2 * BRANCH_VARIANCE:.2f}); every "
        f"block within {worst:.1%} of (k + 1)(1 − 1/π)"
    )
    predicted = {
        "channel_squared_mean": [r["theory mean²"] for r in rows],
        "channel_variance": [r["theory variance"] for r in rows],
        "residual_variance": [BRANCH_VARIANCE] * len(rows),
    }
    charts = {
        "brock2021_spp.png": Chart(
            "spp_plot",
            {
                "profiles": {cfg.init.method: blocks},
                "predicted": predicted,
                "title": "Brock et al. 2021: BN-ReLU-Conv ResNet at init",
            },
        )
    }
    return REPRODUCTION.finding(measured, agree, rows, charts)


REPRODUCTION = Reproduction(
    "brock2021_spp",
    "Brock et al. 2021",
    "in a BN-ReLU-Conv pre-activation ResNet at init (He), the average channel variance "
    "grows linearly within each stage, by the branch's 1 − 1/π ≈ 0.68 per block, and is "
    "reset at each transition block, whose skip projects the normalized input",
    run,
)
