"""`winit coordcheck` at the terminal: a table per step (module x width, with the slope
and the ratio between the two widest widths), then the verdict per module."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text

from . import Column, fitted_table, fmt, literal

# More steps than this: the first and the last step get a table (the JSON and coords.csv
# hold every step).
STEP_TABLES = 4


def _verdict(passed: bool) -> Text:
    return Text("pass", style="green") if passed else Text("FAIL", style="bold red")


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _slope(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def step_table(result: Any, t: int, width: int) -> Any:
    """Step t (0-based): each module's size at each width, its slope and last ratio."""
    widths = result.widths
    columns = [Column("module")]
    # the two widest are the verdict's; the narrower ones may give way on a narrow terminal
    columns += [
        Column(str(w), number=True, justify="right", optional=i < len(widths) - 2)
        for i, w in enumerate(widths)
    ]
    columns += [
        Column("slope", number=True, justify="right"),
        Column(f"{widths[-1]}/{widths[-2]}", number=True, justify="right"),
    ]
    rows = []
    styles = []
    for module in result.modules:
        ratio = module.ratios[t]
        bad = not module.stable[t]
        rows.append(
            [
                module.name,
                *(fmt(s, 4) for s in module.sizes[t]),
                _slope(module.slopes[t]),
                Text(_ratio(ratio), style="red" if bad else ""),
            ]
        )
        styles.append("")
    title = f"t={t + 1}: {result.statistic} of each module's output, by width"
    return fitted_table(
        columns, rows, width, row_styles=styles, title=title, header_style="bold", box=None
    )


def verdict_table(result: Any, width: int) -> Any:
    """Per module: the ratio between the two widest widths at each step, and pass/fail."""
    steps = result.steps
    columns = [Column("module"), Column("kind")]
    columns += [
        Column(f"t={t + 1}", number=True, justify="right", optional=0 < t < steps - 1)
        for t in range(steps)
    ]
    columns += [Column("slope", number=True, justify="right"), Column("verdict")]
    rows = [
        [
            m.name,
            m.kind,
            *(_ratio(r) for r in m.ratios),
            _slope(m.slopes[-1]),
            _verdict(m.passed),
        ]
        for m in result.modules
    ]
    wide, narrow = result.widths[-1], result.widths[-2]
    title = f"ratio {wide}/{narrow} per step (pass: within 1/{result.ratio_bound:g} .. " + (
        f"{result.ratio_bound:g} at every step); slope at t={steps}"
    )
    return fitted_table(columns, rows, width, title=title, header_style="bold", box=None)


def coordcheck_view(result: Any, run_dir: str | None, width: int) -> Group:
    """`winit coordcheck`: the step tables, the verdict table and the overall verdict."""
    steps = list(range(result.steps))
    if len(steps) > STEP_TABLES:
        steps = [steps[0], steps[-1]]
    head = literal(
        f"{result.name}: coordinate check, {result.parametrization}, {result.method}, "
        f"{result.optimizer} lr {result.lr:g}, widths {', '.join(map(str, result.widths))}, "
        f"{len(result.seeds)} seed(s), {result.steps} step(s)",
        "bold",
    )
    parts: list[Any] = [head, Text()]
    for t in steps:
        parts += [step_table(result, t, width), Text()]
    if len(steps) < result.steps:
        parts.append(Text(f"steps 2..{result.steps - 1}: in --json and coords.csv", "dim"))
    parts.append(verdict_table(result, width))
    if result.passed:
        line = Text(f"PASS: every module's size is stable with width ({result.seconds:.1f} s)")
        line.stylize("bold green")
    else:
        line = literal(
            f"FAIL: {len(result.failed)} of {len(result.modules)} modules change with width: "
            f"{', '.join(result.failed)}",
            "bold red",
        )
    parts += [Text(), line]
    if run_dir is not None:
        parts.append(literal(f"wrote {run_dir}/ (summary.json, coords.csv, coordcheck.png)", "dim"))
    return Group(*parts)
