"""`winit rerun`: repeat a saved run from its config.yaml and meta.json, then say whether
the new numbers are the old ones, file by file.

What a run directory is (a train run, a compare, a stats --out, a sweep's trial) is read
from its meta.json, and the run is repeated the way the original ran.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import WinitError
from .limits import read_json
from .saved_run import COMPARED, SavedRun, load_saved_run, shown

if TYPE_CHECKING:
    from .session import ProgressFactory, Recorded

__all__ = ["COMPARED", "RunMatch", "SavedRun", "load_saved_run", "match_runs", "rerun"]


@dataclass
class RunMatch:
    identical: bool
    files: dict[str, str] = field(default_factory=dict)  # file -> "identical" | a difference
    # what else differs between the two runs that may explain a difference (versions)
    notes: list[str] = field(default_factory=list)
    # file -> the columns or keys only the rerun has (a later winit logs more): not compared
    added: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "files": self.files,
            "notes": self.notes,
            "added": self.added,
        }


def _rows(f: Any) -> Any:
    return (row for row in csv.reader(f) if row)  # blank lines are no rows


def _projection(old: list[str], new: list[str]) -> list[int] | None:
    """Where each of the original's columns sits in the rerun's header, when the rerun
    has every one of them and more (a later winit logs more); None: compare by position."""
    if len(set(old)) != len(old) or len(set(new)) != len(new) or old == new:
        return None
    where = {name: k for k, name in enumerate(new)}
    return [where[name] for name in old] if all(name in where for name in old) else None


def _as_before(row: list[str], projection: list[int] | None, width: int) -> list[str]:
    """A rerun's row in the original's column order (cells past the header kept at the
    end, so that a ragged row still differs)."""
    if projection is None:
        return row
    cells = []
    for k in projection:
        if k >= len(row):
            break
        cells.append(row[k])
    return cells + row[width:]


def _csv_difference(old: Path, new: Path) -> tuple[str | None, list[str]]:
    """The first cell that differs, or how many rows each has, and the columns only the
    rerun has (not compared); read row by row (a metrics.csv may be large). Rows of any
    width compare; columns by name where the rerun has the original's and more."""
    with open(old, encoding="utf-8", newline="") as a, open(new, encoding="utf-8", newline="") as b:
        header: list[str] = []
        projection: list[int] | None = None
        added: list[str] = []
        counts = [0, 0]
        for i, (x, y) in enumerate(zip_longest(_rows(a), _rows(b))):
            if i == 0:
                header = x or []
                projection = _projection(header, y or [])
                if projection is not None and y is not None:
                    added = [name for name in y if name not in set(header)]
            counts[0] += x is not None
            counts[1] += y is not None
            if y is not None:
                y = _as_before(y, projection, len(header) + len(added))
            if x is None or y is None or x == y:
                continue
            column = next(j for j in range(max(len(x), len(y))) if x[j : j + 1] != y[j : j + 1])
            name = shown(header[column]) if column < len(header) else f"column {column + 1}"
            was, now = (shown(row[column]) if column < len(row) else "-" for row in (x, y))
            return f"row {i} differs first in {name}: {was} before, {now} now", added
    if counts[0] != counts[1]:
        if not all(counts):
            return ("empty now" if counts[0] else "empty before"), added
        return f"{counts[0] - 1} rows before, {counts[1] - 1} now", added
    return None, added


def _canonical(value: Any) -> str:
    # as text, so that a NaN a hand edit put in equals itself
    return json.dumps(value, sort_keys=True)


def _json_as_before(old: Any, new: Any, path: str, added: dict[str, None]) -> Any:
    """The rerun's JSON without the keys the original has nowhere at the same place (a
    later winit writes more), their paths noted in `added` (list positions left out)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in new:
            if key not in old:
                added[f"{path}{key}"] = None
        return {
            k: _json_as_before(old[k], v, f"{path}{k}.", added) for k, v in new.items() if k in old
        }
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [_json_as_before(a, b, path, added) for a, b in zip(old, new, strict=True)]
    return new


def _json_difference(old: Path, new: Path) -> tuple[str | None, list[str]]:
    """The top-level keys whose values differ, and the keys only the rerun has."""
    a, b = (read_json(p) for p in (old, new))
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return (None if _canonical(a) == _canonical(b) else "differs"), []
    a.pop("run_dir", None)
    b.pop("run_dir", None)
    added: dict[str, None] = {}
    b = _json_as_before(a, b, "", added)
    missing = object()
    keys = [
        k
        for k in {**a, **b}
        if a.get(k, missing) is missing
        or b.get(k, missing) is missing
        or _canonical(a[k]) != _canonical(b[k])
    ]
    return (f"differs in {', '.join(shown(k) for k in keys[:5])}" if keys else None), list(added)


def match_runs(original: str | Path, rerun: str | Path) -> RunMatch:
    """Compare the result files the two run directories both have. A file that cannot be
    read now (changed while the rerun ran) is a difference, said as such."""
    original, rerun = Path(original), Path(rerun)
    files: dict[str, str] = {}
    added: dict[str, list[str]] = {}
    for name in COMPARED:
        old, new = original / name, rerun / name
        if not old.exists():
            continue
        if not new.exists():
            files[name] = "missing from the rerun"
            continue
        check = _csv_difference if name.endswith(".csv") else _json_difference
        try:
            difference, new_keys = check(old, new)
            files[name] = difference or "identical"
            if new_keys:
                added[name] = [shown(k) for k in new_keys]
        except (OSError, UnicodeDecodeError, csv.Error, WinitError) as err:
            files[name] = f"unreadable now ({shown(str(err), 120)})"
    if not files:
        raise WinitError(f"{original}: has none of {', '.join(COMPARED)} to compare against")
    return RunMatch(all(v == "identical" for v in files.values()), files, added=added)


def rerun_home(saved: SavedRun) -> Path:
    """Where a rerun goes without --runs-dir: beside the original; for a sweep's trial that
    still sits in its sweep (<sweep>/trials/<trial>/, sweep.yaml there), beside the sweep,
    not among its trials. A trial copied out of its sweep is rerun beside itself."""
    original = Path(os.path.abspath(saved.path))  # `.` and `..` too: never inside it
    trials = original.parent
    if (
        saved.experiment.sweep is not None
        and trials.name == "trials"
        and (trials.parent / "sweep.yaml").is_file()
    ):
        home = trials.parent.parent
    else:
        home = original.parent
    # shown as the original was given: relative to here if it was
    return home if saved.path.is_absolute() else Path(os.path.relpath(home))


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

    saved = load_saved_run(run_dir)  # every file it reads, checked before anything runs
    cfg, experiment = saved.config, saved.experiment
    root = runs_dir or rerun_home(saved)
    if experiment.command == "train":
        recorded = session.train(
            cfg,
            runs_dir=root,
            progress=progress,
            command=command,
            # conv kernels round differently with another thread count: as the original
            threads=experiment.threads,
            measure_after=experiment.measured_after,
        )
    elif experiment.command == "compare":
        recorded = session.compare(
            cfg, saved.specs, runs_dir=root, progress=progress, command=command, spp=experiment.spp
        )
    else:
        recorded = session.stats(cfg, spp=experiment.spp, keep=True, runs_dir=root, command=command)
    assert recorded.run_dir is not None
    match = match_runs(saved.path, recorded.run_dir)
    before, now = _meta(saved.path), _meta(recorded.run_dir)
    _match_model_file(before.get("model_file"), now.get("model_file"), match)
    match.notes += _version_changes(before.get("versions"), now.get("versions"))
    return saved, recorded, match


def _meta(run_dir: Path) -> dict[str, Any]:
    """A run's meta.json as read (checked already, for the original), or {}."""
    try:
        meta = read_json(run_dir / "meta.json")
    except WinitError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _version_changes(before: Any, now: Any) -> list[str]:
    """The versions that decide the numbers (winit's theory, torch's kernels) and differ
    between the run and its rerun, each as a note."""
    if not isinstance(before, dict) or not isinstance(now, dict):
        return []
    return [
        f"{key} {shown(str(before[key]), 40)} then, {now[key]} now"
        for key in ("winit", "torch", "numpy", "python")
        if key in before and key in now and before[key] != now[key]
    ]


def _match_model_file(before: Any, now: Any, match: RunMatch) -> None:
    """A run of a user's module file: whether the file is the one the numbers came from
    (when it changed, differing numbers are no fault of winit's)."""
    if not all(isinstance(m, dict) and isinstance(m.get("sha256"), str) for m in (before, now)):
        return
    if before["sha256"] == now["sha256"]:
        match.files["model file"] = "identical"
        return
    match.identical = False
    match.files["model file"] = (
        f"changed since the run: sha256 {shown(before['sha256'][:12])}… before, "
        f"{now['sha256'][:12]}… now ({shown(str(now.get('path', '')))})"
    )
