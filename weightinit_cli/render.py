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


def sparkline(
    values: Sequence[float | None],
    log: bool = True,
    bounds: tuple[float, float] | None = None,
) -> str:
    """Values as a row of block characters, on a log scale by default; '·' for 0 or missing.

    `bounds` (min, max) puts several sparklines on one scale.
    """
    import math

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
    if result.spp is not None:
        parts += [Text(), spp_table({result.method: result.spp})]
    if result.init.skipped:
        parts.append(Text(f"left as they were: {', '.join(result.init.skipped)}", style="dim"))
    return Group(*parts)


PALETTE = ("cyan", "magenta", "yellow", "green", "red", "blue", "bright_white", "bright_black")


def line_chart(
    series: dict[str, Sequence[tuple[float, float]]],
    width: int = 64,
    height: int = 12,
    log_y: bool = True,
    y_label: str = "loss",
) -> Text:
    """A terminal chart of one or more (x, y) series, one colour each, y on a log scale."""
    import math

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
        text.append(name)
    return text


def train_status(history: Any, symmetric: bool = False) -> Text:
    """completed / diverged at step k / stuck: loss did not move / interrupted at step k."""
    if history.status == "diverged":
        where = f" ({history.diverged_layer})" if history.diverged_layer else ""
        return Text(f"diverged at step {history.diverged_at}{where}", style="bold red")
    if history.status == "interrupted":
        return Text(f"interrupted at step {history.steps}", style="yellow")
    if history.status == "stuck":
        why = "symmetric units" if symmetric else "loss did not move"
        return Text(f"stuck: {why}", style="bold yellow")
    return Text("completed", style="green")


def train_table(rows: Sequence[tuple[str, Any, bool]], title: str = "Training") -> Table:
    """One row per (method, history, symmetric): losses, accuracy, target, status, curve."""
    table = Table(title=title, header_style="bold", box=None, padding=(0, 1))
    for name, justify in [
        ("method", "left"),
        ("start", "right"),
        ("final", "right"),
        ("acc", "right"),
        ("to target", "right"),
        ("status", "left"),
        ("loss curve", "left"),
    ]:
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    import math

    losses_all = [
        p.loss for _, h, _ in rows for p in h.history if math.isfinite(p.loss) and p.loss > 0
    ]
    bounds = (min(losses_all), max(losses_all)) if losses_all else None
    for method, history, symmetric in rows:
        reached = "never" if history.steps_to_target is None else str(history.steps_to_target)
        losses = [p.loss for p in history.history]
        curve = sparkline(losses[:: max(1, -(-len(losses) // 12))], bounds=bounds)
        table.add_row(
            method,
            fmt(history.initial_loss, 3),
            fmt(history.final_loss, 3),
            _percent(history.final_accuracy if history.history else None),
            reached,
            train_status(history, symmetric),
            curve,
        )
    return table


def train_view(result: Any, run_dir: str | None) -> Group:
    """After `winit train`: the loss chart, the summary table and where the files are."""
    history = result.history
    chart = line_chart({result.before.method: [(p.step, p.loss) for p in history.history]})
    symmetric = result.before.verdict.kind == "symmetric"
    target = f"target loss {fmt(history.target_loss, 3)} (half the chance loss unless set)"
    parts: list[Any] = [
        chart,
        Text(),
        train_table([(result.before.method, history, symmetric)], title=f"{result.name}: {target}"),
        Text(),
        Text.assemble(("At init: ", "bold"), result.before.verdict.message),
    ]
    if run_dir:
        parts.append(Text(f"wrote {run_dir}/", style="dim"))
    return Group(*parts)


def _per_method_table(title: str, runs: Sequence[Any], cell: Any) -> Table:
    """Layers as rows, methods as columns, `cell(layer)` in each."""
    table = Table(title=title, header_style="bold", box=None, padding=(0, 1))
    table.add_column("#", justify="right")
    table.add_column("layer", no_wrap=True)
    for run in runs:
        table.add_column(run.method, justify="right", no_wrap=True)
    for i, layer in enumerate(runs[0].stats.layers):
        table.add_row(str(layer.index), layer.name, *(cell(r.stats.layers[i]) for r in runs))
    return table


def compare_view(result: Any, run_dir: str | None = None, width: int = 120) -> Group:
    """`winit compare`: per-layer profiles side by side, training table, loss chart."""
    from rich.columns import Columns

    runs = result.runs
    acts = _per_method_table(
        "activation std at init (theory)",
        runs,
        lambda x: f"{fmt(x.activation.std, 3)} ({fmt(x.predicted_activation_std, 3)})",
    )
    grads = _per_method_table("weight-gradient std at init", runs, lambda x: fmt(x.grad.std, 3))
    profiles = Table(header_style="bold", box=None, padding=(0, 1))
    profiles.add_column("across hidden layers")
    profiles.add_column("activation std", no_wrap=True)
    profiles.add_column("gradient std", no_wrap=True)
    for run in runs:
        hidden = run.stats.layers[:-1] or run.stats.layers
        profiles.add_row(
            run.method,
            sparkline([x.activation.std for x in hidden]),
            sparkline([x.grad.std for x in hidden]),
        )
    side_by_side = 12 * len(runs) * 2 + 30 <= width
    parts: list[Any] = [Columns([acts, grads]) if side_by_side else Group(acts, Text(), grads)]
    parts += [Text(), profiles, Text()]
    if runs and runs[0].stats.spp is not None:
        parts += [spp_table({run.method: run.stats.spp for run in runs}), Text()]
    for run in runs:
        parts.append(Text.assemble((f"{run.method}: ", "bold"), run.stats.verdict.message))
    trained = [r for r in runs if r.train is not None]
    if trained:
        target = trained[0].train.target_loss
        rows = [(r.method, r.train, r.stats.verdict.kind == "symmetric") for r in trained]
        parts += [
            Text(),
            train_table(rows, title=f"Training (target loss {fmt(target, 3)})"),
            Text(),
            line_chart({r.method: [(p.step, p.loss) for p in r.train.history] for r in trained}),
        ]
    if run_dir:
        parts.append(Text(f"\nwrote {run_dir}/", style="dim"))
    return Group(*parts)


class TrainProgress:
    """A live Rich progress display for one or more training runs (to stderr)."""

    def __init__(self, total: int, labels: Sequence[str], enabled: bool = True) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.enabled = enabled and total > 0
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}  {task.fields[rate]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not self.enabled,
            # The numbers change only at log steps; between them a redraw only moves the
            # clock, and every redraw takes the GIL from the training loop (Rich's default
            # is 10 per second).
            refresh_per_second=4,
        )
        self.tasks = {
            label: self.progress.add_task(label, total=total, loss="-", acc="-", rate="")
            for label in labels
        }

    def __enter__(self) -> TrainProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def update(self, label: str, point: Any) -> None:
        task_id = self.tasks[label]
        task = self.progress.tasks[task_id]
        rate = f"{point.step / task.elapsed:.0f} steps/s" if task.elapsed else ""
        self.progress.update(
            task_id,
            completed=point.step,
            loss=fmt(point.loss, 3),
            acc=_percent(point.accuracy),
            rate=rate,
        )


def rerun_view(original: str, rerun: str, match: Any) -> Group:
    """Whether a rerun reproduced its original, file by file."""
    table = Table(box=None, padding=(0, 1), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for name, verdict in match.files.items():
        table.add_row(name, Text(verdict, style="green" if verdict == "identical" else "red"))
    headline = (
        Text("identical: the rerun reproduced every number", style="bold green")
        if match.identical
        else Text("different: the rerun did not reproduce the original", style="bold red")
    )
    return Group(Text(f"original {original}/\nrerun    {rerun}/", style="dim"), table, headline)


def finding_view(finding: Any, run_dir: str | None = None) -> Group:
    """One reproduction: the paper's claim, winit's measurement, the verdict, the numbers."""
    verdict = (
        Text("agree", style="bold green") if finding.agree else Text("disagree", style="bold red")
    )
    head = Table.grid(padding=(0, 1))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("paper", finding.paper)
    head.add_row("claim", finding.claim)
    head.add_row("measured", finding.measured)
    head.add_row("verdict", verdict)
    parts: list[Any] = [Text(finding.name, style="bold cyan"), head]
    if finding.rows:
        table = Table(header_style="bold", box=None, padding=(0, 1))
        for column in finding.rows[0]:
            table.add_column(column, justify="left" if column in ("init", "net") else "right")
        for row in finding.rows:
            table.add_row(*(_cell(v) for v in row.values()))
        parts.append(table)
    if run_dir:
        parts.append(Text(f"wrote {run_dir}/", style="dim"))
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
        table.add_row(finding.name, finding.paper, verdict)
    return table


def reproductions_table(reproductions: Sequence[Any]) -> Table:
    """`winit reproduce --list`."""
    table = Table(title="winit reproduce NAME", header_style="bold", box=None, padding=(0, 1))
    table.add_column("name", style="cyan", no_wrap=True)
    table.add_column("paper", no_wrap=True)
    table.add_column("claim")
    for r in reproductions:
        table.add_row(r.name, r.paper, r.claim)
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
    title = Text(
        f"Order-to-chaos line: {line.activation}, bias variance σ_b² = {fmt(line.bias_var, 4)} "
        "(mean field, infinite width)",
        style="bold",
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


def spp_table(profiles: dict[str, Sequence[Any]]) -> Table:
    """Signal propagation (Brock et al. 2021): per conv layer, each method's average
    channel squared mean and average channel variance, with sparklines across depth."""
    table = Table(
        title="Signal propagation at init (conv layers, after the activation)",
        header_style="bold",
        box=None,
        padding=(0, 1),
    )
    table.add_column("#", justify="right")
    table.add_column("layer", no_wrap=True)
    for method in profiles:
        table.add_column(f"{method}\nchannel mean²", justify="right", no_wrap=True)
        table.add_column(f"{method}\nchannel var", justify="right", no_wrap=True)
    layers = next(iter(profiles.values()))
    for i, layer in enumerate(layers):
        cells = []
        for spp in profiles.values():
            cells += [fmt(spp[i].channel_squared_mean, 3), fmt(spp[i].channel_variance, 3)]
        table.add_row(str(layer.index), layer.name, *cells)
    sparks = []
    for spp in profiles.values():
        sparks += [
            sparkline([x.channel_squared_mean for x in spp]),
            sparkline([x.channel_variance for x in spp]),
        ]
    table.add_row("", "depth", *sparks)
    return table
