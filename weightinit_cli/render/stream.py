"""The residual stream's table: per block, E[x²] entering it, of its branch and of the
stream it passes on, each measured beside theory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table

from . import Column, fitted_table, fmt


def stream_table(blocks: Sequence[Any], width: int = 120) -> Table:
    """The residual stream per block: E[x²] of what enters, of the branch F(x) and of
    x + F(x), each measured beside theory (n/a where the recursion has no model)."""
    columns = [Column("block")] + [
        Column(name, number=True, justify="right")
        for name in ("stream in", "branch", "theory", "stream out", "theory")
    ]
    rows = [
        [
            b.name,
            fmt(b.stream_in, 3),
            fmt(b.branch, 3),
            "n/a" if b.predicted_branch is None else fmt(b.predicted_branch, 3),
            fmt(b.stream_out, 3),
            "n/a" if b.predicted_out is None else fmt(b.predicted_out, 3),
        ]
        for b in blocks
    ]
    return fitted_table(
        columns,
        rows,
        width,
        title="Residual stream at init: E[x²] per block",
        pad=0,
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
