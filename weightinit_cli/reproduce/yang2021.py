"""Yang et al. 2021, Tensor Programs V: tuning large neural networks via zero-shot
hyperparameter transfer (µTransfer; arXiv 2203.03466, Fig. 1 and 3): under the standard
parametrization (SP) the learning rate that trains an MLP best moves with its width; under
the maximal update parametrization (µP) it stays put, so a narrow model's tuned lr is the
wide one's, and under µP wider is better at that lr.

Why: with Adam an update moves each weight by about lr whatever its gradient's size, so a
hidden layer's output moves by about lr·width under SP; the lr that keeps that step O(1)
falls as 1/width, three grid steps of log2 lr over 8x the width. µP divides the hidden
and readout layers' Adam lr by width/base_width (and rescales the readout), which makes the
step the same at every width (mup's MuAdam; parametrization.py).

The grid (widths x log2 lrs x seeds, under SP and µP) is trained here in-process, on one
torch thread per worker (parallel.py), and read by transfer.py as `winit transfer` reads
its sweep. An optimum must sit strictly inside the lr grid to count: at an edge the grid
did not bracket it, and its position says nothing about a shift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import WinitError
from ..plots import Chart
from .finding import Finding, Reproduction, with_overrides

if TYPE_CHECKING:
    from ..config import Config
    from ..transfer import TransferResult

WIDTHS = (64, 128, 256, 512)  # 8x, as the claim needs
LOG2_LRS = tuple(range(-12, -3))  # 2^-12 ... 2^-4: brackets every optimum, SP and µP
PARAMETRIZATIONS = ("sp", "mup")
FAST_STEPS = 40
FAST_SEEDS = 1
FULL_SEEDS = 3
SP_MIN_SHIFT = 2  # grid steps the SP optimum must move across the widths (the rule)
MUP_MAX_SHIFT = 1  # ... and the µP one may move at most


def transfer_grid(
    cfg: Config, parametrization: str, seeds: int, widths: Sequence[int] = WIDTHS
) -> TransferResult:
    """The config trained at every width x lr x seed under `parametrization` (µP against
    the narrowest width), read into transfer curves: mean final training loss per point."""
    from ..experiments import initialized, load_dataset
    from ..parallel import run_tasks
    from ..train import train
    from ..transfer import TransferResult, width_curves

    lrs = [2.0**k for k in LOG2_LRS]
    seed_values = [cfg.seed + k for k in range(seeds)]
    # one dataset per seed (its split), loaded before the workers fork and shared by them
    datasets = {seed: load_dataset(with_overrides(cfg, f"seed={seed}")) for seed in seed_values}
    points = [(w, lr, s) for w in widths for lr in lrs for s in seed_values]

    def task(index: int, log, stop) -> tuple[int, float, str, float]:
        width, lr, seed = points[index]
        run_cfg = with_overrides(
            cfg,
            f"seed={seed}",
            f"model.width={width}",
            f"train.lr={lr}",
            f"init.parametrization={parametrization}",
            f"model.base_width={widths[0]}",
        )
        data = datasets[seed]
        model, _ = initialized(run_cfg, run_cfg.init.spec, data)
        history = train(model, data, run_cfg.train, run_cfg.model.plan, seed=seed)
        return width, lr, history.status, history.final_loss

    records = run_tasks(task, len(points))
    return TransferResult(
        name=f"yang2021 {parametrization}",
        parametrization=parametrization,
        optimizer=cfg.train.optimizer,
        steps=cfg.train.steps,
        seeds=seeds,
        lrs=lrs,
        curves=width_curves(records, widths, lrs),
    )


def interior(result: TransferResult) -> bool:
    """Every width has an optimum, and none at an end of the lr grid."""
    last = len(result.lrs) - 1
    return all(c.best is not None and 0 < c.best < last for c in result.curves)


def wider_is_better(result: TransferResult) -> bool:
    """The widest width's loss at its optimal lr is below the narrowest's at its own."""
    narrow, wide = result.curves[0], result.curves[-1]
    if narrow.best is None or wide.best is None:
        return False
    return wide.cells[wide.best].loss < narrow.cells[narrow.best].loss  # type: ignore[operator]


def agrees(sp: TransferResult, mup: TransferResult) -> bool:
    """SP's optimum moves at least SP_MIN_SHIFT grid steps, µP's at most MUP_MAX_SHIFT,
    both bracketed by the grid, and under µP the widest beats the narrowest."""
    if not (interior(sp) and interior(mup)) or sp.shift is None or mup.shift is None:
        return False
    return sp.shift >= SP_MIN_SHIFT and mup.shift <= MUP_MAX_SHIFT and wider_is_better(mup)


def _optima(result: TransferResult) -> str:
    """'width 64: 2^-7 (loss 0.357), ...' for the finding's `measured`."""
    parts = []
    for c in result.curves:
        if c.best is None:
            parts.append(f"width {c.width}: no finite loss")
        else:
            log2 = round(math.log2(result.lrs[c.best]))
            parts.append(f"width {c.width}: 2^{log2} (loss {c.cells[c.best].loss:.3g})")
    return ", ".join(parts)


def optima_rows(results: dict[str, TransferResult]) -> list[dict[str, Any]]:
    """A row per parametrization and width: its optimal log2 lr, loss and grid index."""
    rows = []
    for p, result in results.items():
        for c in result.curves:
            best = c.best
            rows.append(
                {
                    "init": p,
                    "width": c.width,
                    "optimal log2 lr": None if best is None else math.log2(result.lrs[best]),
                    "optimal loss": None if best is None else c.cells[best].loss,
                    "grid index": best,
                }
            )
    return rows


def transfer_finding(
    reproduction: Reproduction,
    cfg: Config,
    fast: bool,
    network: str,
    widths: Sequence[int],
    fast_steps: int | None = None,
) -> Finding:
    """Train the grid under SP and µP and read the claim from it (yang2021 and its
    transformer arm): the fast version on one seed (and `fast_steps`, where given), the
    full one on three."""
    if fast and fast_steps is not None:
        cfg = with_overrides(cfg, f"train.steps={fast_steps}")
    if cfg.train.steps == 0:
        raise WinitError(
            f"train.steps: {reproduction.name} trains each of its networks; give it 1 or more"
        )
    seeds = FAST_SEEDS if fast else FULL_SEEDS
    results = {p: transfer_grid(cfg, p, seeds, widths) for p in PARAMETRIZATIONS}
    sp, mup = results["sp"], results["mup"]
    measured = (
        f"{network} of depth {cfg.model.depth}, {cfg.train.optimizer} for {cfg.train.steps} "
        f"steps on {cfg.data.name}, {seeds} seed(s), lrs 2^{LOG2_LRS[0]}..2^{LOG2_LRS[-1]}: "
        f"SP optimum moves {sp.shift} grid steps ({_optima(sp)}); "
        f"µP (base width {widths[0]}) moves {mup.shift} ({_optima(mup)})"
    )
    charts = {
        f"{reproduction.name}_{p}.png": Chart("transfer_figure", {"result": result})
        for p, result in results.items()
    }
    return reproduction.finding(measured, agrees(sp, mup), optima_rows(results), charts)


def run(cfg: Config, fast: bool) -> Finding:
    return transfer_finding(REPRODUCTION, cfg, fast, "MLP", WIDTHS, FAST_STEPS)


REPRODUCTION = Reproduction(
    "yang2021",
    "Yang et al. 2021",
    "Tensor Programs V: with Adam, an MLP's optimal learning rate moves with width under "
    "SP (at least two log2 grid steps over 8x the width) and stays within one step under "
    "µP, where the widest net beats the narrowest at its tuned lr",
    run,
)
