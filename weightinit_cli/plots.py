"""matplotlib PNGs of winit's results (object API on the Agg canvas, no pyplot state)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .probe import LayerStats


def _figure(ncols: int, width: float = 5.0, height: float = 3.6) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _positive(values: Sequence[float | None]) -> list[float]:
    """Values for a log axis: non-positive and missing ones become NaN (gaps)."""
    return [v if v is not None and v > 0 else float("nan") for v in values]


def png_bytes(fig: Figure) -> bytes:
    """The PNG bytes of a figure (the caller writes them atomically)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def std_profiles(profiles: dict[str, Sequence[LayerStats]], title: str = "") -> Figure:
    """Activation std (measured, and predicted dashed) and gradient std against depth,
    one line per method."""
    fig = _figure(2)
    act_ax, grad_ax = fig.subplots(1, 2)
    for i, (label, layers) in enumerate(profiles.items()):
        colour = f"C{i}"
        depth = [layer.index for layer in layers]
        act_ax.plot(
            depth,
            _positive([x.activation.std for x in layers]),
            "o-",
            color=colour,
            markersize=3,
            label=f"{label} measured",
        )
        predicted = [x.predicted_activation_std for x in layers]
        if any(p is not None for p in predicted):
            act_ax.plot(
                depth, _positive(predicted), "--", color=colour, alpha=0.7, label=f"{label} theory"
            )
        grad_ax.plot(
            depth,
            _positive([x.grad.std for x in layers]),
            "o-",
            color=colour,
            markersize=3,
            label=label,
        )
    for ax, name in ((act_ax, "activation std"), (grad_ax, "weight-gradient std")):
        ax.set_yscale("log")
        ax.set_xlabel("layer")
        ax.set_ylabel(name)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig
