"""The reference views: the method catalogue, the order-to-chaos line, the reproductions
and what a rerun found."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from . import Column, fitted_table, fmt, literal

if TYPE_CHECKING:
    from ..methods import Method


def methods_table(methods: Iterable[Method]) -> Table:
    table = Table(title="Init methods", header_style="bold", expand=True)
    table.add_column("method (aliases)", ratio=2, min_width=17, overflow="fold")
    table.add_column("formula", ratio=3, overflow="fold")
    table.add_column("suits", ratio=2, overflow="fold")
    table.add_column("layers", ratio=1, min_width=11, overflow="fold")
    table.add_column("reference", style="dim", ratio=2, overflow="fold")
    for m in methods:
        name = literal(m.name, "bold cyan")
        if m.aliases:
            name.append_text(Text("\n") + literal(", ".join(m.aliases), "dim"))
        cells = (m.formula, m.best_for, m.layers, m.reference)  # "[a, b]" is no markup
        table.add_row(name, *map(literal, cells))
    return table


def method_detail(method: Method) -> Panel:
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column()
    rows = {
        "summary": method.summary,
        "formula": method.formula,
        "aliases": ", ".join(method.aliases) or "-",
        "suits": method.best_for,
        "layers": method.layers,
        "random": "yes" if method.random else "no (deterministic)",
        "reference": method.reference,
    }
    for name, value in rows.items():
        lines.add_row(name, literal(value))
    parts: list[Any] = [lines]
    if method.params:
        params = Table(title="parameters", header_style="bold", title_justify="left")
        params.add_column("name", style="cyan")
        params.add_column("default")
        params.add_column("meaning")
        for p in method.params:
            choices = f" ({' | '.join(p.choices)})" if p.choices and len(p.choices) < 8 else ""
            params.add_row(literal(p.name), literal(repr(p.default)), literal(p.help + choices))
        parts.append(params)
    else:
        parts.append(Text("parameters: none"))
    if method.note:
        parts.append(literal(method.note, "italic"))
    return Panel(Group(*parts), title=literal(method.name, "bold"), expand=False)


def rerun_view(original: str, rerun: str, match: Any) -> Group:
    """Whether a rerun reproduced its original, file by file."""
    table = Table(box=None, padding=(0, 1), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for name, verdict in match.files.items():
        colour = "green" if verdict == "identical" else "red"
        table.add_row(literal(name), literal(verdict, colour))
    headline = (
        Text("identical: the rerun reproduced every number", style="bold green")
        if match.identical
        else Text("different: the rerun did not reproduce the original", style="bold red")
    )
    paths = [literal(f"original {original}/", "dim"), literal(f"rerun    {rerun}/", "dim")]
    notes = [literal(f"versions differ: {'; '.join(match.notes)}", "yellow")] if match.notes else []
    notes += [
        literal(f"{name}: new in the rerun, not compared: {_listed(keys)}", "dim")
        for name, keys in match.added.items()
    ]
    return Group(*paths, table, *notes, headline)


def _listed(names: list[str], shown: int = 4) -> str:
    """The first few names, and how many more."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def finding_view(finding: Any, run_dir: str | None = None, width: int = 120) -> Group:
    """One reproduction: the paper's claim, winit's measurement, the verdict, the numbers."""
    verdict = (
        Text("agree", style="bold green") if finding.agree else Text("disagree", style="bold red")
    )
    head = Table.grid(padding=(0, 1))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("paper", literal(finding.paper))
    head.add_row("claim", literal(finding.claim))
    head.add_row("measured", literal(finding.measured))
    head.add_row("verdict", verdict)
    parts: list[Any] = [literal(finding.name, "bold cyan"), head]
    if finding.rows:
        names = list(finding.rows[0])
        text = ("init", "net", "layer", "activation", "phase")
        columns = [
            Column(n) if n in text else Column(n, number=True, justify="right") for n in names
        ]
        rows = [[_cell(row[n]) for n in names] for row in finding.rows]
        parts.append(fitted_table(columns, rows, width, header_style="bold", box=None))
    if run_dir:
        parts.append(literal(f"wrote {run_dir}/", "dim"))
    return Group(*parts, Text())


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return fmt(value, 3)
    return "never" if value is None else str(value)


def findings_table(findings: Sequence[Any]) -> Table:
    """`winit reproduce all`'s closing table: one row per reproduction."""
    table = Table(title="Reproductions", header_style="bold", box=None, padding=(0, 1))
    table.add_column("name", style="cyan", no_wrap=True)
    table.add_column("paper")
    table.add_column("verdict", no_wrap=True)
    for finding in findings:
        verdict = Text("agree", style="green") if finding.agree else Text("disagree", style="red")
        table.add_row(literal(finding.name), literal(finding.paper), verdict)
    return table


def reproductions_table(reproductions: Sequence[Any]) -> Table:
    """`winit reproduce --list`."""
    table = Table(title="winit reproduce NAME", header_style="bold", box=None, padding=(0, 1))
    table.add_column("name", style="cyan", no_wrap=True)
    table.add_column("paper", no_wrap=True)
    table.add_column("claim")
    for r in reproductions:
        table.add_row(literal(r.name), literal(r.paper), literal(r.claim))
    return table


def critical_view(line: Any, sweep: Sequence[Any], chosen: Any | None = None) -> Group:
    """`winit critical`: the order-to-chaos line of an activation, and the states around it."""

    def scale(value: float) -> str:
        return "∞" if value == float("inf") else fmt(value, 3)

    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column(justify="right")
    head.add_column(style="dim")
    head.add_row(
        "critical weight variance σ_w²*",
        fmt(line.critical_weight_var, 5),
        f"weights N(0, {fmt(line.critical_weight_var, 4)}/fan_in)",
    )
    head.add_row("fixed point q*", fmt(line.q_star, 4), "pre-activation variance at depth")
    head.add_row("χ₁ = σ_w² E[φ'(√q* z)²]", fmt(line.chi1, 4), "1 critical, <1 ordered, >1 chaotic")
    head.add_row("depth scale ξ_q", scale(line.depth_scale_q), "layers for q to settle at q*")
    head.add_row(
        "depth scale ξ_c", scale(line.depth_scale_c), "layers over which two inputs stay apart"
    )
    table = Table(header_style="bold", box=None, padding=(0, 1))
    table.add_column("σ_w²", justify="right")
    for column in ("q*", "χ₁", "ξ_c", "phase"):
        table.add_column(column, justify="right" if column != "phase" else "left")
    colours = {"ordered": "cyan", "critical": "green", "chaotic": "magenta"}
    for state in sweep:
        phase = state.phase()
        table.add_row(
            fmt(state.weight_var, 4),
            fmt(state.q_star, 3),
            fmt(state.chi1, 3),
            scale(state.depth_scale_c),
            Text(phase, style=colours[phase]),
        )
    title = literal(
        f"Order-to-chaos line: {line.activation}, bias variance σ_b² = {fmt(line.bias_var, 4)} "
        "(mean field, infinite width)",
        "bold",
    )
    parts: list[Any] = [title, head, Text()]
    if chosen is not None:
        parts.append(
            Text(
                f"σ_w² = {fmt(chosen.weight_var, 4)}: {chosen.phase()}, "
                f"χ₁ = {fmt(chosen.chi1, 3)}, "
                f"q* = {fmt(chosen.q_star, 3)}, c* = {fmt(chosen.c_star, 3)}, "
                f"ξ_c = {scale(chosen.depth_scale_c)}",
                style="bold",
            )
        )
    parts += [
        table,
        Text(
            "Schoenholz et al. 2017 find nets trainable to about 6·ξ_c layers. Place a net "
            "on the line: --method variance_scaling --set init.params.distribution=normal "
            f"--set init.params.scale={fmt(line.critical_weight_var, 4)} "
            f"--set init.params.bias_var={fmt(line.bias_var, 4)}",
            style="dim",
        ),
    ]
    return Group(*parts)
