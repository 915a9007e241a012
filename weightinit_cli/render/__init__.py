"""Rich renderings of winit's result data. Nothing here computes a result; it shows one.

Every table fits the terminal it is printed on, down to 80 columns, without cutting a
number: number cells never wrap, names and words wrap or fold, per-method columns that
do not fit go to a second table, and sparklines show every k-th layer when a net is
deeper than the room for them (the JSON and CSVs hold everything).

- results.py: `winit stats`, `train` and `compare`, and the library's weight table
- charts.py: sparklines and the terminal line chart
- progress.py: the live training display
- reference.py: the method catalogue, the critical line, reproductions, reruns
"""

from __future__ import annotations

from collections.abc import Sequence


def fmt(value: float | None, digits: int = 4) -> str:
    """A number in `digits` significant digits; '-' for None."""
    if value is None:
        return "-"
    return f"{value:.{digits}g}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def column_groups(widths: Sequence[int], room: int) -> list[list[int]]:
    """The indices of columns of these widths (padding included), in order, in groups that
    each fit in `room` columns (a column wider than the room gets a group of its own)."""
    groups: list[list[int]] = []
    used = room
    for index, width in enumerate(widths):
        if used + width > room or not groups:
            groups.append([])
            used = 0
        groups[-1].append(index)
        used += width
    return groups
