"""What each command writes into a run directory, built from its result data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .runs import staged_dir, write_atomic, write_csv, write_json

if TYPE_CHECKING:
    from .config import Config
    from .experiments import StatsResult


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
