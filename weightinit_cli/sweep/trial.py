"""`winit sweep`'s trials: run each where it is sent and bring it back as data.

A trial is one `winit train` session (session.train_in_memory) of a grid point's config.
It runs in a forked worker here or in a Ray worker anywhere, and returns its status, its
summary and its run directory's files as bytes, which the driver writes: a cluster needs
no shared file system, and a trial directory appears whole or not at all. Every trial
runs on one torch thread wherever it runs, so a result never depends on how it was
scheduled. A trial's directory holds config.yaml, meta.json, metrics.csv, layers.csv
(at init) and summary.json; `full` adds what `winit train` also writes: loss.png and
the layers after training; --log tensorboard its event files (tb/: trackers.EVENTS_DIR).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import WinitError

if TYPE_CHECKING:
    from ..config import Config
    from ..data import Dataset

# Statuses of a trial that has a summary (a result); anything else runs again on resume.
FINISHED = ("completed", "stuck", "diverged")
# Every file a trial directory can hold: a resumed sweep removes a trial's directory to
# run it again only if it holds nothing else (a file of the user's stays).
TRIAL_FILES = ("config.yaml", "meta.json", "metrics.csv", "layers.csv", "summary.json",
               "loss.png", "spectra.png")  # fmt: skip
# Per-step cost of the training loop that does not grow with the model (Python, logging),
# in multiply-adds, and the fixed cost of a trial (data, a statistics pass, its files): the
# ETA weighs trials by these.
STEP_OVERHEAD = 200_000
TRIAL_OVERHEAD = 30_000_000


@dataclass
class TrialTask:
    """What a worker needs to run one trial, wherever it runs."""

    index: int
    dirname: str
    run_dir: str  # where the driver will write it (summary.json names it)
    point: dict[str, Any]
    config: Config
    sweep_dir: str
    command: str
    full: bool = False  # also loss.png and the layers after training

    def experiment(self) -> dict[str, Any]:
        """meta.json's "experiment": a train run's, on one thread, with its place in the
        sweep."""
        return {
            "command": "train",
            "threads": 1,
            "measured_after": self.full,
            "sweep": {"dir": self.sweep_dir, "trial": self.dirname, "grid_point": self.point},
        }


@dataclass
class TrialOutcome:
    index: int
    status: str  # completed | stuck | diverged | failed | interrupted
    summary: dict[str, Any] | None  # summary.json's content; None unless finished
    files: dict[str, str | bytes] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)  # a tracker that stopped in the worker
    tracked: dict[str, Any] | None = None  # the numbers for MLflow (trackers.MetricsRecorder)


def trial_cost(cfg: Config) -> float:
    """A trial's expected work in multiply-adds: for scheduling big trials first, and the ETA."""
    per_example = sum(
        layer.params * math.prod(layer.out_shape[1:])
        if layer.kind.startswith("conv")
        else layer.params
        for layer in cfg.model.plan.layers
    )
    batch = min(cfg.train.batch_size, cfg.data.samples)
    steps = cfg.train.steps + 1  # and the measuring pass
    return steps * (3 * batch * per_example + STEP_OVERHEAD) + TRIAL_OVERHEAD


# Datasets built in this process, by what decides their content. A forked worker inherits
# those the driver built while checking the trials; a Ray worker builds its own.
_DATASETS: dict[str, Dataset] = {}


def data_key(cfg: Config) -> str:
    m = cfg.model
    decides = [cfg.data.model_dump(), list(m.input_shape), m.num_classes, cfg.seed]
    return json.dumps(decides, sort_keys=True)


def dataset_for(cfg: Config) -> Dataset:
    from ..experiments import load_dataset

    key = data_key(cfg)
    if key not in _DATASETS:
        _DATASETS[key] = load_dataset(cfg)
    return _DATASETS[key]


def failed_outcome(task: TrialTask, message: str, seconds: float = 0.0) -> TrialOutcome:
    """A trial that raised: its config and a meta.json with the error, and no summary."""
    from ..runs import RunWriter

    message = " ".join(message.split())[:2000]
    writer = RunWriter(
        task.config, task.experiment(), command=task.command, device=task.config.device
    )
    files = writer.finish("failed", error=message)
    return TrialOutcome(task.index, "failed", None, files, message, seconds)


def run_trial(task: TrialTask, should_stop: Callable[[], bool] | None = None) -> TrialOutcome:
    """Train one grid point; a failure is an outcome, never an exception."""
    from ..session import train_in_memory

    clock = time.perf_counter()
    try:
        recorded = train_in_memory(
            task.config,
            dataset_for(task.config),
            task.experiment(),
            run_dir=task.run_dir,
            command=task.command,
            should_stop=should_stop,
            plots=task.full,
        )
    except Exception as err:  # noqa: BLE001 -- a failed trial is recorded; the sweep goes on
        message = str(err) if isinstance(err, WinitError) else f"{type(err).__name__}: {err}"
        return failed_outcome(task, message, time.perf_counter() - clock)
    history = recorded.result.history
    if history.status == "interrupted":
        return TrialOutcome(task.index, "interrupted", None)
    files = recorded.files or {}
    summary = json.loads(files["summary.json"])
    # the seconds its meta.json says, which a resumed sweep reads back
    seconds = json.loads(files["meta.json"])["timing"]["run_seconds"]
    return TrialOutcome(task.index, history.status, summary, files, None, seconds,
                        recorded.warnings, recorded.tracked)  # fmt: skip


def run_local(
    tasks: Sequence[TrialTask],
    jobs: int,
    on_start: Callable[[int], None],
    on_done: Callable[[TrialOutcome], None],
    should_stop: Callable[[], bool],
) -> None:
    """Run the trials on `jobs` forked workers (one torch thread each), or here if 1."""
    from ..parallel import WorkersLost, run_tasks

    def task(index: int, log: Callable[[Any], None], stop: Callable[[], bool]) -> TrialOutcome:
        log("started")
        return run_trial(tasks[index], stop)

    def done(index: int, outcome: TrialOutcome) -> None:
        on_done(outcome)
        outcome.files = {}  # written: the driver keeps only the summaries
        outcome.tracked = None

    try:
        run_tasks(
            task,
            len(tasks),
            jobs,
            on_log=lambda index, _: on_start(tasks[index].index),
            should_stop=should_stop,
            on_done=done,
        )
    except WorkersLost as err:
        # a worker killed (out of memory, say) took its trial with it: that trial failed,
        # and the workers left ran all the others
        for index in err.lost:
            on_done(failed_outcome(tasks[index], f"its worker process died: {err}"))


__all__ = [
    "FINISHED",
    "TRIAL_FILES",
    "TrialOutcome",
    "TrialTask",
    "dataset_for",
    "failed_outcome",
    "run_local",
    "run_trial",
    "trial_cost",
]
