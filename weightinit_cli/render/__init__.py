"""Rich renderings of winit's result data. Nothing here computes a result; it shows one.

Every table fits the terminal it is printed on, down to 80 columns, without cutting a
number: number cells never wrap, names and words wrap or fold, per-method columns that
do not fit go to a second table, and sparklines show every k-th layer when a net is
deeper than the room for them (the JSON and CSVs hold everything). User text (a name,
a path, a value) is shown as it is, through `literal` (never read as Rich markup, its
control characters escaped); `printable` is the same for plain strings (Error lines, PNGs).

- results.py: `winit stats`, `train` and `compare`, and the library's weight table
- charts.py: sparklines and the terminal line chart
- weights.py: the weight metrics a training run logged, as one line
- progress.py: the live training display
- reference.py: the method catalogue, the critical line, reproductions, reruns
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

from ..printable import printable


def literal(text: object, style: str = "") -> Text:
    """User text for Rich, shown as it is: never read as markup (`[bold]`, `[/]`), and
    with control characters escaped (printable). Every name, path and value that the
    user gave reaches the terminal through this."""
    return Text(printable(text), style=style)


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


@dataclass(frozen=True)
class Column:
    """A column of a fitted table."""

    header: str
    number: bool = False  # never narrower than its widest cell, so a number never wraps
    justify: str = "left"
    style: str = ""
    optional: bool = False  # left out (last first) where the table would not fit otherwise


LONGEST_WORD = 16  # a longer word (a name) folds over lines rather than widen its column


def _words(text: str) -> list[int]:
    return [len(word) for word in text.split()] or [0]


def fitted_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str | Text]],
    width: int,
    *,
    row_styles: Sequence[str] | None = None,
    pad: int = 1,
    **options: Any,
) -> Table:
    """A table of these rows in `width` columns, with widths chosen here rather than by
    Rich (whose shrinking can cut a word): every column gets at least its longest word
    (a number column its widest cell), the text columns give up their slack, and where
    even that is too wide the optional columns go, noted in the caption. A str cell,
    header or title is user text, shown literally (a Text cell keeps its styles)."""
    texts = [[cell if isinstance(cell, Text) else literal(cell) for cell in row] for row in rows]
    plain = [[cell.plain for cell in row] for row in texts]
    headers = [printable(column.header) for column in columns]

    def widest(i: int) -> int:
        return max([len(headers[i]), *(len(line) for r in plain for line in r[i].split("\n"))])

    def narrowest(i: int) -> int:
        header = max(_words(headers[i]))
        if columns[i].number:
            return max(header, *(len(line) for r in plain for line in r[i].split("\n")), 1)
        cells = max((w for r in plain for w in _words(r[i])), default=0)
        return max(min(max(header, cells), LONGEST_WORD), 1)

    narrowest_of = [narrowest(i) for i in range(len(columns))]  # read once per shrink step

    def least(i: int) -> int:
        return narrowest_of[i]

    boxed = options.get("box", "none") is not None
    edges = boxed and options.get("show_edge", True)

    def room(n: int) -> int:
        """What is left for n columns' cells: `pad` spaces each side of a cell (not at the
        edges of a table without a box), and a box's rules between columns and at the
        edges."""
        padding = pad * (2 * n if edges else 2 * n - 2)
        return width - padding - ((n - 1) if boxed else 0) - (2 if edges else 0)

    shown = list(range(len(columns)))
    left_out = []
    optional = [i for i in shown if columns[i].optional]
    while sum(least(i) for i in shown) > room(len(shown)) and optional:
        dropped = optional.pop()
        shown.remove(dropped)
        left_out.insert(0, headers[dropped])
    widths = {i: widest(i) for i in shown}
    excess = sum(widths.values()) - room(len(shown))
    for floor in (least, lambda i: 4):  # last, words of text fold: never a number
        while excess > 0:
            slack = {
                i: widths[i] - floor(i)
                for i in shown
                if widths[i] > floor(i) and (floor is least or not columns[i].number)
            }
            if not slack:
                break
            take = max(slack, key=lambda i: (slack[i], -i))
            widths[take] -= 1
            excess -= 1
    if isinstance(options.get("title"), str):  # a Text title takes no title_style: given here
        options["title"] = literal(options["title"], options.get("title_style") or "table.title")
    table = Table(padding=(0, pad), pad_edge=edges, collapse_padding=False, **options)
    for i in shown:
        column = columns[i]
        table.add_column(
            Text(headers[i]),
            justify=column.justify,  # type: ignore[arg-type]
            style=column.style,
            width=widths[i],  # a number column's is at least its widest cell: never wraps
            overflow="fold",
        )
    for r, row in enumerate(texts):
        style = row_styles[r] if row_styles else None
        table.add_row(*(row[i] for i in shown), style=style)
    if left_out:
        table.caption = Text(
            f"{', '.join(left_out)}: not shown at this width (see --json and the CSVs)",
            style="table.caption",
        )
    return table
