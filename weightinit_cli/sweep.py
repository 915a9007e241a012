"""`winit sweep`'s trials: run each where it is sent and bring it back as data.

A trial is one `winit train` run of a grid point's config. It runs in a forked worker
here or in a Ray worker anywhere, and returns its status, its summary and the bytes of
its run directory's files, which the driver writes. So a cluster needs no shared file
system, and a trial directory appears whole or not at all. Every trial runs on one
torch thread wherever it runs, so a result never depends on how it was scheduled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import WinitError
from .runs import utc_now

if TYPE_CHECKING:
    from .config import Config
    from .data import Dataset

# Statuses of a trial that has a summary (a result); anything else runs again on resume.
FINISHED = ("completed", "stuck", "diverged")
# Per-step cost of the training loop that does not grow with the model (Python, logging),
# in multiply-adds, and the fixed cost of a trial (data, two probes, the PNG): the ETA
# weighs trials by these.
STEP_OVERHEAD = 200_000
TRIAL_OVERHEAD = 50_000_000


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


@dataclass
class TrialOutcome:
    index: int
    status: str  # completed | stuck | diverged | failed | interrupted
    summary: dict[str, Any] | None  # summary.json's content; None unless finished
    files: dict[str, str | bytes] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


def trial_cost(cfg: Config) -> float:
    """A trial's expected work in multiply-adds: for scheduling big trials first, and the ETA."""
    import math

    from .models import plan_layers

    per_example = sum(
        p.params * math.prod(p.out_shape[1:]) if p.kind.startswith("conv") else p.params
        for p in plan_layers(cfg.model)
    )
    batch = min(cfg.train.batch_size, cfg.data.samples)
    steps = cfg.train.steps + 2  # and the two measuring passes
    return steps * (3 * batch * per_example + STEP_OVERHEAD) + TRIAL_OVERHEAD


# Datasets built in this process, by what decides their content. A forked worker inherits
# those the driver built while checking the trials; a Ray worker builds its own.
_DATASETS: dict[str, Dataset] = {}


def data_key(cfg: Config) -> str:
    m = cfg.model
    decides = [cfg.data.model_dump(), list(m.input_shape), m.num_classes, cfg.seed]
    return json.dumps(decides, sort_keys=True)


def dataset_for(cfg: Config) -> Dataset:
    from .experiments import build_dataset

    key = data_key(cfg)
    if key not in _DATASETS:
        _DATASETS[key] = build_dataset(cfg)
    return _DATASETS[key]


def _meta(task: TrialTask, status: str, device: str, started: str) -> dict[str, Any]:
    """A trial's meta.json: a train run's, with its place in the sweep."""
    from .outputs import completed_meta

    experiment = {
        "command": "train",
        "threads": 1,
        "sweep": {"dir": task.sweep_dir, "trial": task.dirname, "grid_point": task.point},
    }
    meta = completed_meta(task.config, task.command, experiment)
    meta.update(status=status, device=device, started_at=started)
    return meta


def failed_outcome(
    task: TrialTask,
    message: str,
    started: str | None = None,
    device: str | None = None,
    seconds: float = 0.0,
) -> TrialOutcome:
    """A trial that raised: its config and a meta.json with the error, and no summary."""
    from .config import config_to_yaml

    message = " ".join(message.split())[:2000]
    meta = {
        **_meta(task, "failed", device or task.config.device, started or utc_now()),
        "error": message,
    }
    files: dict[str, str | bytes] = {
        "config.yaml": config_to_yaml(task.config),
        "meta.json": json.dumps(meta, indent=2) + "\n",
    }
    return TrialOutcome(task.index, "failed", None, files, message, seconds)


def run_trial(task: TrialTask, should_stop: Callable[[], bool] | None = None) -> TrialOutcome:
    """Train one grid point; a failure is an outcome, never an exception."""
    from .config import config_to_yaml

    started, clock = utc_now(), time.perf_counter()
    cfg = task.config
    config_file = config_to_yaml(cfg)
    device = cfg.device
    try:
        from .experiments import resolve_device, train_method
        from .outputs import train_files, train_timing
        from .report import metrics_columns, metrics_row, train_json
        from .runs import csv_text

        device = resolve_device(cfg.device)
        result = train_method(cfg, dataset_for(cfg), device, should_stop=should_stop)
        history = result.history
        if history.status == "interrupted":
            return TrialOutcome(task.index, "interrupted", None)
        files: dict[str, str | bytes] = {"config.yaml": config_file}
        meta = _meta(task, history.status, device, started)
        trial_seconds = round(time.perf_counter() - clock, 4)
        meta["timing"] = {**train_timing(history), "trial_seconds": trial_seconds}
        files["meta.json"] = json.dumps(meta, indent=2) + "\n"
        names = history.layer_names
        rows = [metrics_row(point, names) for point in history.history]
        files["metrics.csv"] = csv_text(rows) if rows else ",".join(metrics_columns(names)) + "\n"
        files.update(train_files(result, task.run_dir))
        summary = train_json(result, task.run_dir)
    except Exception as err:  # noqa: BLE001 -- a failed trial is recorded; the sweep goes on
        message = str(err) if isinstance(err, WinitError) else f"{type(err).__name__}: {err}"
        return failed_outcome(task, message, started, device, time.perf_counter() - clock)
    return TrialOutcome(task.index, history.status, summary, files, None, trial_seconds)


def run_local(
    tasks: Sequence[TrialTask],
    jobs: int,
    on_start: Callable[[int], None],
    on_done: Callable[[TrialOutcome], None],
    should_stop: Callable[[], bool],
) -> None:
    """Run the trials on `jobs` forked workers (one torch thread each), or here if 1."""
    from .parallel import WorkersLost, run_tasks

    def task(index: int, log: Callable[[Any], None], stop: Callable[[], bool]) -> TrialOutcome:
        log("started")
        return run_trial(tasks[index], stop)

    def done(index: int, outcome: TrialOutcome) -> None:
        on_done(outcome)
        outcome.files = {}  # written: the driver keeps only the summaries

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
    "TrialOutcome",
    "TrialTask",
    "dataset_for",
    "failed_outcome",
    "run_local",
    "run_trial",
    "trial_cost",
]
