"""The live display of training runs on stderr: a bar per run with its loss, accuracy
and speed, redrawn as log points arrive."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console

from . import fmt, percent, printable


class TrainProgress:
    """A live Rich progress display for one or more training runs (to stderr)."""

    def __init__(self, total: int, labels: Sequence[str]) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        # The label (a method, a config's name) is user text: shown literally, not as markup.
        fields = "loss {task.fields[loss]}  acc {task.fields[acc]}  {task.fields[rate]}"
        self.progress = Progress(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(fields, markup=False),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=total <= 0,
            # The numbers change only at log steps; between them a redraw only moves the
            # clock, and every redraw takes the GIL from the training loop (Rich's default
            # is 10 per second).
            refresh_per_second=4,
        )
        self.tasks = {
            label: self.progress.add_task(printable(label), total=total, loss="-", acc="-", rate="")
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
            acc=percent(point.accuracy),
            rate=rate,
        )
