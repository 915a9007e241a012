"""Terminal charts: sparklines and a line chart of (x, y) series, in block characters."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text

from . import fmt, printable

SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(
    values: Sequence[float | None],
    log: bool = True,
    bounds: tuple[float, float] | None = None,
    width: int | None = None,
) -> str:
    """Values as a row of block characters, on a log scale by default; '·' for 0 or missing.

    `bounds` (min, max) puts several sparklines on one scale; `width` caps the characters
    (evenly spaced values, the first and last among them, stand for the rest).
    """
    if width is not None and len(values) > max(width, 2):
        values = [values[round(i * (len(values) - 1) / (width - 1))] for i in range(width)]

    def usable(v: float | None) -> bool:
        return v is not None and math.isfinite(v) and (v > 0 or not log)

    points = [math.log10(v) if log and usable(v) else v for v in values]  # type: ignore[arg-type]
    finite = [p for p, v in zip(points, values, strict=True) if usable(v)]
    if not finite:
        return "·" * len(values)
    low, high = min(finite), max(finite)
    if bounds is not None:
        low, high = (math.log10(b) if log else b for b in bounds)
    span = high - low or 1.0
    return "".join(
        SPARKS[min(max(round((p - low) / span * (len(SPARKS) - 1)), 0), len(SPARKS) - 1)]
        if usable(v)
        else "·"
        for p, v in zip(points, values, strict=True)
    )


PALETTE = ("cyan", "magenta", "yellow", "green", "red", "blue", "bright_white", "bright_black")


def line_chart(
    series: dict[str, Sequence[tuple[float, float]]],
    width: int = 64,
    height: int = 12,
    log_y: bool = True,
    y_label: str = "loss",
) -> Text:
    """A terminal chart of one or more (x, y) series, one colour each, y on a log scale."""

    def scale(y: float) -> float | None:
        if not math.isfinite(y) or (log_y and y <= 0):
            return None
        return math.log10(y) if log_y else y

    points = {
        name: [(x, s) for x, y in data if (s := scale(y)) is not None]
        for name, data in series.items()
    }
    xs = [x for data in points.values() for x, _ in data]
    ys = [y for data in points.values() for _, y in data]
    if not xs:
        return Text("(nothing to plot: no finite values)", style="dim")
    x0, x1 = min(xs), max(xs) or 1
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5
    grid: list[list[tuple[str, str]]] = [[(" ", "")] * width for _ in range(height)]
    for i, data in enumerate(points.values()):
        colour = PALETTE[i % len(PALETTE)]
        cells: dict[int, list[float]] = {}
        for x, y in data:
            column = round((x - x0) / ((x1 - x0) or 1) * (width - 1))
            cells.setdefault(column, []).append(y)
        for column, values in cells.items():
            y = sum(values) / len(values)
            row = height - 1 - round((y - y0) / (y1 - y0) * (height - 1))
            grid[row][column] = ("•", colour)

    def label(row: int) -> str:
        value = y1 - (y1 - y0) * row / (height - 1)
        return fmt(10**value if log_y else value, 3)

    labels = {0: label(0), height // 2: label(height // 2), height - 1: label(height - 1)}
    pad = max(len(v) for v in labels.values())
    text = Text()
    text.append(f"{y_label}{' (log)' if log_y else ''}\n", style="bold")
    for r, row in enumerate(grid):
        text.append(f"{labels.get(r, ''):>{pad}} ┤", style="dim")
        for char, colour in row:
            text.append(char, style=colour)
        text.append("\n")
    text.append(" " * pad + " └" + "─" * width + "\n", style="dim")
    end = fmt(x1, 6)
    text.append(
        " " * (pad + 2) + fmt(x0, 6) + " " * (width - len(end) - 1) + end + "  step\n", style="dim"
    )
    for i, name in enumerate(series):
        text.append("  • ", style=PALETTE[i % len(PALETTE)])
        text.append(printable(name))
    return text
