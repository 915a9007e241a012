"""The sweep's heatmaps: a metric's mean over seeds at each grid point, as a PNG figure
(plots.py draws the other figures)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..plots import _figure, _shown

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .results import GroupResult, SweepResult


MAX_PANELS = 12
METRIC_TITLES = {
    "final_loss": "final loss",
    "final_accuracy": "final accuracy",
    "steps_to_target": "steps to the target loss",
}
LOWER_IS_BETTER = ("final_loss", "steps_to_target")


def _cell_text(group: GroupResult | None, metric: str) -> str:
    if group is None:
        return ""
    value = group.metrics[metric]
    if value.mean is not None:
        text = f"{value.mean:.0%}" if metric == "final_accuracy" else f"{value.mean:.3g}"
        others = group.trials - value.n
        return text + (f"\n({others} not)" if others else "")
    for status in ("diverged", "failed", "stuck", "pending"):
        if status in group.statuses:
            return status
    return "never" if metric == "steps_to_target" else "-"


def sweep_heatmap(result: SweepResult, metric: str) -> Figure:
    """The mean of `metric` over seeds at each grid point: rows the first axis, columns the
    second, one panel per value of the axes after those (the first 12)."""
    import itertools
    import json
    import math

    from matplotlib.colors import LogNorm, Normalize

    from .grid import axis_labels

    axes = result.sweep.group_axes
    labels = axis_labels(axes)
    rows, cols, rest = axes[0], (axes[1] if len(axes) > 1 else None), axes[2:]

    def key(values: Sequence[object]) -> str:
        return json.dumps(list(values), default=str)

    groups = {key(list(g.point.values())): g for g in result.groups}
    panels = list(itertools.product(*(axis.values for axis in rest)))
    shown = panels[:MAX_PANELS]
    col_values = cols.values if cols is not None else ("",)
    means = [g.metrics[metric].mean for g in result.groups]
    finite = [v for v in means if v is not None and math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if high <= low:  # one value everywhere: a band around it, not a zero-width scale
        pad = abs(low) * 0.1 or 0.1
        low, high = low - pad, high + pad
    norm = (
        LogNorm(low, high)
        if metric in LOWER_IS_BETTER and low > 0 and high / low > 10
        else Normalize(low, high)
    )
    from matplotlib import colormaps

    # grey where no trial gave a number (all diverged or failed)
    cmap = colormaps["viridis_r" if metric in LOWER_IS_BETTER else "viridis"].with_extremes(
        bad="#dddddd"
    )

    ncols = min(len(shown), 3)
    nrows = math.ceil(len(shown) / ncols)
    # numbers in the cells while they fit; a big grid is a picture, and summary.csv
    annotate = len(col_values) <= 16 and len(rows.values) <= 30
    width = min(24.0, max(3.5, (0.95 if annotate else 0.3) * len(col_values) + 1.8))
    height = min(16.0, max(2.0, (0.5 if annotate else 0.2) * len(rows.values) + 1.3))
    # Margins from the labels' lengths (about 0.075 in a character at 10 pt), not measured
    # by a layout engine, which costs more than the drawing.
    ticks = [_tick(v) for v in rows.values]
    label_in = 0.075 * max(len(t) for t in ticks) + 0.55
    fig_w, fig_h = width * ncols, height * nrows
    # on the right, the colorbar's ticks and label (the colorbar itself takes 15% of the
    # panels' room)
    left, right = min(0.45, label_in / fig_w), 1 - min(0.3, 0.8 / fig_w)
    # between panels, room for the next one's labels; the colorbar then takes 15% of
    # the panels' width (and of the room between them)
    room = (right - left) * fig_w - (ncols - 1) * label_in / 0.85
    margins = {
        "left": left,
        "right": right,
        "bottom": min(0.4, 0.6 / fig_h),
        "top": 1 - min(0.3, (0.45 + (0.25 if rest else 0)) / fig_h),
        "wspace": (label_in / 0.85) / max(room / ncols, 0.5),
        "hspace": (0.9 + (0.25 if rest else 0)) / height,
    }
    fig = _figure(ncols, width=width, height=fig_h, margins=margins)
    grid = fig.subplots(nrows, ncols, squeeze=False)
    image = None
    for panel, ax in itertools.zip_longest(shown, grid.flat):
        if panel is None:
            ax.set_visible(False)
            continue
        matrix, texts = [], []
        for r in rows.values:
            line, line_text = [], []
            for c in col_values:
                point = [r, *([c] if cols is not None else []), *panel]
                group = groups.get(key(point))
                mean = group.metrics[metric].mean if group is not None else None
                line.append(mean if mean is not None else float("nan"))
                line_text.append(_cell_text(group, metric))
            matrix.append(line)
            texts.append(line_text)
        image = ax.imshow(matrix, cmap=cmap, norm=norm, aspect="auto")
        for i, line_text in enumerate(texts if annotate else []):
            for j, text in enumerate(line_text):
                value = matrix[i][j]
                dark = math.isfinite(value) and norm(value) < 0.5
                if metric in LOWER_IS_BETTER:
                    dark = not dark  # viridis_r: small values are the dark ones
                dark = dark if math.isfinite(value) else False
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
        ax.set_yticks(range(len(rows.values)), ticks)
        ax.set_ylabel(_shown(labels[rows.key]))
        if cols is not None:
            ax.set_xticks(range(len(col_values)), [_tick(v) for v in col_values])
            ax.set_xlabel(_shown(labels[cols.key]))
        else:
            ax.set_xticks([])
        if rest:
            ax.set_title(
                ", ".join(
                    f"{_shown(labels[a.key])}={_tick(v)}" for a, v in zip(rest, panel, strict=True)
                ),
                fontsize=9,
            )
    if image is not None:
        fig.colorbar(image, ax=grid.ravel().tolist(), shrink=0.9, label=METRIC_TITLES[metric])
    seeds = max((g.trials for g in result.groups), default=1)
    title = f"{result.sweep.name}: {METRIC_TITLES[metric]}"
    title += f", mean over {seeds} seeds" if seeds > 1 else ""
    if len(panels) > MAX_PANELS:
        title += f" (first {MAX_PANELS} of {len(panels)} panels)"
    fig.suptitle(_shown(title), fontsize=10)
    return fig


def _tick(value: object, width: int = 24) -> str:
    """A grid value as an axis label, cut to `width` characters."""
    from .grid import value_text

    text = value_text(value)
    return _shown(text if len(text) <= width else text[: width - 1] + "…")
