"""Rich renderings of winit's data. Nothing here computes statistics; it only shows them.

Imports no torch at module level, so `winit methods` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from torch import nn

    from .methods import Method
    from .probe import WeightStats


def fmt(value: float | None, digits: int = 4) -> str:
    """A number in `digits` significant digits; '-' for None."""
    if value is None:
        return "-"
    return f"{value:.{digits}g}"


def methods_table(methods: Iterable[Method]) -> Table:
    table = Table(title="Init methods", header_style="bold", expand=True)
    table.add_column("method (aliases)", ratio=2, min_width=17, overflow="fold")
    table.add_column("formula", ratio=3, overflow="fold")
    table.add_column("suits", ratio=2, overflow="fold")
    table.add_column("layers", ratio=1, min_width=11, overflow="fold")
    table.add_column("reference", style="dim", ratio=2, overflow="fold")
    for m in methods:
        name = Text(m.name, style="bold cyan")
        if m.aliases:
            name.append("\n" + ", ".join(m.aliases), style="dim")
        table.add_row(name, m.formula, m.best_for, m.layers, m.reference)
    return table


def method_detail(method: Method) -> Panel:
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    lines.add_row("summary", method.summary)
    lines.add_row("formula", method.formula)
    lines.add_row("aliases", ", ".join(method.aliases) or "-")
    lines.add_row("suits", method.best_for)
    lines.add_row("layers", method.layers)
    lines.add_row("random", "yes" if method.random else "no (deterministic)")
    lines.add_row("reference", method.reference)
    parts: list[Any] = [lines]
    if method.params:
        params = Table(title="parameters", header_style="bold", title_justify="left")
        params.add_column("name", style="cyan")
        params.add_column("default")
        params.add_column("meaning")
        for p in method.params:
            choices = f" ({' | '.join(p.choices)})" if p.choices and len(p.choices) < 8 else ""
            params.add_row(p.name, repr(p.default), p.help + choices)
        parts.append(params)
    else:
        parts.append(Text("parameters: none"))
    if method.note:
        parts.append(Text(method.note, style="italic"))
    return Panel(Group(*parts), title=f"[bold]{method.name}[/]", expand=False)


def weight_stats_table(stats: Sequence[WeightStats], title: str = "Weight statistics") -> Table:
    table = Table(title=title, header_style="bold")
    table.add_column("layer", style="cyan")
    table.add_column("kind")
    table.add_column("shape")
    for col in ("mean", "std", "min", "max"):
        table.add_column(col, justify="right")
    for s in stats:
        w = s.weight
        shape = "×".join(str(d) for d in s.shape)
        table.add_row(s.name, s.kind, shape, fmt(w.mean), fmt(w.std), fmt(w.min), fmt(w.max))
    return table


def print_weight_stats(model: nn.Module, console: Console | None = None) -> None:
    """Print mean, std, min and max of every Linear/conv weight of `model` as a Rich table."""
    from .probe import weight_stats

    (console or Console()).print(weight_stats_table(weight_stats(model)))
