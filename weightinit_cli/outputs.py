"""What each command writes into a run directory, built from its result data."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import WinitError
from .runs import (
    CsvAppender,
    csv_text,
    staged_dir,
    utc_now,
    write_atomic,
    write_csv,
    write_json,
)

if TYPE_CHECKING:
    from .config import Config
    from .experiments import CompareResult, StatsResult, TrainResult
    from .train import TrainHistory


def completed_meta(cfg: Config, command: str, experiment: dict[str, Any]) -> dict[str, Any]:
    """meta.json of a run that is written whole once it is done (stats, reproduce)."""
    from .config import config_hash

    return {
        "status": "completed",
        "command": command,
        "experiment": experiment,
        "seed": cfg.seed,
        "device": cfg.device,
        "config_hash": config_hash(cfg),
        "finished_at": utc_now(),
        "versions": environment(),
    }


def write_stats(target: str | Path, cfg: Config, result: StatsResult, command: str) -> Path:
    """config.yaml, meta.json, layers.csv, summary.json and std_vs_depth.png, all or nothing."""

    from .config import config_to_yaml
    from .plots import png_bytes, std_profiles
    from .report import layer_row, stats_json

    meta = completed_meta(cfg, command, {"command": "stats"})
    with staged_dir(target) as staging:
        write_atomic(staging / "config.yaml", config_to_yaml(cfg))
        write_json(staging / "meta.json", meta)
        write_csv(staging / "layers.csv", [layer_row(layer) for layer in result.layers])
        write_json(staging / "summary.json", stats_json(result))
        figure = std_profiles({result.method: result.layers}, title=f"{result.name}: std vs depth")
        write_atomic(staging / "std_vs_depth.png", png_bytes(figure))
    return Path(target)


def environment() -> dict[str, str]:
    """Versions that decide the numbers of a run."""
    import platform

    import numpy
    import torch

    from . import __version__

    return {
        "winit": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }


class RunRecorder:
    """A run directory filled as the run goes: config and meta.json first, metrics.csv a
    row per log step, results at the end. meta.json says "running" until the run ends,
    so a killed process is recognisable; every other file is whole or absent."""

    def __init__(
        self,
        cfg: Config,
        *,
        root: str | Path | None = None,
        out: str | Path | None = None,
        name: str | None = None,
        device: str = "cpu",
        command: str = "",
    ) -> None:
        from .config import config_hash, config_to_yaml
        from .runs import exact_run_dir, new_run_dir, runs_root

        self.dir = (
            exact_run_dir(out) if out is not None else new_run_dir(runs_root(root), name or "run")
        )
        self.metrics: CsvAppender | None = None
        self.meta = {
            "status": "running",
            "command": command,
            "seed": cfg.seed,
            "device": device,
            "config_hash": config_hash(cfg),
            "started_at": utc_now(),
            "finished_at": None,
            "versions": environment(),
        }
        write_atomic(self.dir / "config.yaml", config_to_yaml(cfg))
        write_json(self.dir / "meta.json", self.meta)

    def open_metrics(self, columns: list[str]) -> None:
        self.metrics = CsvAppender(self.dir / "metrics.csv", columns)

    def append_metrics(self, row: dict) -> None:
        if self.metrics is not None:
            self.metrics.append(row)

    def reorder_metrics(self, key: Callable[[dict[str, str]], Any]) -> None:
        """Rewrite metrics.csv whole, rows sorted by `key`: rows from concurrent workers
        arrive interleaved, but the finished file must not depend on scheduling."""
        import csv

        if self.metrics is None:
            return
        self.metrics.close()
        with open(self.metrics.path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if rows:
            write_atomic(self.metrics.path, csv_text(sorted(rows, key=key)))

    def write(self, name: str, data: str | bytes) -> None:
        write_atomic(self.dir / name, data)

    def finish(self, status: str, best_effort: bool = False) -> None:
        """Close metrics.csv and write the final meta.json; `best_effort` while failing
        already (a full disk must not hide the first error behind a second one)."""
        self.meta["status"] = status
        self.meta["finished_at"] = utc_now()
        try:
            if self.metrics is not None:
                self.metrics.close()
            write_json(self.dir / "meta.json", self.meta)
        except (OSError, WinitError):
            if not best_effort:
                raise


def train_files(result: TrainResult, run_dir: str) -> dict[str, str | bytes]:
    """A training run's result files: layers.csv (at init and after training), summary.json
    and loss.png."""
    from .plots import loss_curves, png_bytes
    from .report import layer_row, train_json

    rows = [layer_row(layer, when="init") for layer in result.before.layers]
    rows += [layer_row(layer, when="final") for layer in result.after.layers]
    figure = loss_curves({result.before.method: result.history}, title=result.name)
    return {
        "layers.csv": csv_text(rows),
        "summary.json": json.dumps(train_json(result, run_dir), indent=2),
        "loss.png": png_bytes(figure),
    }


def train_timing(history: TrainHistory) -> dict[str, float | None]:
    """meta.json's "timing" of a training run."""
    return {
        "train_loop_seconds": round(history.seconds, 4),
        "steps_per_second": round(history.steps / history.seconds, 2) if history.seconds else None,
    }


def write_train(recorder: RunRecorder, result: TrainResult) -> None:
    """layers.csv, summary.json and loss.png, and the loop's timing in meta.json."""
    for name, data in train_files(result, str(recorder.dir)).items():
        recorder.write(name, data)
    recorder.meta["timing"] = train_timing(result.history)


def write_compare(recorder: RunRecorder, result: CompareResult) -> None:
    """layers.csv (a row per method and layer), summary.json and compare.png."""
    from .plots import compare_figure, png_bytes
    from .report import compare_json, layer_row

    order = {run.method: i for i, run in enumerate(result.runs)}
    recorder.reorder_metrics(lambda row: (order.get(row["method"], len(order)), int(row["step"])))
    rows = [
        layer_row(layer, method=run.method) for run in result.runs for layer in run.stats.layers
    ]
    recorder.write("layers.csv", csv_text(rows))
    recorder.write("summary.json", json.dumps(compare_json(result), indent=2))
    recorder.write("compare.png", png_bytes(compare_figure(result)))


@dataclass
class Recorded:
    """An experiment's result, where it was written, and the exit code of a stop signal."""

    result: Any
    run_dir: Path
    exit_code: int  # 130 / 143 after Ctrl-C / SIGTERM, else 0


def _recorded(
    cfg: Config,
    *,
    labels: list[str],
    experiment: dict[str, Any],
    run: Callable[..., Any],
    write: Callable[[RunRecorder, Any], None],
    status: Callable[[Any], str],
    runs_dir: str | Path | None,
    out: str | Path | None,
    name: str,
    progress: bool,
    command: str,
) -> Recorded:
    """Run an experiment into a new run directory, with progress and clean interruption.

    Everything that can be refused (device, data, names) is checked before the directory
    exists, so bad input leaves no run directory behind.
    """
    from .experiments import build_dataset, resolve_device
    from .interrupts import GracefulStop
    from .models import plan_layers
    from .render import TrainProgress
    from .report import metrics_columns, metrics_row

    device = resolve_device(cfg.device)
    data = build_dataset(cfg)
    names = [p.name for p in plan_layers(cfg.model) if p.weight_shape is not None]
    compare = experiment["command"] == "compare"
    recorder = RunRecorder(cfg, root=runs_dir, out=out, name=name, device=device, command=command)
    recorder.meta["experiment"] = experiment
    recorder.open_metrics(metrics_columns(names, *(["method"] if compare else [])))
    stop = GracefulStop()
    try:
        with stop, TrainProgress(cfg.train.steps, labels, enabled=progress) as bar:

            def on_log(label: str, point: Any) -> None:
                extra = {"method": label} if compare else {}
                recorder.append_metrics(metrics_row(point, names, **extra))
                bar.update(label, point)

            result = run(data, on_log, stop)
        write(recorder, result)
    except BaseException as err:
        interrupted = isinstance(err, KeyboardInterrupt)
        recorder.finish("interrupted" if interrupted else "failed", best_effort=True)
        raise
    recorder.finish("interrupted" if stop() else status(result))
    return Recorded(result, recorder.dir, stop.exit_code)


def recorded_train(
    cfg: Config,
    *,
    runs_dir: str | Path | None = None,
    progress: bool = True,
    command: str = "",
) -> Recorded:
    """`winit train`: the config's method, trained, in a new run directory."""
    from .experiments import run_train

    label = cfg.init.method

    def run(data: Any, on_log: Callable, stop: Callable[[], bool]) -> Any:
        return run_train(
            cfg, on_log=lambda point: on_log(label, point), should_stop=stop, data=data
        )

    return _recorded(
        cfg,
        labels=[label],
        experiment={"command": "train"},
        run=run,
        write=write_train,
        status=lambda result: "diverged" if result.history.status == "diverged" else "completed",
        runs_dir=runs_dir,
        out=None,
        name=cfg.name or "run",
        progress=progress,
        command=command,
    )


def recorded_compare(
    cfg: Config,
    methods: list[tuple[str, dict[str, Any]]],
    *,
    runs_dir: str | Path | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    command: str = "",
    jobs: int | None = None,
    spp: bool = False,
) -> Recorded:
    """`winit compare`: each method on the same model, data and seed, in one run directory."""
    from .experiments import run_compare

    def run(data: Any, on_log: Callable, stop: Callable[[], bool]) -> Any:
        return run_compare(
            cfg, methods, on_log=on_log, should_stop=stop, data=data, jobs=jobs, spp=spp
        )

    return _recorded(
        cfg,
        labels=[m for m, _ in methods],
        experiment={
            "command": "compare",
            "methods": [{"method": m, "params": p} for m, p in methods],
        },
        run=run,
        write=write_compare,
        status=lambda result: "completed",
        runs_dir=runs_dir,
        out=out,
        name=f"compare-{cfg.name}",
        progress=progress,
        command=command,
    )


def recorded_stats(
    cfg: Config, *, runs_dir: str | Path | None = None, command: str = ""
) -> Recorded:
    """`winit stats` into a new run directory under the runs root (for `winit rerun`)."""
    from .experiments import run_stats
    from .runs import new_run_dir, runs_root

    result = run_stats(cfg)
    target = new_run_dir(runs_root(runs_dir), f"stats-{cfg.name}")
    return Recorded(result, write_stats(target, cfg, result, command), 0)


def write_finding(
    cfg: Config, finding: Any, *, runs_dir: str | Path | None = None, command: str = ""
) -> Path:
    """A reproduction's run directory: config.yaml, meta.json, finding.json and its plots."""

    from .config import config_to_yaml
    from .plots import png_bytes
    from .runs import new_run_dir, runs_root

    target = new_run_dir(runs_root(runs_dir), f"reproduce-{finding.name}")
    meta = completed_meta(cfg, command, {"command": "reproduce", "name": finding.name})
    with staged_dir(target) as staging:
        write_atomic(staging / "config.yaml", config_to_yaml(cfg))
        write_json(staging / "meta.json", meta)
        write_json(staging / "finding.json", finding.to_dict())
        for name, figure in finding.figures.items():
            write_atomic(staging / name, png_bytes(figure))
    return target
