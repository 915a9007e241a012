"""`winit transfer`: learning-rate transfer over width (Yang et al. 2021, "Tensor Programs V",
Fig. 1 and 3): a width x learning-rate grid of training runs, and where the best learning
rate sits at each width. No torch, no printing.

The grid is an ordinary sweep (axes model.width and train.lr, and seeds), so it runs on the
sweep's workers or on Ray and resumes as any sweep does; this module only builds that sweep
and reads its results. Under SP the optimal lr drifts with width; under µP it should stay put.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import WinitError

if TYPE_CHECKING:
    from .sweep.grid import Sweep
    from .sweep.results import SweepResult

LR_AXIS = "train.lr"
DEFAULT_WIDTHS = (64, 128, 256, 512)
DEFAULT_LRS = "2^-12..2^-2"
MAX_LRS = 64
# trials that produced a final loss; diverged trials count as an infinite loss, failed and
# pending ones as missing
FINISHED = ("completed", "stuck")

_POWER = re.compile(r"^2\^(-?\d{1,4})$")


def _power_of_two(text: str) -> int | None:
    found = _POWER.match(text.strip())
    return int(found.group(1)) if found else None


def parse_lrs(text: str | None) -> list[float]:
    """`--lrs 2^-14..2^-4` (every power of two between, both ends included) or a list
    `0.001,2^-8,0.1`: at least two distinct positive learning rates, in increasing order."""
    from .limits import excerpt

    text = DEFAULT_LRS if text is None else text
    if ".." in text:
        low, _, high = text.partition("..")
        ends = (_power_of_two(low), _power_of_two(high))
        if ends[0] is None or ends[1] is None:
            raise WinitError(
                "--lrs: a range is between two powers of two, e.g. 2^-14..2^-4; "
                f"got {excerpt(text)}"
            )
        first, last = ends  # type: ignore[misc]
        if last - first + 1 > MAX_LRS or last < first:
            raise WinitError(f"--lrs: {excerpt(text)} needs 2 to {MAX_LRS} powers, low..high")
        lrs = [2.0**k for k in range(first, last + 1)]
    else:
        parts = [p.strip() for p in text.split(",")]
        if len(parts) > MAX_LRS:
            raise WinitError(f"--lrs: at most {MAX_LRS} learning rates; got {len(parts)}")
        lrs = []
        for part in parts:
            power = _power_of_two(part)
            try:
                value = 2.0**power if power is not None else float(part)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value <= 0 or value > 1e6:
                raise WinitError(
                    "--lrs: each learning rate is a positive number or 2^K, e.g. "
                    f"0.001,2^-8; got {excerpt(part)}"
                )
            lrs.append(value)
    if len(set(lrs)) != len(lrs):
        raise WinitError(f"--lrs: a learning rate given twice: {excerpt(text)}")
    if len(lrs) < 2:
        raise WinitError("--lrs: a transfer compares at least two learning rates")
    return sorted(lrs)


def transfer_sweep(
    path: str | Path | None,
    widths: Sequence[int],
    lrs: Sequence[float],
    overrides: Sequence[str] = (),
    layer: str | None = None,
    seeds: int = 1,
) -> Sweep:
    """The sweep `winit transfer` runs: the `transfer` defaults, the file, the --sets, and
    the axes model.width x train.lr x seed. Under µP without a model.base_width the
    narrowest width is the base (each width's own would make every multiplier 1)."""
    from .loading import given_keys, load_config, read_config_file
    from .scaled_width import width_key
    from .sweep.grid import Axis, build_sweep, seed_axis

    content = read_config_file(path) if path is not None else {}
    for key in ("grid", "seeds"):
        if key in content:
            raise WinitError(
                f"{path}: {key}: winit transfer makes its own grid (--widths, --lrs, --seeds); "
                "give an ordinary config"
            )
    sets = list(overrides)
    base = load_config(path, sets, "transfer", layer)
    if base.init.parametrization != "sp" and base.model.base_width is None:
        sets.append(f"model.base_width={min(widths)}")
        base = load_config(path, sets, "transfer", layer)
    if path is None and base.name == "default":
        sets.insert(0, "name=transfer")
        base = load_config(path, sets, "transfer", layer)
    axes = [
        Axis(width_key(base.model), tuple(widths)),
        Axis(LR_AXIS, tuple(lrs)),
        seed_axis(base.seed, seeds, "--seeds"),
    ]
    source = str(path) if path is not None else "winit transfer"
    return build_sweep(base, axes, source, given_keys(content, sets))


@dataclass(frozen=True)
class Cell:
    """One (width, lr) point over its seeds."""

    loss: float | None  # mean final loss; inf if a seed diverged; None if none finished
    finished: int  # seeds with a final loss
    diverged: int
    missing: int  # failed or pending

    def to_dict(self) -> dict[str, Any]:
        loss = self.loss
        shown = None if loss is None or math.isinf(loss) else loss
        return {"loss": shown, "finished": self.finished, "diverged": self.diverged,
                "missing": self.missing}  # fmt: skip


@dataclass(frozen=True)
class WidthCurve:
    """Final loss against learning rate at one width, and its optimum."""

    width: int
    cells: tuple[Cell, ...]  # one per lr, in increasing lr
    best: int | None  # index of the optimal lr (None: no finite loss)

    def to_dict(self, lrs: Sequence[float]) -> dict[str, Any]:
        best = self.best
        return {
            "width": self.width,
            "cells": [
                {"lr": lr, "log2_lr": math.log2(lr), **cell.to_dict()}
                for lr, cell in zip(lrs, self.cells, strict=True)
            ],
            "optimal_lr": None if best is None else lrs[best],
            "optimal_log2_lr": None if best is None else math.log2(lrs[best]),
            "optimal_loss": None if best is None else self.cells[best].loss,
        }


@dataclass
class TransferResult:
    """What `winit transfer` found: a curve per width and how far the optimum moved."""

    name: str
    parametrization: str
    optimizer: str
    steps: int
    seeds: int
    lrs: list[float]
    curves: list[WidthCurve]  # in increasing width
    run_dir: str = ""
    sweep_result: SweepResult | None = None  # the sweep it was read from, when there is one

    @property
    def log2_lrs(self) -> list[float]:
        return [math.log2(lr) for lr in self.lrs]

    @property
    def shift(self) -> int | None:
        """How far the optimal lr moves across the widths, in grid steps (max - min index)."""
        best = [c.best for c in self.curves if c.best is not None]
        return max(best) - min(best) if len(best) > 1 else None

    @property
    def drift(self) -> int | None:
        """The optimum's index at the widest width minus at the narrowest (signed)."""
        best = [c.best for c in self.curves if c.best is not None]
        return best[-1] - best[0] if len(best) > 1 else None

    @property
    def diverged(self) -> int:
        return sum(cell.diverged for curve in self.curves for cell in curve.cells)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "parametrization": self.parametrization,
            "optimizer": self.optimizer,
            "steps": self.steps,
            "seeds": self.seeds,
            "lrs": self.lrs,
            "widths": [c.width for c in self.curves],
            "curves": [c.to_dict(self.lrs) for c in self.curves],
            "optimum_shift_steps": self.shift,
            "optimum_drift_steps": self.drift,
            "diverged_trials": self.diverged,
            "run_dir": self.run_dir,
        }


def _cell(outcomes: Sequence[tuple[str, float | None]]) -> Cell:
    """A point's seeds: (status, final loss) each. A learning rate at which any seed
    diverges is not a usable optimum, so the point's loss is then inf."""
    losses = [
        float(loss)
        for status, loss in outcomes
        if status in FINISHED and loss is not None and math.isfinite(loss)
    ]
    diverged = sum(
        1
        for status, loss in outcomes
        if status == "diverged"
        or (status in FINISHED and (loss is None or not math.isfinite(loss)))
    )
    missing = len(outcomes) - len(losses) - diverged
    if diverged:
        loss: float | None = math.inf
    else:
        loss = math.fsum(losses) / len(losses) if losses else None
    return Cell(loss, len(losses), diverged, missing)


def width_curves(
    records: Sequence[tuple[int, float, str, float | None]],
    widths: Sequence[int],
    lrs: Sequence[float],
) -> list[WidthCurve]:
    """(width, lr, status, final loss) per trial -> a curve per width, optimum by argmin
    of the mean final loss (the smaller lr on a tie)."""
    by_point: dict[tuple[int, float], list[tuple[str, float | None]]] = {}
    for width, lr, status, loss in records:
        by_point.setdefault((width, lr), []).append((status, loss))
    curves = []
    for width in widths:
        cells = tuple(_cell(by_point.get((width, lr), [])) for lr in lrs)
        finite = [
            (cell.loss, i)
            for i, cell in enumerate(cells)
            if cell.loss is not None and math.isfinite(cell.loss)
        ]
        curves.append(WidthCurve(width, cells, min(finite)[1] if finite else None))
    return curves


def transfer_result(sweep_result: SweepResult) -> TransferResult:
    """The transfer curves of a finished (or partly finished) transfer sweep."""
    sweep = sweep_result.sweep
    axes = {axis.key: list(axis.values) for axis in sweep.axes}
    width_axis = sweep.axes[0].key  # model.width, or a module's width argument
    widths, lrs = sorted(axes[width_axis]), sorted(axes[LR_AXIS])
    records = [
        (
            r.trial.point[width_axis],
            r.trial.point[LR_AXIS],
            r.status,
            (r.summary or {}).get("final_loss"),
        )
        for r in sweep_result.results
    ]
    base = sweep.base
    return TransferResult(
        name=sweep.name,
        parametrization=base.init.parametrization,
        optimizer=base.train.optimizer,
        steps=base.train.steps,
        seeds=len(axes.get("seed", [base.seed])),
        lrs=lrs,
        curves=width_curves(records, widths, lrs),
        run_dir=sweep_result.run_dir,
    )


__all__ = [
    "DEFAULT_LRS",
    "DEFAULT_WIDTHS",
    "Cell",
    "TransferResult",
    "WidthCurve",
    "parse_lrs",
    "transfer_result",
    "transfer_sweep",
    "width_curves",
]
