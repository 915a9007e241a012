"""MLflow: a run's config as params, its metrics per step, its run directory's files as
artifacts and its status as tags, through MlflowClient (the fluent API's active run is
global state; a compare or a sweep holds several runs at once).

Where: MLFLOW_TRACKING_URI, or MLflow's own default (in MLflow 3: sqlite:///mlflow.db in
the working directory, artifacts under ./mlruns, what a bare `mlflow ui` opens). The
experiment: MLFLOW_EXPERIMENT_NAME, or "winit". A train or stats run is one MLflow run
named after its run directory; compare and sweep are a parent run with a child per method
or trial. Metric names are TensorBoard's tags (loss, grad_std/<layer>, ...).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import EVENTS_DIR, point_metrics, stats_metrics

if TYPE_CHECKING:
    from ..config import Config
    from ..experiments import StatsResult
    from ..train import LogPoint

EXPERIMENT = "winit"
# winit's run statuses as MLflow's run states; a run still open when the tracker closes
# ended in an error (FAILED)
STATES = {
    "completed": "FINISHED",
    "stuck": "FINISHED",
    "diverged": "FAILED",
    "failed": "FAILED",
    "interrupted": "KILLED",
    "incomplete": "FAILED",  # a sweep with failed trials
}
# MLflow retries a request to a server for minutes by default (7 tries, 120 s each); a
# tracker must never hold a run that long, so unless the user says otherwise: 2 tries, 10 s
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
# and no usage reports: winit sends nothing anywhere it was not asked to (MLflow's telemetry
# threads would also be running when a compare or a sweep forks its workers)
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true"}
# TensorBoard's event files (still open beside us), a sweep's trials (each a child run's)
NOT_ARTIFACTS = {EVENTS_DIR, "trials"}
FLUSH_SECONDS = 2.0  # how long metrics may wait to be sent with the next ones


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MlflowRuns:
    """MLflow's client in the experiment, and the few things winit does with its runs."""

    def __init__(self) -> None:
        for key, value in {**HTTP_DEFAULTS, **QUIET}.items():
            os.environ.setdefault(key, value)
        # MLflow's INFO lines (a new database's migrations) are not winit's output
        for logger in ("mlflow", "alembic"):
            logging.getLogger(logger).setLevel(logging.WARNING)
        from mlflow import MlflowClient

        self.client = MlflowClient()
        self.experiment = self._experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT)
        self._pending: dict[str, list[Any]] = {}  # run id -> metrics not sent yet
        self._sent = time.monotonic()

    def _experiment(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is None:
            try:
                return str(self.client.create_experiment(name))
            except MlflowException:  # another run made it first
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise
        if found.lifecycle_stage != "active":
            raise ValueError(
                f"the MLflow experiment {name!r} is deleted: restore it (mlflow experiments "
                "restore) or name another in MLFLOW_EXPERIMENT_NAME"
            )
        return str(found.experiment_id)

    def every_run(self, filter_string: str) -> Iterator[Any]:
        """The experiment's runs that match, page after page (a sweep may have more than a
        page's thousand trials)."""
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment], filter_string=filter_string, page_token=token
            )
            yield from page
            token = page.token
            if not token:
                return

    def start(self, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> str:
        from mlflow.entities import Param
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

        tags = {**tags, "winit.status": "running"}
        run = self.client.create_run(self.experiment, run_name=run_name, tags=tags)
        run_id: str = run.info.run_id
        # a value past MLflow's limit (a long list of layers) is cut; config.yaml has it whole
        entries = [Param(k, str(v)[:MAX_PARAM_VAL_LENGTH]) for k, v in params.items()]
        try:
            for batch in _chunks(entries, MAX_PARAMS_TAGS_PER_BATCH):
                self.client.log_batch(run_id, params=batch)
        except Exception:
            self.fail([run_id])
            raise
        return run_id

    def fail(self, run_ids: list[str]) -> None:
        """End runs as failed, best effort, where starting them failed half-way (the first
        error is the one to report)."""
        for run_id in run_ids:
            with contextlib.suppress(Exception):
                self.client.set_terminated(run_id, "FAILED")

    def log(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        """Metrics at `step`, sent with those before them at most FLUSH_SECONDS later (a
        request, or a database commit, per log point cost a default run more than its
        training: 50 ms each on SQLite here) or when the run ends."""
        from mlflow.entities import Metric
        from mlflow.utils.validation import MAX_METRICS_PER_BATCH

        now = int(time.time() * 1000)
        self._pending.setdefault(run_id, []).extend(
            Metric(k, v, now, step) for k, v in metrics.items()
        )
        waiting = sum(len(m) for m in self._pending.values())
        if waiting >= MAX_METRICS_PER_BATCH or time.monotonic() - self._sent >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        from mlflow.utils.validation import MAX_METRICS_PER_BATCH

        pending, self._pending = self._pending, {}
        self._sent = time.monotonic()
        for run_id, metrics in pending.items():
            for batch in _chunks(metrics, MAX_METRICS_PER_BATCH):
                self.client.log_batch(run_id, metrics=batch)

    def artifacts(self, run_id: str, directory: Path) -> None:
        """A run directory's files, as they are on disk now (meta.json says finished)."""
        for entry in sorted(directory.iterdir()):
            if entry.name in NOT_ARTIFACTS or entry.name.startswith("."):
                continue
            if entry.is_dir():
                self.client.log_artifacts(run_id, str(entry), artifact_path=entry.name)
            elif entry.is_file():
                self.client.log_artifact(run_id, str(entry))

    def end(self, run_id: str, status: str) -> None:
        self.flush()
        self.client.set_tag(run_id, "winit.status", status)
        self.client.set_terminated(run_id, STATES.get(status, "FINISHED"))


class MlflowTracker:
    """A train or stats run, or a compare (a parent and a child per method)."""

    name = "mlflow"

    def __init__(
        self,
        run_dir: Path,
        labels: list[str],
        params: dict[str, Any],
        tags: dict[str, str],
        parent_params: dict[str, Any] | None = None,
    ) -> None:
        self._mlflow = MlflowRuns()
        self._run_dir = run_dir
        self._parent: str | None = None
        self._runs: dict[str, str] = {}  # label -> run id, while open
        self._ended: list[str] = []  # the statuses the runs ended with
        try:
            if len(labels) > 1:
                self._parent = self._mlflow.start(run_dir.name, parent_params or params, tags)
                for label in labels:
                    child = {**tags, "mlflow.parentRunId": self._parent}
                    label_params = {**params, "init.method": label}
                    self._runs[label] = self._mlflow.start(label, label_params, child)
            else:
                (label,) = labels
                self._runs[label] = self._mlflow.start(run_dir.name, params, tags)
        except Exception:  # a compare's parent and some children made: end them
            self._mlflow.fail([*self._runs.values(), *([self._parent] if self._parent else [])])
            raise

    def log_point(self, label: str, point: LogPoint, layer_names: list[str]) -> None:
        self._mlflow.log(self._runs[label], point_metrics(point, layer_names), point.step)

    def log_stats(self, label: str, stats: StatsResult) -> None:
        self._mlflow.log(self._runs[label], stats_metrics(stats), 0)

    def _end(self, run_id: str, status: str) -> None:
        self._mlflow.end(run_id, status)
        self._ended.append(status)

    def finish(self, label: str, status: str, final: dict[str, float]) -> None:
        run_id = self._runs[label]
        self._mlflow.log(run_id, final, 0)
        if self._parent is None:
            self._mlflow.artifacts(run_id, self._run_dir)
        self._end(run_id, status)
        del self._runs[label]

    def abandon(self) -> None:
        """After a failure: nothing more is sent (a server that is gone or hangs would hold
        the run for each request's retries); MLflow shows what got there."""
        self._runs.clear()
        self._parent = None

    def close(self) -> None:
        """End what is still open: runs that never finished as failed, then the parent
        (with the run directory's files) as its children went."""
        for run_id in list(self._runs.values()):
            self._end(run_id, "failed")
        self._runs.clear()
        if self._parent is not None:
            parent, self._parent = self._parent, None
            if self._run_dir.is_dir():
                self._mlflow.artifacts(parent, self._run_dir)
            worst = [s for s in ("failed", "interrupted") if s in self._ended]
            self._end(parent, worst[0] if worst else "completed")


def sweep_key(sweep_dir: Path) -> str:
    """What finds a sweep's parent run again on resume (a tag value that needs no quoting
    in a search filter, whatever the path holds)."""
    import hashlib

    return hashlib.sha256(str(sweep_dir.resolve()).encode()).hexdigest()[:16]


class SweepMlflow:
    """A sweep: a parent run named after its directory, a child run per trial as each
    trial's files are written (the trials run in workers; their numbers come back with
    them, trackers.MetricsRecorder). A resumed sweep reopens its parent run, and a trial
    that runs again replaces the child of its earlier try: no run is there twice."""

    name = "mlflow"

    def __init__(
        self,
        base: Config,
        grid: dict[str, list[Any]],
        sweep_dir: Path,
        command: str,
        again: set[str],
    ) -> None:
        from ..loading import config_data
        from . import flat_config, run_tags

        self._mlflow = MlflowRuns()
        self._sweep_dir = sweep_dir
        self._command = command
        client = self._mlflow.client
        key = sweep_key(sweep_dir)
        found = client.search_runs(
            [self._mlflow.experiment], filter_string=f"tags.`winit.sweep` = '{key}'"
        )
        if found:  # resumed
            self.parent: str = found[0].info.run_id
            client.update_run(self.parent, status="RUNNING")
            client.set_tag(self.parent, "winit.status", "running")
            # every page first: deleting runs while paging by offset would skip some
            children = list(self._mlflow.every_run(f"tags.`mlflow.parentRunId` = '{self.parent}'"))
            for child in children:
                if child.data.tags.get("winit.trial") in again:
                    client.delete_run(child.info.run_id)
        else:
            # the base's values of the grid's fields are no trial's: the grid stands there
            base_params = flat_config(config_data(base))
            params = {k: v for k, v in base_params.items() if k not in grid}
            params.update(flat_config({"grid": grid}))
            tags = run_tags(base, sweep_dir, command) | {"winit.sweep": key}
            del tags["winit.config_hash"]  # a sweep is many experiments: its trials' hashes
            self.parent = self._mlflow.start(sweep_dir.name, params, tags)

    def log_trial(
        self, cfg: Config, trial_dir: Path, status: str, tracked: dict[str, Any] | None
    ) -> None:
        """A trial written to `trial_dir`: its child run, with the numbers its worker kept
        for MLflow (`tracked`: trackers.MetricsRecorder's; None for a failed trial)."""
        from ..loading import config_data
        from . import flat_config, run_tags

        tags = run_tags(cfg, trial_dir, self._command)
        tags |= {"mlflow.parentRunId": self.parent, "winit.trial": trial_dir.name}
        run_id = self._mlflow.start(trial_dir.name, flat_config(config_data(cfg)), tags)
        tracked = tracked or {}
        for step, metrics in tracked.get("steps", []):
            self._mlflow.log(run_id, metrics, step)
        self._mlflow.log(run_id, tracked.get("final", {}), 0)
        self._mlflow.artifacts(run_id, trial_dir)
        self._mlflow.end(run_id, status)

    def finish(self, status: str) -> None:
        """The sweep's own files (sweep.yaml, meta.json, results, heatmaps) and its end."""
        self._mlflow.artifacts(self.parent, self._sweep_dir)
        self._mlflow.end(self.parent, status)

    def abandon(self) -> None:
        """After a failure: nothing more is sent (see MlflowTracker.abandon); the trials
        after it have their directories, not child runs."""
