"""`winit parametrizations`: µP's table of scalings by the role of a weight (Yang et al.
2021, Table 3, SP in parentheses), how winit writes it, and a config's per-parameter
multipliers. Pure Rich: the tables' data is parametrization.py's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group
from rich.text import Text

from . import Column, fitted_table, fmt


def scalings_view(
    roles: Sequence[str],
    table: Sequence[tuple[str, Sequence[str]]],
    notes: Sequence[tuple[str, str]],
    width: int,
) -> Group:
    """The table of scalings (a row per quantity, a column per role) and the notes."""
    columns = [Column("", style="bold"), *(Column(role) for role in roles)]
    scalings = fitted_table(
        columns,
        [[quantity, *cells] for quantity, cells in table],
        width,
        title="µP by the role of a weight (Yang et al. 2021, Table 3; SP in parentheses)",
    )
    how = fitted_table(
        [Column("", style="bold"), Column("µP as winit and mup 1.0.0 write it")],
        [list(note) for note in notes],
        width,
    )
    return Group(scalings, how)


def parameters_view(rows: Sequence[dict[str, Any]], title: str, width: int) -> Any:
    """A config's parameters under µP (width_multipliers_table): role, kind, width_mult,
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
    roles: Sequence[str],
    table: Sequence[tuple[str, Sequence[str]]],
    notes: Sequence[tuple[str, str]],
    width: int,
    parameters: Sequence[dict[str, Any]] | None = None,
    title: str = "",
) -> Group:
    """The whole view: the scalings, then the config's parameters where one was given."""
    parts: list[Any] = [scalings_view(roles, table, notes, width)]
    if parameters is not None:
        parts += [Text(""), parameters_view(parameters, title, width)]
    return Group(*parts)
