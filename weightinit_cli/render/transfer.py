"""`winit transfer` at the terminal: final loss against log2 lr with a line per width, the
optimal lr per width in a small table, and how far the optimum moved across widths."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Group
from rich.text import Text

from . import Column, fitted_table, fmt, literal
from .charts import line_chart


def _x_axis_named(chart: Text, name: str) -> Text:
    """line_chart names its x axis `step`; here x is log2 of the learning rate."""
    plain = chart.plain
    at = plain.rfind("  step\n")
    if at < 0:
        return chart
    return Text.assemble(chart[:at], (f"  {name}\n", "dim"), chart[at + len("  step\n") :])


def transfer_chart(result: Any, width: int = 80) -> Text:
    """Mean final loss against log2 lr, a series per width (diverged points left out)."""
    series = {
        f"width {curve.width}": [
            (x, cell.loss)
            for x, cell in zip(result.log2_lrs, curve.cells, strict=True)
            if cell.loss is not None and math.isfinite(cell.loss)
        ]
        for curve in result.curves
    }
    # room for the y labels (up to 7 characters) and the x axis name after the last tick
    chart = line_chart(series, width=max(min(width - 22, 64), 20), height=12, y_label="final loss")
    return _x_axis_named(chart, "log2 lr")


def optimum_table(result: Any, width: int = 80) -> Any:
    """Per width: the optimal lr, its log2, its loss, its grid step against the narrowest."""
    first = next((c.best for c in result.curves if c.best is not None), None)
    columns = [
        Column("width", number=True, justify="right"),
        Column("optimal lr", number=True, justify="right"),
        Column("log2 lr", number=True, justify="right"),
        Column("final loss", number=True, justify="right"),
        Column("steps moved", number=True, justify="right"),
        Column("diverged lrs", number=True, justify="right", optional=True),
    ]
    rows = []
    for curve in result.curves:
        diverged = sum(1 for cell in curve.cells if cell.diverged)
        if curve.best is None:
            rows.append([str(curve.width), "-", "-", "-", "-", str(diverged)])
            continue
        lr = result.lrs[curve.best]
        rows.append(
            [
                str(curve.width),
                f"{lr:.4g}",
                f"{math.log2(lr):+.2f}".rstrip("0").rstrip("."),
                fmt(curve.cells[curve.best].loss, 4),
                f"{curve.best - first:+d}" if first is not None else "-",
                str(diverged),
            ]
        )
    title = "optimal learning rate per width (argmin of the mean final loss)"
    return fitted_table(columns, rows, width, title=title, header_style="bold", box=None)


def _shift_line(result: Any) -> Text:
    shift = result.shift
    if shift is None:
        return Text("Too few widths with a finite loss to compare their optima.", style="yellow")
    steps = "grid step" if shift == 1 else "grid steps"
    line = Text(f"The optimum moves {shift} {steps} across widths ")
    line.append(f"{result.curves[0].width}..{result.curves[-1].width}", style="bold")
    line.append(f" under {result.parametrization} ({result.optimizer}, {result.steps} steps).")
    return line


def transfer_view(result: Any, width: int = 80) -> Group:
    """The chart, the optimum table, the shift, the diverged runs, and the files."""
    parts: list[Any] = [transfer_chart(result, width), optimum_table(result, width)]
    parts.append(_shift_line(result))
    edge = [
        c.width for c in result.curves if c.best is not None and c.best in (0, len(result.lrs) - 1)
    ]
    if edge:
        parts.append(
            Text(
                f"At width {', '.join(map(str, edge))} the optimum is at an end of the lr grid: "
                "the true optimum may lie beyond it (widen --lrs).",
                style="yellow",
            )
        )
    if result.diverged:
        parts.append(
            Text(
                f"{result.diverged} trials diverged; a learning rate at which a seed diverged "
                "counts as an infinite loss (left out of the chart, never an optimum).",
                style="yellow",
            )
        )
    missing = sum(cell.missing for curve in result.curves for cell in curve.cells)
    if missing:
        parts.append(
            Text(
                f"{missing} trials failed or did not run; run the same command again to resume.",
                style="yellow",
            )
        )
    parts.append(literal(f"wrote {result.run_dir}/ (transfer.png, transfer.json, trials/)", "dim"))
    return Group(*parts)
