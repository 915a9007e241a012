"""Run directories: create them, never overwrite, and write them with one RunWriter.

A run lives in `<root>/<UTC timestamp>_<name>/`; the root is `--runs-dir`, else
$WINIT_RUNS_DIR, else ./runs. A file appears complete or not at all (temp file +
rename); a directory written whole is staged beside its target and renamed into place
when complete, so a failed command leaves nothing half-written.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import WinitError

if TYPE_CHECKING:
    from .config import Config

RUNS_ENV = "WINIT_RUNS_DIR"


def runs_root(explicit: str | Path | None = None) -> Path:
    """Where runs go: the explicit path, else $WINIT_RUNS_DIR, else ./runs."""
    return Path(explicit or os.environ.get(RUNS_ENV) or "runs")


def slug(name: str) -> str:
    """`name` as a file-name part: safe characters only, at most 100 of them (a name has
    255 bytes, and a timestamp and suffixes go with it)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:100].rstrip("-") or "run"


def _in_the_way(path: Path) -> tuple[Path, str] | None:
    """What keeps `path` from being a directory: it, or a folder above it, is a file or a
    symbolic link to nowhere (mkdir would say only "File exists")."""
    try:
        for step in [*reversed(path.parents), path]:
            if step.is_symlink() and not step.exists():
                return step, f"a symbolic link to {os.readlink(step)}, which does not exist"
            if step.exists() and not step.is_dir():
                return step, "a file, not a directory"
    except OSError:  # unreadable on the way: mkdir says why
        return None
    return None


def _writable_dir(path: Path, what: str = "the runs directory") -> Path:
    blocked = _in_the_way(path)
    if blocked is not None:
        step, why = blocked
        where = f"{what} {path}" if step == path else f"{what} {path}: {step}"
        raise WinitError(f"{where} is {why}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WinitError(f"cannot create {what} {path}: {err.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise WinitError(f"{what} {path} is not writable")
    return path


def utc_now() -> str:
    """The time for meta.json: UTC, ISO 8601, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_dir(root: str | Path, name: str, now: datetime | None = None, prefix: str = "") -> Path:
    """Create `<root>/<prefix><UTC timestamp>_<name>/`; a suffix -2, -3, ... avoids any
    collision."""
    root = _writable_dir(Path(root))
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    base = f"{prefix}{stamp}_{slug(name)}"
    for attempt in range(1, 10_000):
        path = root / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise WinitError(f"cannot find a free run directory name under {root}")


def refuse_overwrite(target: Path) -> None:
    """A WinitError where `--out` names a directory (or file) that holds something."""
    if target.exists() and not target.is_dir():
        raise WinitError(f"--out {target} already exists as a file; winit never overwrites")
    try:
        full = target.is_dir() and any(target.iterdir())
    except OSError as err:
        raise WinitError(f"--out {target}: cannot list it ({err.strerror})") from None
    if full:
        raise WinitError(f"--out {target} already exists and is not empty; winit never overwrites")


def exact_run_dir(target: str | Path) -> Path:
    """`--out DIR` for a run written as it goes: DIR must be new or empty."""
    target = Path(target)
    refuse_overwrite(target)
    return _writable_dir(target, "--out")


# A staging directory is named `.<target>.winit-staging-<8 random characters>`: the name is
# what proves to a later clean-up (a resumed sweep) that winit made it and may remove it.
STAGING_MARK = ".winit-staging-"


@contextmanager
def staged_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that becomes `target` only if the block completes."""
    target = Path(target)
    refuse_overwrite(target)
    parent = _writable_dir(target.parent, f"--out {target}: the parent directory")
    stem = os.fsdecode(os.fsencode(target.name)[:200])  # the mark must fit in 255 bytes
    staging = Path(tempfile.mkdtemp(prefix=f".{stem}{STAGING_MARK}", dir=parent))
    try:
        # mkdtemp makes it 0700; a run directory gets what any new directory would (the
        # umask's mode: searchable by whoever may read its files)
        os.chmod(staging, FILE_MODE | ((FILE_MODE & 0o444) >> 2))
        yield staging
        if target.exists():
            target.rmdir()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp makes files only their owner can read; a run's files get the permissions any
# other new file would (shared run directories on a cluster must stay readable).
FILE_MODE = 0o666 & ~_umask()


# Text files are UTF-8. A file name that is not (a grid value naming one, held as the
# surrogates of os.fsdecode) is written as the escape JSON writes too: \udcff.
TEXT = {"encoding": "utf-8", "errors": "backslashreplace"}


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write a whole file so that readers see the old state or the new, never a part."""
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, mode, **({} if mode == "wb" else TEXT)) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise WinitError(f"cannot write {path}: {err.strerror}", exit_code=1) from None
    return path


def write_json(path: str | Path, data: Any) -> Path:
    return write_atomic(path, json.dumps(data, indent=2) + "\n")


def csv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows of flat dicts as CSV text, columns in first-seen order unless given."""
    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        columns = list(seen)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    return write_atomic(path, csv_text(rows))


class CsvAppender:
    """A CSV file that grows by whole rows. Each row is flushed to the operating system as
    it is written, which is what lets a killed process (even kill -9) leave every complete
    row readable; it is synced to disk once, at close, not per row (an fsync per row was
    most of the logging's cost inside the training loop: benchmarks/README.md)."""

    def __init__(self, path: str | Path, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        try:
            self._file = open(self.path, "w", newline="", **TEXT)  # noqa: SIM115
        except OSError as err:
            raise WinitError(f"cannot write {self.path}: {err.strerror}", exit_code=1) from None
        self._writer = csv.DictWriter(self._file, fieldnames=self.columns, lineterminator="\n")
        self._write(self._writer.writeheader)

    def _write(self, action: Any, *args: Any) -> None:
        try:
            action(*args)
            self._file.flush()
        except OSError as err:
            raise WinitError(f"cannot write {self.path}: {err.strerror}", exit_code=1) from None

    def append(self, row: Mapping[str, Any]) -> None:
        self._write(self._writer.writerow, row)

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self._write(os.fsync, self._file.fileno())
        finally:
            self._file.close()


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


class RunWriter:
    """The one writer of a run directory: config.yaml, meta.json, metrics.csv, the rest.

    Live, into the directory `path` (train, compare): config.yaml and meta.json
    ("running") appear at once, metrics.csv grows by flushed rows, every other file is
    written as it is added, and finish() writes the final meta.json; a killed run leaves
    complete rows and a meta.json that still says "running". Whole, with no `path`
    (stats --out, reproduce, a sweep trial in a worker that may be on another machine):
    every file is kept, and finish() hands them back, for write_run_files to make the
    directory appear complete at once.
    """

    def __init__(
        self,
        cfg: Config,
        experiment: dict[str, Any],
        *,
        command: str,
        device: str,
        path: Path | None = None,
    ) -> None:
        from .loading import config_hash, config_to_yaml

        self.path, self.live = path, path is not None
        self.meta: dict[str, Any] = {
            "status": "running",
            "command": command,
            "experiment": experiment,
            "seed": cfg.seed,
            "device": device,
            "config_hash": config_hash(cfg),
            "started_at": utc_now(),
            "finished_at": None,
            "versions": environment(),
        }
        if cfg.model.module is not None:
            from .user_model import file_digest

            digest = file_digest(cfg.model.module)
            if digest is not None:  # the code the numbers came from, for winit rerun
                self.meta["model_file"] = digest
        self.files: dict[str, str | bytes] = {}
        self._metrics: CsvAppender | None = None
        self._rows: list[dict[str, Any]] = []
        self._columns: list[str] | None = None
        self.add("config.yaml", config_to_yaml(cfg))
        if self.live:
            write_json(self._where("meta.json"), self.meta)

    def _where(self, name: str) -> Path:
        assert self.path is not None
        return self.path / name

    def open_metrics(self, columns: list[str]) -> None:
        self._columns = columns
        if self.live:
            self._metrics = CsvAppender(self._where("metrics.csv"), columns)

    def append_metrics(self, row: dict[str, Any]) -> None:
        if self._metrics is not None:
            self._metrics.append(row)
        elif self._columns is not None:
            self._rows.append(row)

    def sort_metrics(self, key: Any) -> None:
        """Rows sorted by `key`: rows from concurrent workers arrive interleaved, but the
        finished file must not depend on scheduling."""
        if self._metrics is not None:
            self._metrics.close()
            with open(self._metrics.path, newline="", encoding="utf-8") as f:
                self._rows = list(csv.DictReader(f))
            if self._rows:
                write_atomic(self._metrics.path, csv_text(sorted(self._rows, key=key)))
        else:
            self._rows.sort(key=key)

    def add(self, name: str, data: str | bytes) -> None:
        if self.live:
            write_atomic(self._where(name), data)
        else:
            self.files[name] = data

    def finish(self, status: str, best_effort: bool = False, **meta: Any) -> dict[str, str | bytes]:
        """Mark the run `status` (with more meta.json keys) and complete it; the files of a
        whole run. `best_effort` while failing already: a full disk must not hide the first
        error behind a second one."""
        self.meta.update(status=status, finished_at=utc_now(), **meta)
        try:
            if self.live:
                if self._metrics is not None:
                    self._metrics.close()
                write_json(self._where("meta.json"), self.meta)
                return {}
            if self._columns is not None:
                self.files["metrics.csv"] = csv_text(self._rows, self._columns)
            self.files["meta.json"] = json.dumps(self.meta, indent=2) + "\n"
        except (OSError, WinitError):
            if not best_effort:
                raise
        return self.files


def write_run_files(target: str | Path, files: dict[str, str | bytes]) -> Path:
    """A whole run directory, all of its files or none."""
    with staged_dir(target) as staging:
        for name, data in files.items():
            if "/" in name:  # a folder of the run's (a sweep trial's tb/)
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(staging / name, data)
    return Path(target)


def check_creatable(path: str | Path, what: str = "the runs directory") -> None:
    """Refuse before a run what would refuse its files after it: something in the way of
    `path` (a file, a link to nowhere), or no write access to the nearest folder of it
    that exists. Creates nothing."""
    path = Path(path)
    blocked = _in_the_way(path)
    if blocked is not None:
        step, why = blocked
        raise WinitError(f"{what} {path}" + ("" if step == path else f": {step}") + f" is {why}")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise WinitError(f"{what} {path}: {existing} is not writable")
