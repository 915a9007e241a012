"""`winit stats`, `train` and `compare` on the terminal, and the library's weight table.

Every table here fits the width it is given without cutting a number (see render/).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from . import Column, column_groups, fitted_table, fmt, literal, percent, printable
from .charts import line_chart, sparkline
from .weights import weights_line

if TYPE_CHECKING:
    from torch import nn

    from ..experiments import CompareResult, MethodRun, StatsResult, TrainResult
    from ..probe import LayerStats, WeightStats

SIGNAL_STYLES = {"vanishing": "red", "exploding": "magenta"}


def weight_stats_table(
    stats: Sequence[WeightStats], title: str = "Weight statistics", width: int = 120
) -> Table:
    columns = [
        Column("layer", style="cyan"),
        Column("kind"),
        Column("shape", number=True),
        *(Column(name, number=True, justify="right") for name in ("mean", "std", "min", "max")),
    ]
    rows = [
        [
            s.name,
            s.kind,
            "×".join(str(d) for d in s.shape),
            *(fmt(v) for v in (s.weight.mean, s.weight.std, s.weight.min, s.weight.max)),
        ]
        for s in stats
    ]
    return fitted_table(columns, rows, width, title=title, header_style="bold", box=box.HEAVY_HEAD)


def print_weight_stats(model: nn.Module, console: Console | None = None) -> None:
    """Print mean, std, min and max of every Linear/conv weight of `model` as a Rich table."""
    from ..probe import weight_stats

    console = console or Console()
    console.print(weight_stats_table(weight_stats(model), width=console.width))


def network_text(model: dict[str, Any]) -> str:
    """The network of a result's `model` summary, in a few words."""
    if model["type"] == "module":
        return (
            f"{model['module']} ({model['weighted_layers']} weighted layers, "
            f"{model['parameters']:,} parameters), input {model['input_shape']}"
        )
    shape = f"{model['depth']}×{model['width']} " if "depth" in model else ""
    # µP (a summary's `parametrization`, absent under SP): its base width, in the title
    mup = ""
    if model.get("parametrization") == "mup":
        mup = f", µP (base width {model.get('base_width')})"
    if model.get("block") == "residual":
        norm = "" if model["norm"] == "none" else f", {model['norm']}"
        return (
            f"a {model['residual']}-activation residual {model['type']} {model['activation']} "
            f"net of {model['depth']} blocks × {model['branch_depth']} layers of "
            f"{model['width']}{norm}, input {model['input_shape']}{mup}"
        )
    kind = f"{model['type']} {model['activation']}"
    return f"a {shape}{kind} net, input {model['input_shape']}{mup}"


def _layer_note(layer: LayerStats, applied: Any = None) -> tuple[str, str]:
    if applied is not None and applied.scale == 0.0:  # set to 0 by the scheme, on purpose
        return f"0 by {applied.method}", "dim"
    notes, style = [], ""
    if layer.symmetric:
        notes.append("symmetric")
        style = "yellow"
    if layer.signal:
        notes.append(layer.signal)
        style = SIGNAL_STYLES[layer.signal]
    return ", ".join(notes), style


def theory_cell(layer: LayerStats) -> str:
    """The predicted activation std; n/a where theory ran and could not predict (what follows
    the layer is unknown to it), '-' where it did not run."""
    if layer.predicted_activation_std is None and layer.expected_weight_std is not None:
        return "n/a"
    return fmt(layer.predicted_activation_std, 3)


def stats_table(result: StatsResult, width: int = 120) -> Table:
    """Per-layer weights, activations and gradients, measured beside theory.

    From 110 columns the weight shape shows too (the fans always do); the saturation
    column only for activations that saturate, the note only where a layer has one.
    """
    applied = list(result.init.layers)
    notes = [
        _layer_note(layer, applied[i] if i < len(applied) else None)
        for i, layer in enumerate(result.layers)
    ]
    show_sat = any(layer.saturated_fraction is not None for layer in result.layers)
    show_note = any(note for note, _ in notes)
    columns = [Column("#", number=True, justify="right"), Column("layer")]
    if width >= 110:
        columns.append(Column("shape", number=True))
    names = ["fans", "w std", "target", "act std", "theory", "grad std", "dead"]
    columns += [Column(name, number=True, justify="right") for name in names]
    if show_sat:
        columns.append(Column("sat", number=True, justify="right"))
    if show_note:
        columns.append(Column("note"))
    rows = []
    for layer, (note, _) in zip(result.layers, notes, strict=True):
        cells = [str(layer.index), layer.name]
        if width >= 110:
            cells.append("×".join(map(str, layer.shape)))
        cells += [
            f"{layer.fan_in}/{layer.fan_out}",
            fmt(layer.weight.std, 3),
            fmt(layer.expected_weight_std, 3),
            fmt(layer.activation.std, 3),
            theory_cell(layer),
            fmt(layer.grad.std, 3),
            percent(layer.dead_fraction),
        ]
        if show_sat:
            cells.append(percent(layer.saturated_fraction))
        if show_note:
            cells.append(note)
        rows.append(cells)
    return fitted_table(
        columns,
        rows,
        width,
        row_styles=[style for _, style in notes],
        pad=0,
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )


def stats_view(result: StatsResult, width: int = 120) -> Group:
    """The stats table, sparklines across depth and the verdict."""
    hidden = result.layers[:-1] or result.layers
    acts = [layer.activation.std for layer in hidden]
    grads = [layer.grad.std for layer in hidden]
    ends = max(len(f"{fmt(acts[0])} → {fmt(acts[-1])}"), len(f"{fmt(grads[0])} → {fmt(grads[-1])}"))
    room = max(8, width - len("activation std") - ends - 4)
    lines = Table.grid(padding=(0, 1))
    lines.add_column(style="bold", no_wrap=True)
    lines.add_column(no_wrap=True)
    lines.add_column(no_wrap=True)
    shown = "" if len(hidden) <= room else f" (1 in {math.ceil(len(hidden) / room)} shown)"
    lines.add_row("hidden layers", f"1 → {len(hidden)}{shown}", "")
    lines.add_row(
        "activation std", sparkline(acts, width=room), f"{fmt(acts[0])} → {fmt(acts[-1])}"
    )
    lines.add_row(
        "gradient std", sparkline(grads, width=room), f"{fmt(grads[0])} → {fmt(grads[-1])}"
    )
    colour = {"stable": "green", "linear": "yellow", "symmetric": "yellow", "dead": "yellow"}.get(
        result.verdict.kind, "red"
    )
    verdict = Text.assemble(("Verdict: ", f"bold {colour}"), literal(result.verdict.message))
    title = literal(
        f"{result.method} ({result.backend}) on {network_text(result.model)}: "
        f"loss {fmt(result.loss)}",
        style="bold",
    )
    parts: list[Any] = [title, stats_table(result, width), Text(), lines, Text(), verdict]
    if result.spp is not None:
        parts += [Text(), *spp_tables({result.method: result.spp}, width)]
    if result.blocks:
        from .stream import stream_table

        parts += [Text(), stream_table(result.blocks, width)]
    parts += init_notes(result.init.parameters)
    parts += unmeasured_note(result)
    return Group(*parts)


def unmeasured_note(result: StatsResult, shown: int = 3) -> list[Text]:
    """The weights the method drew that have no row in the table (an LSTM's gates, an
    attention's projections): initialized, not measured layer by layer."""
    measured = {layer.name for layer in result.layers}
    unmeasured = [
        p
        for p in result.init.parameters
        if p.rule == "method"
        and not p.detail.startswith("bias")
        and p.name.rpartition(".")[0] not in measured
    ]
    # what a scheme set to 0 afterwards (init.query zero) is named as such, not as drawn
    zeroed: dict[str, list[str]] = {}
    for p in unmeasured:
        if p.detail.startswith("zero "):
            zeroed.setdefault(p.detail, []).append(p.name)
    drawn = [p.name for p in unmeasured if not p.detail.startswith("zero ")]
    notes = [literal(f"{detail}, not in the table: {_some(names, shown)}", "dim")
             for detail, names in zeroed.items()]  # fmt: skip
    if drawn:
        notes.append(
            literal(f"drawn by {result.method}, not in the table: {_some(drawn, shown)}", "dim")
        )
    return notes


def _some(names: Sequence[str], shown: int) -> str:
    """The first `shown` names, and how many there are in all where that is more."""
    listed = ", ".join(names[:shown])
    return listed + (f", … ({len(names)} tensors)" if len(names) > shown else "")


def init_notes(parameters: Sequence[Any], shown: int = 3, most: int = 8) -> list[Text]:
    """The parameters the method did not draw, a line per rule ("norm: ones/zeros: a, b, c,
    … (24 tensors)") and per reason skipped ("skipped: pos (a parameter of MyNet that winit
    does not know)"), `shown` names each and `most` lines, so a big model stays short."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for p in parameters:
        if p.rule != "method":
            family = p.detail if p.rule == "skipped" else p.detail.partition(":")[0]
            groups.setdefault((p.rule, family), []).append(p)
    lines = []
    for (rule, family), members in groups.items():
        names = _some([p.name for p in members], shown)
        if rule == "skipped":
            lines.append(literal(f"skipped: {names} ({family})", "dim"))
        else:
            values = "/".join(dict.fromkeys(p.detail.partition(": ")[2] for p in members))
            lines.append(literal(f"{family}: {values}: {names}", "dim"))
    if len(lines) > most:
        lines[most - 1 :] = [Text(f"… and {len(lines) - most + 1} more rules", style="dim")]
    return lines


def train_status(history: Any, symmetric: bool = False) -> Text:
    """completed / diverged at step k / stuck: loss did not move / interrupted at step k."""
    if history.status == "diverged":
        where = f" ({history.diverged_layer})" if history.diverged_layer else ""
        return literal(f"diverged at step {history.diverged_at}{where}", "bold red")
    if history.status == "interrupted":
        return Text(f"interrupted at step {history.steps}", style="yellow")
    if history.status == "stuck":
        why = "symmetric units" if symmetric else "loss did not move"
        return Text(f"stuck: {why}", style="bold yellow")
    return Text("completed", style="green")


def divergence_error(history: Any) -> str:
    """Why `winit train` exits with 1 after a diverged run, and what to change."""
    where = (
        f"the first inf/nan came out of layer {history.diverged_layer}"
        if history.diverged_layer
        else "the loss overflowed"
    )
    return (
        f"training diverged at step {history.diverged_at} ({where}); lower train.lr, "
        "or pick an init that keeps the signal finite"
    )


def train_table(
    rows: Sequence[tuple[str, Any, bool]], title: str = "Training", width: int = 120
) -> Table:
    """One row per (method, history, symmetric): losses, accuracy, target, status, curve."""
    columns = [
        Column("method"),
        *(Column(n, number=True, justify="right") for n in ("start", "final", "acc", "to target")),
        Column("status"),
        Column("loss curve", number=True),
    ]
    losses_all = [
        p.loss for _, h, _ in rows for p in h.history if math.isfinite(p.loss) and p.loss > 0
    ]
    bounds = (min(losses_all), max(losses_all)) if losses_all else None
    cells = []
    for method, history, symmetric in rows:
        reached = "never" if history.steps_to_target is None else str(history.steps_to_target)
        losses = [p.loss for p in history.history]
        cells.append(
            [
                method,
                fmt(history.initial_loss, 3),
                fmt(history.final_loss, 3),
                percent(history.final_accuracy if history.history else None),
                reached,
                train_status(history, symmetric),
                sparkline(losses, bounds=bounds, width=11),
            ]
        )
    return fitted_table(columns, cells, width, title=title, header_style="bold", box=None)


def train_view(result: TrainResult, run_dir: str | None, width: int = 120) -> Group:
    """After `winit train`: the loss chart, the summary table and where the files are."""
    history = result.history
    chart = line_chart({result.before.method: [(p.step, p.loss) for p in history.history]})
    symmetric = result.before.verdict.kind == "symmetric"
    target = f"target loss {fmt(history.target_loss, 3)} (half the chance loss unless set)"
    parts: list[Any] = [
        chart,
        Text(),
        train_table(
            [(result.before.method, history, symmetric)],
            title=f"{result.name}: {target}",
            width=width,
        ),
        Text(),
        Text.assemble(("At init: ", "bold"), literal(result.before.verdict.message)),
    ]
    weights = weights_line(history)
    if weights is not None:
        parts.append(weights)
    if run_dir:
        parts.append(literal(f"wrote {run_dir}/", "dim"))
    return Group(*parts)


# A method's columns in a per-layer table: (header, a cell per layer, the footer's cell); the
# header's user text (the method) already printable, its line breaks ours.
MethodColumns = list[tuple[str, list[str], str]]


def _layers_by_method(
    title: str,
    layers: Sequence[Any],
    methods: Sequence[MethodColumns],
    width: int,
    footer: str = "",
) -> list[Table]:
    """Layers (with .index and .name) as rows and each method's columns beside them, with
    a footer row named `footer` if given: as many tables as it takes to fit `width` (the
    methods that do not fit go on in the next)."""
    names = [printable(x.name) for x in layers]
    fixed = max(len(str(len(layers))), 1) + max(map(len, [*names, footer])) + 4
    widths = [
        sum(
            max(*map(len, header.split("\n")), *map(len, cells), len(foot)) + 2
            for header, cells, foot in columns
        )
        for columns in methods
    ]
    tables = []
    for group, members in enumerate(column_groups(widths, width - fixed)):
        shown = literal(title if group == 0 else f"{title}, continued", "table.title")
        table = Table(title=shown, header_style="bold", box=None, padding=(0, 1))
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column("layer", overflow="fold")
        chosen = [column for m in members for column in methods[m]]
        for header, _, _ in chosen:
            table.add_column(Text(header), justify="right", no_wrap=True)
        for i, (layer, name) in enumerate(zip(layers, names, strict=True)):
            table.add_row(str(layer.index), Text(name), *(Text(c[i]) for _, c, _ in chosen))
        if footer:
            table.add_row("", Text(footer), *(Text(foot) for _, _, foot in chosen))
        tables.append(table)
    return tables


def per_method_tables(
    title: str,
    runs: Sequence[MethodRun],
    cell: Callable[[LayerStats], str],
    width: int,
) -> list[Table]:
    """Layers as rows, methods as columns, `cell(layer)` in each."""
    methods = [
        [(printable(run.method), [cell(layer) for layer in run.stats.layers], "")] for run in runs
    ]
    return _layers_by_method(title, runs[0].stats.layers, methods, width)


def _profiles(runs: Sequence[MethodRun], width: int) -> Table:
    """Activation and gradient std across the hidden layers, a sparkline per method."""
    depth = max(len(run.stats.layers[:-1] or run.stats.layers) for run in runs)
    names = max(len("across hidden layers"), *(len(printable(run.method)) for run in runs))
    room = max(8, (width - names - 6) // 2)
    table = Table(header_style="bold", box=None, padding=(0, 1))
    table.add_column("across hidden layers", overflow="fold")
    table.add_column("activation std", no_wrap=True)
    table.add_column("gradient std", no_wrap=True)
    if depth > room:
        table.caption = f"1 in {math.ceil(depth / room)} hidden layers shown"
    for run in runs:
        hidden = run.stats.layers[:-1] or run.stats.layers
        table.add_row(
            literal(run.method),
            sparkline([x.activation.std for x in hidden], width=room),
            sparkline([x.grad.std for x in hidden], width=room),
        )
    return table


def compare_view(result: CompareResult, run_dir: str | None = None, width: int = 120) -> Group:
    """`winit compare`: per-layer profiles side by side, training table, loss chart."""
    from rich.columns import Columns

    runs = result.runs
    acts = per_method_tables(
        "activation std at init (theory)",
        runs,
        lambda x: f"{fmt(x.activation.std, 3)} ({fmt(x.predicted_activation_std, 3)})",
        width,
    )
    grads = per_method_tables(
        "weight-gradient std at init", runs, lambda x: fmt(x.grad.std, 3), width
    )
    console = Console(width=width)
    together = sum(console.measure(t).maximum for t in (*acts, *grads)) + 2
    if len(acts) == len(grads) == 1 and together <= width:
        parts: list[Any] = [Columns([acts[0], grads[0]])]
    else:
        parts = [*acts, Text(), *grads]
    parts += [Text(), _profiles(runs, width), Text()]
    if runs and runs[0].stats.spp is not None:
        parts += [*spp_tables({run.method: run.stats.spp for run in runs}, width), Text()]
    for run in runs:
        name, message = literal(f"{run.method}: ", "bold"), literal(run.stats.verdict.message)
        parts.append(Text.assemble(name, message))
    trained = [r for r in runs if r.train is not None]
    if trained:
        target = trained[0].train.target_loss
        rows = [(r.method, r.train, r.stats.verdict.kind == "symmetric") for r in trained]
        parts += [
            Text(),
            train_table(rows, title=f"Training (target loss {fmt(target, 3)})", width=width),
            Text(),
            line_chart({r.method: [(p.step, p.loss) for p in r.train.history] for r in trained}),
        ]
    if run_dir:
        parts += [Text(), literal(f"wrote {run_dir}/", "dim")]
    return Group(*parts)


def spp_tables(profiles: dict[str, Sequence[Any]], width: int = 120) -> list[Table]:
    """Signal propagation (Brock et al. 2021): per conv layer, or per residual block (at
    its output, with the variance its branch adds), each method's average channel squared
    mean and average channel variance, with sparklines across depth."""
    rows = next(iter(profiles.values()))
    blocks = bool(rows) and hasattr(rows[0], "residual_variance")
    statistics = [("channel mean²", "channel_squared_mean"), ("channel var", "channel_variance")]
    if blocks:
        statistics.append(("branch var", "residual_variance"))
    methods = [
        [
            (
                f"{printable(method)}\n{header}",
                [fmt(getattr(x, key), 3) for x in layers],
                sparkline([getattr(x, key) for x in layers]),
            )
            for header, key in statistics
        ]
        for method, layers in profiles.items()
    ]
    title = "Signal propagation at init (" + (
        "each residual block's output and its branch)"
        if blocks
        else "conv layers, after the activation)"
    )
    return _layers_by_method(title, rows, methods, width, "depth")
