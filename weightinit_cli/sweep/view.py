"""Rich renderings of a sweep: the live progress display and the results table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..render import Column, fitted_table, fmt, literal, printable
from .grid import value_text

if TYPE_CHECKING:
    from .results import GroupResult, Spread, SweepPlan, SweepResult

MAX_ROWS = 40  # grid points in the terminal table; summary.csv has them all
STATUS_STYLES = {
    "completed": "green",
    "stuck": "yellow",
    "diverged": "red",
    "failed": "bold red",
    "pending": "dim",
}


class SweepProgress:
    """Trials done / running / failed, and an ETA from the work still to do (to stderr).

    The bar advances by each trial's expected cost, not by one per trial: a sweep runs
    its biggest trials first, and counting trials would make the ETA wrong until the end.
    """

    def __init__(self, name: str, trials: int, done: int, work: float) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.counts = {"done": done, "running": 0, "failed": 0, "diverged": 0}
        self.trials = trials
        self.progress = Progress(
            # the sweep's name is user text: shown literally, not read as markup
            TextColumn("sweep {task.description}", style="bold", markup=False),
            BarColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            refresh_per_second=4,
        )
        self.task = self.progress.add_task(
            printable(name), total=max(work, 1.0), counts=self._counts()
        )

    def _counts(self) -> str:
        c = self.counts
        text = f"{c['done']}/{self.trials} done · {c['running']} running"
        if c["diverged"]:
            text += f" · {c['diverged']} diverged"
        if c["failed"]:
            text += f" · [red]{c['failed']} failed[/]"
        return text

    def __enter__(self) -> SweepProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def start(self, index: int) -> None:
        self.counts["running"] += 1
        self.progress.update(self.task, counts=self._counts())

    def done(self, index: int, status: str, cost: float) -> None:
        self.counts["running"] = max(0, self.counts["running"] - 1)
        if status in ("failed", "diverged"):
            self.counts[status] += 1
        if status == "interrupted":  # its work is still to do
            self.progress.update(self.task, counts=self._counts())
            return
        self.counts["done"] += 1
        self.progress.update(self.task, advance=cost, counts=self._counts())

    def stopped(self) -> None:
        """Nothing runs any more (a stop cancelled what did)."""
        self.counts["running"] = 0
        self.progress.update(self.task, counts=self._counts())


def _spread(value: Spread, digits: int, percent: bool = False) -> str:
    if value.mean is None:
        return "-"
    scale, unit = (100.0, "%") if percent else (1.0, "")
    text = f"{fmt(value.mean * scale, digits)}{unit}"
    if value.std is not None:
        text += f" ± {fmt(value.std * scale, 2)}{unit}"
    return text


def _reached(group: GroupResult) -> str:
    """Steps to the target loss over the seeds that reached it, and how many did."""
    steps = group.metrics["steps_to_target"]
    text = _spread(steps, 3)
    trained = sum(n for s, n in group.statuses.items() if s in ("completed", "stuck"))
    return text + (f" ({steps.n}/{trained})" if 0 < steps.n < trained else "")


def _statuses(group: GroupResult) -> Text:
    text = Text()
    for status, count in group.statuses.items():
        if text:
            text.append(" · ")
        text.append(f"{count} {status}", style=STATUS_STYLES.get(status, ""))
    return text


def sweep_table(result: SweepResult, width: int = 120) -> Table:
    """A row per grid point (seeds pooled): final loss and accuracy as mean ± std."""
    from .grid import axis_labels

    axes = result.sweep.group_axes
    labels = axis_labels(axes)
    seeds = max((g.trials for g in result.groups), default=1)
    title = f"Sweep {result.sweep.name}: {len(result.results)} trials"
    if seeds > 1:
        title += f", mean ± std over {seeds} seeds"
    losses = [g.metrics["final_loss"].mean for g in result.groups]
    best = min((v for v in losses if v is not None), default=None)
    shown = result.groups[:MAX_ROWS]
    # The grid point tells rows apart: its values fold over lines rather than lose a
    # character; the status, then the steps, give way where the table would not fit.
    columns = [
        *(Column(labels[axis.key], style="cyan") for axis in axes),
        Column("final loss", number=True, justify="right"),
        Column("accuracy", number=True, justify="right"),
        Column("steps to target", number=True, justify="right", optional=True),
        Column("status", optional=True),
    ]
    rows = []
    for group, loss in zip(shown, losses, strict=False):
        style = "bold green" if best is not None and loss == best and len(losses) > 1 else ""
        rows.append(
            [
                *(value_text(group.point[axis.key]) for axis in axes),
                Text(_spread(group.metrics["final_loss"], 3), style=style),
                _spread(group.metrics["final_accuracy"], 3, percent=True),
                _reached(group),
                _statuses(group),
            ]
        )
    table = fitted_table(
        columns,
        rows,
        width,
        title=title,
        header_style="bold",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    if len(result.groups) > MAX_ROWS:
        shown_rows = (
            f"the first {MAX_ROWS} of {len(result.groups)} grid points; all are in summary.csv"
        )
        caption = f"{shown_rows}; {table.caption}" if table.caption else shown_rows
        # the headers in it already printable (fitted_table)
        table.caption = Text(caption, style="table.caption")
    return table


def sweep_view(result: SweepResult, width: int = 120) -> Group:
    """The results table, the counts, and where the files are."""
    parts: list[Any] = [sweep_table(result, width)]
    counts = {k: v for k, v in result.counts.items() if v}
    line = Text(" · ".join(f"{v} {k}" for k, v in counts.items()))
    if result.resumed:
        line.append(f"  ({result.resumed} from an earlier run, {result.ran} run now)", "dim")
    parts.append(line)
    for trial in result.failed()[:3]:
        parts.append(literal(f"failed {trial.trial.dirname}: {trial.error}", "red"))
    left = result.counts.get("pending", 0) + result.counts.get("failed", 0)
    if left:
        verb = "was interrupted" if result.status == "interrupted" else "is not complete"
        parts.append(
            Text(
                f"The sweep {verb}: {left} of {len(result.results)} trials still to run; "
                "run the same command again to resume it.",
                style="yellow",
            )
        )
    files = ["results.csv", "summary.csv", *result.figures]
    parts.append(literal(f"wrote {result.run_dir}/ ({', '.join(files)}, trials/)", "dim"))
    return Group(*parts)


def failures_error(result: SweepResult) -> str:
    """Why a sweep exits with 1 when trials failed, and how to retry them."""
    failed = result.failed()
    first = failed[0]
    return (
        f"{len(failed)} of {len(result.results)} trials failed (first: {first.trial.dirname}: "
        f"{first.error}); the others' results are saved: run the same command again to "
        "retry the failed ones"
    )


def _listed(values: Sequence[Any], head: int = 8, tail: int = 2) -> str:
    """An axis's values, the long ones as the first few, the last and how many."""
    if len(values) <= head + tail + 1:
        return ", ".join(value_text(v) for v in values)
    shown = [value_text(v) for v in (*values[:head], "...", *values[-tail:])]
    return f"{', '.join(shown)} ({len(values):,} values)"


def sweep_plan(plan: SweepPlan) -> Group:
    """`--dry-run`: the axes, the number of trials, and where they would go."""
    sweep = plan.sweep
    table = Table(box=None, padding=(0, 1), show_header=False)
    table.add_column(style="bold cyan")
    table.add_column()
    for axis in sweep.axes:
        table.add_row(literal(axis.key), literal(_listed(axis.values)))
    where = (
        f"resumes {plan.resumes}: {plan.finished} of them finished there"
        if plan.resumes is not None
        else "a new sweep directory"
    )
    headline = literal(f"Sweep {sweep.name}: {len(sweep.trials)} trials; {where}", "bold")
    return Group(headline, table)


__all__ = ["SweepProgress", "sweep_plan", "sweep_table", "sweep_view"]
