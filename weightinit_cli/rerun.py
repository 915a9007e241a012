"""`winit rerun`: repeat a saved run from its config.yaml and meta.json, then say whether
the new numbers are the old ones, file by file.

What a run directory is (a train run, a compare, a stats --out, a sweep's trial) is read
from its meta.json, and the run is repeated the way the original ran.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import WinitError

if TYPE_CHECKING:
    from .session import ProgressFactory, Recorded

# What must match bit for bit; summary.json names its own run directory, so that key is
# left out of the comparison.
COMPARED = ("metrics.csv", "layers.csv", "summary.json")


@dataclass
class SavedRun:
    path: Path
    config: Any
    experiment: dict[str, Any]


@dataclass
class RunMatch:
    identical: bool
    files: dict[str, str] = field(default_factory=dict)  # file -> "identical" | a difference

    def to_dict(self) -> dict[str, Any]:
        return {"identical": self.identical, "files": self.files}


def load_saved_run(path: str | Path) -> SavedRun:
    """The config and experiment of a run directory, or a WinitError saying what is missing."""
    from .loading import load_config

    path = Path(path)
    if not path.is_dir():
        raise WinitError(f"{path}: not a run directory")
    if (path / "sweep.yaml").is_file():
        raise WinitError(
            f"{path} is a sweep: `winit sweep {path / 'sweep.yaml'} --fresh` repeats it "
            "(without --fresh it resumes), and `winit rerun` repeats one of its trials/"
        )
    for name in ("config.yaml", "meta.json"):
        if not (path / name).is_file():
            raise WinitError(f"{path}: no {name}; is it a run directory written by winit?")
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError) as err:
        raise WinitError(f"{path / 'meta.json'}: unreadable ({err})") from None
    experiment = meta.get("experiment") if isinstance(meta, dict) else None
    if not isinstance(experiment, dict) or experiment.get("command") not in (
        "train",
        "compare",
        "stats",
    ):
        raise WinitError(f"{path / 'meta.json'}: does not say which experiment ran")
    return SavedRun(path, load_config(path / "config.yaml"), experiment)


def _csv_difference(old: Path, new: Path) -> str | None:
    with open(old, newline="") as a, open(new, newline="") as b:
        old_rows, new_rows = list(csv.reader(a)), list(csv.reader(b))
    header = old_rows[0] if old_rows else []
    for i, (x, y) in enumerate(zip(old_rows, new_rows, strict=False)):
        if x != y:
            column = next(j for j in range(max(len(x), len(y))) if x[j : j + 1] != y[j : j + 1])
            name = header[column] if column < len(header) else f"column {column + 1}"
            was, now = (row[column] if column < len(row) else "-" for row in (x, y))
            return f"row {i} differs first in {name}: {was} before, {now} now"
    if len(old_rows) != len(new_rows):
        return f"{len(old_rows) - 1} rows before, {len(new_rows) - 1} now"
    return None


def _json_difference(old: Path, new: Path) -> str | None:
    a, b = (json.loads(p.read_text()) for p in (old, new))
    for data in (a, b):
        if isinstance(data, dict):
            data.pop("run_dir", None)
    if a == b:
        return None
    keys = [k for k in a if a.get(k) != b.get(k)] if isinstance(a, dict) else []
    return f"differs in {', '.join(keys[:5])}" if keys else "differs"


def match_runs(original: str | Path, rerun: str | Path) -> RunMatch:
    """Compare the result files the two run directories both have."""
    original, rerun = Path(original), Path(rerun)
    files: dict[str, str] = {}
    for name in COMPARED:
        old, new = original / name, rerun / name
        if not old.exists():
            continue
        if not new.exists():
            files[name] = "missing from the rerun"
            continue
        check = _csv_difference if name.endswith(".csv") else _json_difference
        files[name] = check(old, new) or "identical"
    if not files:
        raise WinitError(f"{original}: has none of {', '.join(COMPARED)} to compare against")
    return RunMatch(all(v == "identical" for v in files.values()), files)


def rerun(
    run_dir: str | Path,
    *,
    runs_dir: str | Path | None = None,
    progress: ProgressFactory | None = None,
    command: str = "",
) -> tuple[SavedRun, Recorded, RunMatch]:
    """Run a saved run again, as it ran: into a new directory beside it (a sweep's trial:
    beside the sweep, not among its trials) or under `runs_dir`; and compare the two."""
    from . import session

    saved = load_saved_run(run_dir)
    cfg, experiment = saved.config, saved.experiment
    home = saved.path.parent.parent.parent if "sweep" in experiment else saved.path.parent
    root = runs_dir or home
    if experiment["command"] == "train":
        recorded = session.train(
            cfg,
            runs_dir=root,
            progress=progress,
            command=command,
            # conv kernels round differently with another thread count: as the original
            threads=experiment.get("threads"),
            measure_after=experiment.get("measured_after", True),
        )
    elif experiment["command"] == "compare":
        specs = [cfg.init.spec_for(m["method"], m["params"]) for m in experiment["methods"]]
        recorded = session.compare(
            cfg,
            specs,
            runs_dir=root,
            progress=progress,
            command=command,
            spp=experiment.get("spp") is True,
        )
    else:
        recorded = session.stats(
            cfg, spp=experiment.get("spp") is True, keep=True, runs_dir=root, command=command
        )
    assert recorded.run_dir is not None
    return saved, recorded, match_runs(saved.path, recorded.run_dir)
