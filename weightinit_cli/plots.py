"""matplotlib PNGs of winit's results (object API on the Agg canvas, no pyplot state)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .experiments import CompareResult
    from .probe import LayerStats
    from .train import TrainHistory


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


def _profile_axes(act_ax, grad_ax, profiles: dict[str, Sequence[LayerStats]]) -> None:
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


def std_profiles(profiles: dict[str, Sequence[LayerStats]], title: str = "") -> Figure:
    """Activation std (measured, and theory dashed) and gradient std against depth."""
    fig = _figure(2)
    _profile_axes(*fig.subplots(1, 2), profiles)
    if title:
        fig.suptitle(title)
    return fig


def _loss_axes(loss_ax, acc_ax, histories: dict[str, TrainHistory]) -> None:
    for i, (label, history) in enumerate(histories.items()):
        steps = [p.step for p in history.history]
        status = "" if history.status == "completed" else f" ({history.status})"
        loss_ax.plot(
            steps,
            _positive([p.loss for p in history.history]),
            color=f"C{i}",
            label=f"{label}{status}",
        )
        acc_ax.plot(steps, [p.accuracy for p in history.history], color=f"C{i}", label=label)
        if history.diverged_at is not None:
            loss_ax.axvline(history.diverged_at, color=f"C{i}", linestyle=":", alpha=0.7)
    if histories:
        first = next(iter(histories.values()))
        loss_ax.axhline(
            first.target_loss, color="grey", linestyle="--", linewidth=0.8, label="target"
        )
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("training loss")
    acc_ax.set_ylabel("held-out accuracy")
    acc_ax.set_ylim(0, 1.02)
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("step")
        ax.grid(True, which="both", alpha=0.3)
        if histories:
            ax.legend(fontsize=7)


def loss_curves(histories: dict[str, TrainHistory], title: str = "") -> Figure:
    """Training loss (log scale) and held-out accuracy against step, one line per method."""
    fig = _figure(2)
    _loss_axes(*fig.subplots(1, 2), histories)
    if title:
        fig.suptitle(title)
    return fig


def compare_figure(result: CompareResult) -> Figure:
    """compare.png: loss curves, then activation and gradient std against depth per method."""
    histories = {run.method: run.train for run in result.runs if run.train is not None}
    profiles = {run.method: run.stats.layers for run in result.runs}
    fig = _figure(2, height=3.4)
    fig.set_figheight(7.0)
    top, bottom = fig.subfigures(2, 1)
    _loss_axes(*top.subplots(1, 2), histories)
    act_ax, grad_ax = bottom.subplots(1, 2)
    _profile_axes(act_ax, grad_ax, profiles)
    fig.suptitle(f"{result.name}: " + ", ".join(profiles))
    return fig
