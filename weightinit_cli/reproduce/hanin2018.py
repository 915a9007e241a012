"""Hanin & Rolnick 2018, How to start training: the effect of initialization and
architecture (NeurIPS): with He init, the spread of a ReLU net's output length grows with
the sum of reciprocal widths Σ1/n, not with depth or width alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..plots import Chart
from .finding import Finding, Reproduction

if TYPE_CHECKING:
    from ..config import Config


def output_length_spread(
    widths: list[int], seeds: int, input_dim: int, seed: int = 0
) -> tuple[float, float]:
    """(Var of log(|x_L|² / |x_0|²), fraction of dead nets) over random He-initialized ReLU
    nets, for one input. A dead net (output exactly 0) has no log length; it is counted
    apart. The nets are drawn with winit's scratch he_normal and run as one batched matmul
    per layer (nets along the batch dimension)."""
    import numpy as np
    import torch

    from .. import scratch

    rng = np.random.default_rng(seed)
    x0 = torch.from_numpy(rng.standard_normal(input_dim, dtype=np.float32))
    x = x0.expand(seeds, input_dim).unsqueeze(2)  # (nets, features, 1)
    fan_in = input_dim
    for width in widths:
        w = torch.from_numpy(scratch.he_normal((seeds * width, fan_in), rng=rng))
        x = torch.relu(torch.bmm(w.view(seeds, width, fan_in), x))
        fan_in = width
    ratio = x.squeeze(2).double().pow(2).sum(1) / x0.double().pow(2).sum()
    alive = ratio > 0
    return float(torch.log(ratio[alive]).var()), float(1 - alive.double().mean())


def run(cfg: Config, fast: bool) -> Finding:
    # Pairs with equal Σ1/n but different depth and width: (10, 32) and (40, 128);
    # (40, 32) and (20, 16).
    archs = [(10, 128), (10, 32), (40, 128), (20, 32), (40, 32), (20, 16), (40, 16)]
    if not fast:  # widths of 16 and up: width 8 is outside the asymptotic regime (dead nets)
        archs += [(80, 32), (80, 16), (60, 16)]
    seeds = 300 if fast else 2000
    rows = []
    for depth, width in archs:
        beta = depth / width
        spread, dead = output_length_spread(
            [width] * depth, seeds, cfg.model.input_shape[0], cfg.seed
        )
        rows.append(
            {
                "depth": depth,
                "width": width,
                "sum 1/n": beta,
                "Var log |x_L|²": spread,
                "dead nets": dead,
            }
        )
    rows.sort(key=lambda r: r["sum 1/n"])
    betas = [r["sum 1/n"] for r in rows]
    spreads = [r["Var log |x_L|²"] for r in rows]
    slope = sum(b * s for b, s in zip(betas, spreads, strict=True)) / sum(b * b for b in betas)
    levels: dict[float, list[float]] = {}
    for beta, spread in zip(betas, spreads, strict=True):
        levels.setdefault(beta, []).append(spread)
    means = [sum(v) / len(v) for _, v in sorted(levels.items())]
    monotone = all(a < b for a, b in zip(means, means[1:], strict=False))
    residual = max(abs(s - slope * b) / (slope * b) for b, s in zip(betas, spreads, strict=True))
    # Hanin & Rolnick: Var log |x_L|² ≈ 5 Σ1/n for wide enough layers.
    agree = monotone and residual < 0.35 and 3 < slope < 8
    by_arch = {(r["depth"], r["width"]): r["Var log |x_L|²"] for r in rows}
    measured = (
        f"Var log |x_L|² against Σ1/n: {'monotone' if monotone else 'not monotone'}, "
        f"slope {slope:.2f} through the origin (theory: 5), every architecture within "
        f"{residual:.0%} of "
        f"that line; at equal Σ1/n = 0.31, depth 10 x width 32 gives "
        f"{by_arch[(10, 32)]:.3f} and depth 40 x width 128 gives {by_arch[(40, 128)]:.3f}"
    )
    chart = Chart(
        "spread_against",
        {"betas": betas, "spreads": spreads, "slope": slope, "title": "Hanin & Rolnick 2018"},
    )
    return REPRODUCTION.finding(measured, agree, rows, {"hanin2018.png": chart})


REPRODUCTION = Reproduction(
    "hanin2018",
    "Hanin & Rolnick 2018",
    "with He init, the spread of the output length of a ReLU net grows with the sum "
    "of reciprocal widths Σ1/n, not with depth or width alone",
    run,
)
