"""What each command writes into a run directory, built from its result data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from .runs import CsvAppender, csv_text, staged_dir, write_atomic, write_csv, write_json

if TYPE_CHECKING:
    from .config import Config
    from .experiments import CompareResult, StatsResult, TrainResult


def write_stats(target: str | Path, cfg: Config, result: StatsResult) -> Path:
    """config.yaml, layers.csv, summary.json and std_vs_depth.png, all or nothing."""
    from .config import config_to_yaml
    from .plots import png_bytes, std_profiles
    from .report import layer_row, stats_json

    with staged_dir(target) as staging:
        write_atomic(staging / "config.yaml", config_to_yaml(cfg))
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
    ) -> None:
        import sys
        from datetime import datetime, timezone

        from .config import config_hash, config_to_yaml
        from .runs import exact_run_dir, new_run_dir, runs_root

        self.dir = (
            exact_run_dir(out) if out is not None else new_run_dir(runs_root(root), name or "run")
        )
        self.metrics: CsvAppender | None = None
        self.meta = {
            "status": "running",
            "command": " ".join(["winit", *sys.argv[1:]]),
            "seed": cfg.seed,
            "device": device,
            "config_hash": config_hash(cfg),
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
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

    def write(self, name: str, data: str | bytes) -> None:
        write_atomic(self.dir / name, data)

    def finish(self, status: str, **extra: object) -> None:
        from datetime import datetime, timezone

        if self.metrics is not None:
            self.metrics.close()
        self.meta.update(status=status, **extra)
        self.meta["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_json(self.dir / "meta.json", self.meta)


def write_train(recorder: RunRecorder, result: TrainResult) -> None:
    """layers.csv (at init and after training), summary.json and loss.png."""
    from .plots import loss_curves, png_bytes
    from .report import layer_row, train_json

    rows = [layer_row(layer, when="init") for layer in result.before.layers]
    rows += [layer_row(layer, when="final") for layer in result.after.layers]
    recorder.write("layers.csv", csv_text(rows))
    recorder.write("summary.json", json.dumps(train_json(result, str(recorder.dir)), indent=2))
    figure = loss_curves({result.before.method: result.history}, title=result.name)
    recorder.write("loss.png", png_bytes(figure))


def write_compare(recorder: RunRecorder, result: CompareResult) -> None:
    """layers.csv (a row per method and layer), summary.json and compare.png."""
    from .plots import compare_figure, png_bytes
    from .report import compare_json, layer_row

    rows = [
        layer_row(layer, method=run.method) for run in result.runs for layer in run.stats.layers
    ]
    recorder.write("layers.csv", csv_text(rows))
    recorder.write("summary.json", json.dumps(compare_json(result), indent=2))
    recorder.write("compare.png", png_bytes(compare_figure(result)))
