"""Trackers: where a run is also shown, beside its run directory (TensorBoard, MLflow).

A tracker renders result data as it comes: each log point of a training run, the
statistics of a `stats` pass, the run's end. It never decides anything about the run: a
tracker that fails (a disk full, a directory gone) is dropped at its first failure, with
one warning for the caller to show, and the run and its directory go on as they would.
Nothing here imports a tracker's package until a run asks for it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import WinitError

if TYPE_CHECKING:
    from ..config import Config
    from ..experiments import StatsResult
    from ..train import LogPoint, TrainHistory

# the package each tracker needs, and how to install it
PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}
INSTALL = {name: f"pip install 'weightinit-cli[{name}]'" for name in PACKAGES}
# where a run directory holds its TensorBoard run, and what TensorBoard names its files
EVENTS_DIR = "tb"
EVENT_FILE_PREFIX = "events.out.tfevents."
# what a log point and a stats pass show, under the same names in every tracker
SCALARS = ("loss", "accuracy", "test_loss", "grad_norm")
WEIGHT_METRICS = ("spectral_norm", "stable_rank", "alpha")


class Tracker(Protocol):
    name: str

    def log_point(self, label: str, point: LogPoint, layer_names: list[str]) -> None: ...

    def log_stats(self, label: str, stats: StatsResult) -> None: ...

    def finish(self, label: str, status: str, final: dict[str, float]) -> None: ...

    def close(self) -> None: ...

    def abandon(self) -> None:
        """Let go after a failure, without waiting on whatever failed."""


def check_trackers(cfg: Config) -> None:
    """Refuse, before a run has a home, a tracker whose package is missing or a log_dir
    that cannot be written (the commands that feed no tracker refuse the config itself:
    loading.load_config)."""
    from ..runs import check_creatable

    for name in cfg.log:
        if importlib.util.find_spec(PACKAGES[name]) is None:
            raise WinitError(f"log: {name} needs the {PACKAGES[name]} package: {INSTALL[name]}")
    if cfg.log and cfg.log_dir is not None:
        check_creatable(cfg.log_dir, "log_dir")


def flat_config(data: dict[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """A config as dotted names and plain values (lists and nulls as text)."""
    import json

    out: dict[str, bool | int | float | str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_config(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = json.dumps(value)
    return out


def _finite(values: dict[str, float | None]) -> dict[str, float]:
    # NaN and infinity (a diverged run) stay in metrics.csv: MLflow's SQL stores clip them
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}


def point_metrics(
    point: LogPoint, layer_names: list[str], nonfinite_loss: bool = False
) -> dict[str, float]:
    """A log point's numbers: loss, accuracy, test_loss, grad_norm, grad_std/<layer> and
    the weight metrics (spectral_norm/<layer>, ...). `nonfinite_loss`: loss, accuracy,
    test_loss and grad_norm even where NaN or infinite (TensorBoard shows a diverged run's
    NaN; MLflow's SQL stores would clip it)."""
    values: dict[str, float | None] = {}
    for name, std in zip(layer_names, point.layer_grad_std, strict=True):
        values[f"grad_std/{name}"] = std
    for name, metrics in zip(layer_names, point.layer_weights, strict=False):
        for metric in WEIGHT_METRICS:
            values[f"{metric}/{name}"] = getattr(metrics, metric)
    scalars = {tag: getattr(point, tag) for tag in SCALARS}
    if nonfinite_loss:
        return {k: float(v) for k, v in scalars.items() if v is not None} | _finite(values)
    return _finite(scalars | values)


def stats_metrics(stats: StatsResult) -> dict[str, float]:
    """A stats pass's numbers: loss, activation_std/<layer> and grad_std/<layer>."""
    values: dict[str, float | None] = {"loss": stats.loss}
    for layer in stats.layers:
        values[f"activation_std/{layer.name}"] = layer.activation.std
        values[f"grad_std/{layer.name}"] = layer.grad.std
    return _finite(values)


def final_metrics(history: TrainHistory | None, loss: float | None = None) -> dict[str, float]:
    """The numbers a run ends with, for a tracker's hparams view (finite ones only)."""
    values: dict[str, float | None] = {"loss": loss}
    if history is not None:
        values = {
            "final_loss": history.final_loss,
            "final_accuracy": history.final_accuracy,
            "steps_to_target": history.steps_to_target,
        }
    return _finite(values)


class Trackers:
    """Every tracker of one run, each call guarded (see the module's docstring)."""

    def __init__(self, trackers: list[Any]) -> None:
        self._live = list(trackers)
        self.warnings: list[str] = []

    def __bool__(self) -> bool:
        return bool(self._live)

    def add(self, tracker: Any) -> None:
        self._live.append(tracker)

    def each(self, call: Callable[[Any], None]) -> None:
        """`call` on each live tracker; the first to fail is dropped, with a warning."""
        for tracker in list(self._live):
            try:
                call(tracker)
            except Exception as err:  # noqa: BLE001 -- a tracker never costs the run
                self._live.remove(tracker)
                self.warnings.append(
                    f"{tracker.name} stopped logging ({type(err).__name__}: {err}); the run "
                    "goes on and its directory has every number"
                )
                # already failed and reported: let it go without waiting on it again
                with contextlib.suppress(Exception):
                    tracker.abandon()

    def log_point(self, label: str, point: LogPoint, layer_names: list[str]) -> None:
        self.each(lambda t: t.log_point(label, point, layer_names))

    def log_stats(self, label: str, stats: StatsResult) -> None:
        self.each(lambda t: t.log_stats(label, stats))

    def finish(self, label: str, status: str, final: dict[str, float]) -> None:
        self.each(lambda t: t.finish(label, status, final))

    def close(self) -> None:
        self.each(lambda t: t.close())


def run_tags(cfg: Config, run_dir: Path, command: str) -> dict[str, str]:
    """What a tracker's run says of where it came from (MLflow's tags)."""
    from .. import __version__
    from ..loading import config_hash

    return {
        "winit.version": __version__,
        "winit.command": command,
        "winit.config_hash": config_hash(cfg),
        "winit.run_dir": str(run_dir.resolve()),
    }


def _mlflow(cfg: Config, run_dir: Path, labels: list[str], command: str) -> Tracker:
    from ..loading import config_data
    from .mlflow import MlflowTracker

    params = flat_config(config_data(cfg))
    # a parent run (compare's) holds what its children share: all but the init's method
    shared = {k: v for k, v in params.items() if k != "init.method"}
    return MlflowTracker(run_dir, labels, params, run_tags(cfg, run_dir, command), shared)


class MetricsRecorder:
    """Where a sweep trial's MLflow numbers wait: the trial runs in a worker, its MLflow run
    is the driver's (mlflow.SweepMlflow), and this is what travels back."""

    name = "mlflow"

    def __init__(self) -> None:
        self.steps: list[tuple[int, dict[str, float]]] = []
        self.final: dict[str, float] = {}

    def log_point(self, label: str, point: LogPoint, layer_names: list[str]) -> None:
        self.steps.append((point.step, point_metrics(point, layer_names)))

    def log_stats(self, label: str, stats: StatsResult) -> None:
        self.steps.append((0, stats_metrics(stats)))

    def finish(self, label: str, status: str, final: dict[str, float]) -> None:
        self.final = final

    def close(self) -> None:
        pass

    def abandon(self) -> None:
        pass


class WorkerTrackers(Trackers):
    """A sweep trial's trackers, in its worker: TensorBoard into a scratch directory whose
    files go back with the trial's (tb/...), MLflow's numbers kept (MetricsRecorder)."""

    def __init__(self, scratch: Path) -> None:
        super().__init__([])
        self._scratch = scratch
        self._recorder: MetricsRecorder | None = None

    def record(self) -> None:
        self._recorder = MetricsRecorder()
        self.add(self._recorder)

    def files(self) -> dict[str, str | bytes]:
        return {
            f"{EVENTS_DIR}/{path.relative_to(self._scratch).as_posix()}": path.read_bytes()
            for path in sorted(self._scratch.rglob("*"))
            if path.is_file()
        }

    def recorded(self) -> dict[str, Any] | None:
        if self._recorder is None:
            return None
        return {"steps": self._recorder.steps, "final": self._recorder.final}


def open_worker_trackers(cfg: Config, scratch: Path, label: str) -> WorkerTrackers:
    opened = WorkerTrackers(scratch)
    if "tensorboard" in cfg.log:
        _guarded_start(opened, "tensorboard", lambda: _tensorboard(cfg, scratch, [label]))
    if "mlflow" in cfg.log:
        opened.record()
    return opened


def _tensorboard(cfg: Config, base: Path, labels: list[str]) -> Tracker:
    from ..loading import config_data
    from .tensorboard import TensorBoardTracker

    return TensorBoardTracker(base, labels, flat_config(config_data(cfg)))


def _guarded_start(opened: Trackers, name: str, start: Callable[[], Any]) -> None:
    try:
        opened.add(start())
    except Exception as err:  # noqa: BLE001 -- a tracker never costs the run
        opened.warnings.append(f"{name} did not start ({type(err).__name__}: {err})")


def open_trackers(cfg: Config, run_dir: Path, labels: list[str], command: str) -> Trackers:
    """The config's trackers for `command`'s run in `run_dir`, with a tracker run per label
    (compare: a method each). TensorBoard writes under `log_dir`/<run directory's name>
    or the run directory's tb/; MLflow where MLFLOW_TRACKING_URI says. One that cannot
    start is a warning, as one that fails later."""
    opened = Trackers([])
    if "tensorboard" in cfg.log:
        base = Path(cfg.log_dir) / run_dir.name if cfg.log_dir else run_dir / EVENTS_DIR
        _guarded_start(opened, "tensorboard", lambda: _tensorboard(cfg, base, labels))
    if "mlflow" in cfg.log:
        _guarded_start(opened, "mlflow", lambda: _mlflow(cfg, run_dir, labels, command))
    return opened


def open_sweep_trackers(
    base: Config, grid: dict[str, list[Any]], sweep_dir: Path, command: str, again: set[str]
) -> Trackers:
    """A sweep's own trackers, in its driver: MLflow's parent run, a child per trial as it
    is written (mlflow.SweepMlflow). `again`: the trials that will run again. Each
    trial's TensorBoard run is its worker's (open_worker_trackers)."""
    opened = Trackers([])
    if "mlflow" in base.log:
        from functools import partial

        from .mlflow import SweepMlflow

        start = partial(SweepMlflow, base, grid, sweep_dir, command, again)
        _guarded_start(opened, "mlflow", start)
    return opened


__all__ = [
    "INSTALL",
    "Tracker",
    "Trackers",
    "check_trackers",
    "final_metrics",
    "flat_config",
    "open_sweep_trackers",
    "open_trackers",
    "open_worker_trackers",
    "point_metrics",
    "run_tags",
    "stats_metrics",
]
