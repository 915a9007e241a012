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

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import point_metrics, stats_metrics

if TYPE_CHECKING:
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
}
# MLflow retries a request to a server for minutes by default (7 tries, 120 s each); a
# tracker must never hold a run that long, so unless the user says otherwise: 2 tries, 10 s
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
NOT_ARTIFACTS = {"tb"}  # TensorBoard's event files, still open beside us


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MlflowTracker:
    name = "mlflow"

    def __init__(
        self,
        run_dir: Path,
        labels: list[str],
        params: dict[str, Any],
        tags: dict[str, str],
        parent_params: dict[str, Any] | None = None,
    ) -> None:
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        # MLflow's INFO lines (a new database's migrations) are not winit's output
        for logger in ("mlflow", "alembic"):
            logging.getLogger(logger).setLevel(logging.WARNING)
        from mlflow import MlflowClient

        self._client = MlflowClient()
        self._run_dir = run_dir
        self._tags = tags
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        found = self._client.get_experiment_by_name(name)
        experiment = found.experiment_id if found else self._client.create_experiment(name)
        self._parent: str | None = None
        self._runs: dict[str, str] = {}  # label -> run id, while open
        self._ended: list[str] = []  # the statuses the runs ended with
        if len(labels) > 1:
            self._parent = self._start(experiment, run_dir.name, parent_params or params, {})
            for label in labels:
                child = {"mlflow.parentRunId": self._parent}
                label_params = {**params, "init.method": label}
                self._runs[label] = self._start(experiment, label, label_params, child)
        else:
            (label,) = labels
            self._runs[label] = self._start(experiment, run_dir.name, params, {})

    def _start(self, experiment: str, run_name: str, params: dict[str, Any],
               tags: dict[str, str]) -> str:  # fmt: skip
        from mlflow.entities import Param
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

        tags = {**self._tags, **tags, "winit.status": "running"}
        run = self._client.create_run(experiment, run_name=run_name, tags=tags)
        run_id: str = run.info.run_id
        # a value past MLflow's limit (a long list of layers) is cut; config.yaml has it whole
        entries = [Param(k, str(v)[:MAX_PARAM_VAL_LENGTH]) for k, v in params.items()]
        for batch in _chunks(entries, MAX_PARAMS_TAGS_PER_BATCH):
            self._client.log_batch(run_id, params=batch)
        return run_id

    def _log(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric
        from mlflow.utils.validation import MAX_METRICS_PER_BATCH

        now = int(time.time() * 1000)
        entries = [Metric(k, v, now, step) for k, v in metrics.items()]
        for batch in _chunks(entries, MAX_METRICS_PER_BATCH):
            self._client.log_batch(run_id, metrics=batch)

    def log_point(self, label: str, point: LogPoint, layer_names: list[str]) -> None:
        self._log(self._runs[label], point_metrics(point, layer_names), point.step)

    def log_stats(self, label: str, stats: StatsResult) -> None:
        self._log(self._runs[label], stats_metrics(stats), 0)

    def _artifacts(self, run_id: str) -> None:
        """The run directory's files, as they are on disk now (meta.json says finished)."""
        for entry in sorted(self._run_dir.iterdir()):
            if entry.name in NOT_ARTIFACTS or entry.name.startswith("."):
                continue
            if entry.is_dir():
                self._client.log_artifacts(run_id, str(entry), artifact_path=entry.name)
            elif entry.is_file():
                self._client.log_artifact(run_id, str(entry))

    def _end(self, run_id: str, status: str) -> None:
        self._client.set_tag(run_id, "winit.status", status)
        self._client.set_terminated(run_id, STATES.get(status, "FINISHED"))
        self._ended.append(status)

    def finish(self, label: str, status: str, final: dict[str, float]) -> None:
        run_id = self._runs[label]
        self._log(run_id, final, 0)
        if self._parent is None:
            self._artifacts(run_id)
        self._end(run_id, status)
        del self._runs[label]

    def close(self) -> None:
        """End what is still open: runs that never finished as failed, then the parent
        (with the run directory's files) as its children went."""
        for run_id in list(self._runs.values()):
            self._end(run_id, "failed")
        self._runs.clear()
        if self._parent is not None:
            parent, self._parent = self._parent, None
            if self._run_dir.is_dir():
                self._artifacts(parent)
            worst = [s for s in ("failed", "interrupted") if s in self._ended]
            self._end(parent, worst[0] if worst else "completed")
