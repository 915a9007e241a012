"""`winit parametrizations`: SP, NTK and µP by the role of a weight (Yang et al. 2021),
how winit writes them, and a config's per-parameter multipliers. Pure Rich: the tables'
data is parametrization.py's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group
from rich.text import Text

from ..parametrization import LABELS, PARAMETRIZATIONS
from . import Column, fitted_table, fmt


def scalings_view(
    table: Sequence[tuple[str, ...]], notes: Sequence[tuple[str, str]], width: int
) -> Group:
    """The table of scalings (a row per quantity and role, a column per parametrization;
    a quantity named once for its roles) and the notes."""
    labels = [Column(LABELS[p]) for p in PARAMETRIZATIONS]
    columns = [Column("", style="bold"), Column("weights"), *labels]
    rows = [
        [quantity if i == 0 or table[i - 1][0] != quantity else "", *cells]
        for i, (quantity, *cells) in enumerate(table)
    ]
    scalings = fitted_table(
        columns,
        rows,
        width,
        title="By the role of a weight, in SP form (multipliers 1): µP, Yang et al. 2021, "
        "Table 3; NTK, Yang & Hu 2021, Table 1",
    )
    how = fitted_table(
        [Column("", style="bold"), Column("as winit (and for µP mup 1.0.0) writes it")],
        [list(note) for note in notes],
        width,
    )
    return Group(scalings, how)


def parameters_view(rows: Sequence[dict[str, Any]], title: str, width: int) -> Any:
    """A config's parameters under NTK or µP (width_multipliers_table): role, kind, width_mult,
    and the multipliers of its init, its forward pass and its Adam and SGD lr."""
    columns = [
        Column("parameter"),
        Column("role"),
        Column("kind"),
        Column("width mult", number=True, justify="right"),
        Column("init ×", number=True, justify="right"),
        Column("forward ×", number=True, justify="right", optional=True),
        Column("Adam lr ×", number=True, justify="right"),
        Column("SGD lr ×", number=True, justify="right"),
    ]
    keys = ("width_mult", "init_mult", "forward_mult", "adam_lr_mult", "sgd_lr_mult")
    cells = [[r["name"], r["role"], r["kind"], *(fmt(r[k]) for k in keys)] for r in rows]
    return fitted_table(columns, cells, width, title=title)


def parametrizations_view(
    table: Sequence[tuple[str, ...]],
    notes: Sequence[tuple[str, str]],
    width: int,
    parameters: Sequence[dict[str, Any]] | None = None,
    title: str = "",
) -> Group:
    """The whole view: the scalings, then the config's parameters where one was given."""
    parts: list[Any] = [scalings_view(table, notes, width)]
    if parameters is not None:
        parts += [Text(""), parameters_view(parameters, title, width)]
    return Group(*parts)
