"""The weight metrics a training run logged (train.weight_spectra), as one summary line."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.text import Text

from ..weight_spectra import WeightMetrics, median_metrics
from . import fmt

if TYPE_CHECKING:
    from ..train import TrainHistory

# (attribute, label, significant digits) in the line's order
SHOWN = (("spectral_norm", "spectral norm", 3), ("stable_rank", "stable rank", 3),
         ("alpha", "α", 3))  # fmt: skip


def _value(metrics: WeightMetrics, name: str, digits: int) -> str:
    value = getattr(metrics, name)
    return fmt(value, digits) if math.isfinite(value) else "n/a"


def weights_line(history: TrainHistory) -> Text | None:
    """The line "Weights (median over N layers, step a → b): spectral norm x → y, ..." from the
    first and last log points that hold weight metrics; None where none was logged."""
    points = [p for p in history.history if p.layer_weights]
    if not points:
        return None
    first, last = points[0], points[-1]
    start, end = median_metrics(first.layer_weights), median_metrics(last.layer_weights)
    if all(not math.isfinite(v) for v in (*start.to_dict().values(), *end.to_dict().values())):
        return Text.assemble(("Weights: ", "bold"), "all zero or undefined at every log step")
    changes = ", ".join(
        f"{label} {_value(start, name, digits)} → {_value(end, name, digits)}"
        for name, label, digits in SHOWN
    )
    count = len(first.layer_weights)
    heading = f"Weights (median over {count} layers, step {first.step} → {last.step}): "
    return Text.assemble((heading, "bold"), changes)
