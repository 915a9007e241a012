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


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None], log: bool = True) -> str:
    """Values as a row of block characters, on a log scale by default; '·' for 0 or missing."""
    import math

    def usable(v: float | None) -> bool:
        return v is not None and math.isfinite(v) and (v > 0 or not log)

    points = [math.log10(v) if log and usable(v) else v for v in values]  # type: ignore[arg-type]
    finite = [p for p, v in zip(points, values, strict=True) if usable(v)]
    if not finite:
        return "·" * len(values)
    low, high = min(finite), max(finite)
    span = high - low or 1.0
    return "".join(
        SPARKS[round((p - low) / span * (len(SPARKS) - 1))] if usable(v) else "·"
        for p, v in zip(points, values, strict=True)
    )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _layer_note(layer: Any, first_std: float) -> tuple[str, str]:
    from .diagnosis import flag

    notes, style = [], ""
    if layer.symmetric:
        notes.append("symmetric")
        style = "yellow"
    state = flag(layer.activation.std, first_std)
    if state:
        notes.append(state)
        style = "red" if state == "vanishing" else "magenta"
    return ", ".join(notes), style


def stats_table(result: Any, width: int = 120) -> Table:
    """Per-layer weights, activations and gradients, measured beside theory.

    Below 110 columns the shape column goes (fans stay), and the saturation column
    shows only for activations that saturate.
    """
    from rich import box

    show_shape = width >= 110
    show_sat = any(layer.saturated_fraction is not None for layer in result.layers)
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, padding=(0, 0), show_edge=False)
    first = result.layers[0].activation.std if result.layers else 0.0
    notes = [_layer_note(layer, first) for layer in result.layers]
    columns = [
        ("#", True),
        ("layer", True),
        ("shape", show_shape),
        ("fans", True),
        ("w std", True),
        ("target", True),
        ("act std", True),
        ("theory", True),
        ("grad std", True),
        ("dead", True),
        ("sat", show_sat),
        ("note", any(note for note, _ in notes)),
    ]
    for name, shown in columns:
        if shown:
            left = name in ("layer", "shape", "note")
            table.add_column(name, justify="left" if left else "right", no_wrap=name != "note")
    for layer, (note, style) in zip(result.layers, notes, strict=True):
        cells = {
            "#": str(layer.index),
            "layer": layer.name,
            "shape": "×".join(map(str, layer.shape)),
            "fans": f"{layer.fan_in}/{layer.fan_out}",
            "w std": fmt(layer.weight.std, 3),
            "target": fmt(layer.expected_weight_std, 3),
            "act std": fmt(layer.activation.std, 3),
            "theory": fmt(layer.predicted_activation_std, 3),
            "grad std": fmt(layer.grad.std, 3),
            "dead": _percent(layer.dead_fraction),
            "sat": _percent(layer.saturated_fraction),
            "note": note,
        }
        table.add_row(*(cells[name] for name, shown in columns if shown), style=style)
    return table


def stats_view(result: Any, width: int = 120) -> Group:
    """The stats table, sparklines across depth and the verdict."""
    hidden = result.layers[:-1] or result.layers
    acts = [layer.activation.std for layer in hidden]
    grads = [layer.grad.std for layer in hidden]
    lines = Table.grid(padding=(0, 1))
    lines.add_column(style="bold")
    lines.add_column()
    lines.add_row("hidden layers", f"1 → {len(hidden)}")
    lines.add_row("activation std", f"{sparkline(acts)}  {fmt(acts[0])} → {fmt(acts[-1])}")
    lines.add_row("gradient std", f"{sparkline(grads)}  {fmt(grads[0])} → {fmt(grads[-1])}")
    colour = {"stable": "green", "symmetric": "yellow", "dead": "yellow"}.get(
        result.verdict.kind, "red"
    )
    verdict = Text.assemble(("Verdict: ", f"bold {colour}"), result.verdict.message)
    m = result.model
    shape = f"{m['depth']}×{m['width']} " if "depth" in m else ""
    title = Text(
        f"{result.method} ({result.backend}) on a {shape}{m['type']} {m['activation']} net, "
        f"input {m['input_shape']}: loss {fmt(result.loss)}",
        style="bold",
    )
    parts: list[Any] = [title, stats_table(result, width), Text(), lines, Text(), verdict]
    if result.init.skipped:
        parts.append(Text(f"left as they were: {', '.join(result.init.skipped)}", style="dim"))
    return Group(*parts)
