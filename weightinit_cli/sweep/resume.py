"""A sweep directory as an earlier run left it, read with care before it is resumed.

Everything in it was written by winit, and then perhaps killed halfway, edited by hand,
or joined by the user's own files (notes, a notebook's checkpoints). So every JSON file
is read bounded (limits.read_json) and its values are checked before use; a trial whose
files do not hold a result runs again; and winit removes only what it can prove it made:
a trial directory whose meta.json names that trial, a staging directory by the mark in
its name, its own temporary files by theirs. Anything else stays, and a trial's name
taken by something that is not winit's is refused, not deleted.
"""

from __future__ import annotations

import fcntl
import math
import os
import re
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import WinitError
from ..limits import MAX_CONFIG_BYTES, excerpt, read_capped, read_json
from ..runs import STAGING_MARK, slug

if TYPE_CHECKING:
    from .grid import Sweep, Trial
    from .results import TrialResult

PREFIX = "sweep-"
FRESH = "or use --fresh for a new sweep directory"
ANOTHER = "another sweep's"  # a sweep directory's meta.json that is not this sweep's
# What a trial's summary.json must hold to count as its result (results.TrialResult.row)
RESULT_KEYS = ("initial_loss", "final_loss", "final_accuracy", "steps", "steps_to_target")
STEP_KEYS = ("steps", "steps_to_target", "diverged_at")
# The files winit writes into a sweep directory, whose temporary files it may remove.
SWEEP_FILES = re.compile(
    r"meta\.json|sweep\.yaml|(results|summary)\.csv|summary\.json|heatmap_\w+\.png"
)
TEMP_SUFFIX = re.compile(r"[a-z0-9_]{8}")  # tempfile's random part (runs.write_atomic)


# ------------------------------------------------------------------ finding it again


def find_sweep_dir(root: Path, sweep: Sweep) -> Path | None:
    """The newest sweep directory under `root` of this same sweep, if any.

    It is this sweep's when its meta.json has the sweep's hash and name, or, with no
    meta.json (a run killed before it wrote one), when its sweep.yaml is this sweep's. One
    whose sweep.yaml is this sweep's but whose meta.json cannot be read is an error, not
    passed over: it holds this sweep's trials, and a new directory would run them again.
    """
    if not root.is_dir():
        return None
    digest = sweep.spec_hash()
    spec_text: bytes | None = None
    for path in sorted(root.glob(f"{PREFIX}*_{slug(sweep.name)}*"), reverse=True):
        if not path.is_dir():
            continue
        meta_path = path / "meta.json"
        try:
            problem = _not_this_sweeps(read_json(meta_path), meta_path, digest, sweep.name)
        except WinitError as err:
            problem = str(err)
        if problem is None:
            return path
        if problem is ANOTHER:
            continue
        if spec_text is None:
            from ..yamlio import to_yaml

            spec_text = to_yaml(sweep.spec()).encode("utf-8")
        if not _holds(path / "sweep.yaml", spec_text):
            continue
        if not os.path.lexists(meta_path):
            return path
        raise WinitError(
            f"{problem}; {path} is this sweep's directory (its sweep.yaml says so): repair or "
            f"delete that meta.json to resume it, {FRESH}"
        )
    return None


def _not_this_sweeps(meta: Any, meta_path: Path, digest: str, name: str) -> str | None:
    """None for the meta.json of the sweep with hash `digest` and `name`; ANOTHER for
    another sweep's; else what is wrong with it, which leaves the question open."""
    if not isinstance(meta, dict):
        return f"{meta_path}: holds {excerpt(meta)}, not a sweep's meta.json"
    spec_hash, experiment = meta.get("spec_hash"), meta.get("experiment")
    named = experiment.get("name") if isinstance(experiment, dict) else None
    if (isinstance(spec_hash, str) and spec_hash != digest) or (
        isinstance(named, str) and named != name
    ):
        return ANOTHER
    if not isinstance(spec_hash, str):
        return f"{meta_path}: " + (
            "no spec_hash" if spec_hash is None else f"spec_hash is {excerpt(spec_hash)}"
        )
    if not isinstance(named, str):
        return f"{meta_path}: experiment is {excerpt(experiment)}, not a sweep's"
    return None


def _holds(path: Path, expected: bytes) -> bool:
    try:
        return read_capped(path, MAX_CONFIG_BYTES, "sweep file", regular_only=True) == expected
    except (OSError, WinitError):
        return False


def earlier_runs(path: Path, full_trials: bool) -> dict[str, Any]:
    """What a resumed sweep's meta.json keeps of the runs before: the first start, and
    how many runs there have been. Its trials must all be written one way: with
    --full-trials or without. A value of the wrong type is an error naming it."""
    meta_path = path / "meta.json"
    if not os.path.lexists(meta_path):
        return {"runs": 1}
    earlier = read_json(meta_path)
    if not isinstance(earlier, dict):
        raise WinitError(f"{meta_path}: holds {excerpt(earlier)}, not a sweep's meta.json")

    def value(key: str, kind: type, what: str) -> Any:
        found = earlier.get(key)
        right = isinstance(found, kind) and (kind is bool or not isinstance(found, bool))
        if found is not None and not right:
            raise WinitError(
                f"{meta_path}: {key} must be {what}, not {excerpt(found)}; repair it, {FRESH}"
            )
        return found

    ran_with = value("full_trials", bool, "true or false") or False
    runs = value("runs", int, "a whole number of runs")
    started = value("started_at", str, "a time")
    first = value("first_started_at", str, "a time")
    if runs is not None and runs < 1:
        raise WinitError(f"{meta_path}: runs must be at least 1, not {runs}; repair it, {FRESH}")
    if ran_with != full_trials:
        ran = "with" if ran_with else "without"
        raise WinitError(
            f"{path} ran its trials {ran} --full-trials; resume it the same way, {FRESH}"
        )
    if started is None:
        return {"runs": 1}
    return {"first_started_at": first or started, "runs": (runs or 1) + 1}


# ------------------------------------------------------------------ the lock

# The sweep locks this process holds, by file descriptor. A flock belongs to the open
# file, which a fork shares: a forked worker would hold the sweep until it exits, so each
# lets go of them as it starts.
_HELD: set[int] = set()


def _let_go_in_child() -> None:
    for fd in _HELD:
        with suppress(OSError):
            # /dev/null in its place, so the descriptor stays valid for whatever closes it
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, fd, inheritable=False)
            os.close(null)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_let_go_in_child)


@contextmanager
def sweep_lock(path: Path) -> Iterator[None]:
    """Hold the sweep directory: a second winit running the same sweep is refused.

    The kernel lets go of the lock when its holder ends, however it ends (kill -9 too), so
    a killed run's sweep can be resumed at once: the lock is taken over, never stale.
    """
    lock = path / ".lock"
    try:
        # never through a link: the pid written below would replace what it points to
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as err:
        raise WinitError(f"cannot lock {path}: {lock}: {err.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise WinitError(f"cannot lock {path}: {lock} is not a regular file; move it away")
    handle = os.fdopen(fd, "r+", encoding="ascii")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WinitError(_held_message(path, handle)) from None
        except OSError as err:
            raise WinitError(f"cannot lock {path}: {err.strerror}") from None
        with suppress(OSError):  # who holds it, for the message a second run gives
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n")
            handle.flush()
        _HELD.add(handle.fileno())
        try:
            yield
        finally:
            _HELD.discard(handle.fileno())
    finally:
        handle.close()


def _held_message(path: Path, handle: IO[str]) -> str:
    """Why the lock is refused: another winit runs the sweep (its pid), or processes that
    a killed winit left behind still hold it (an older winit's workers did)."""
    with suppress(OSError, ValueError):
        handle.seek(0)
        text = handle.read(24).strip()
        pid = int(text) if text.isdigit() else None
        if pid is not None and not _alive(pid):
            holders = " ".join(str(p) for p in _processes_holding(path / ".lock"))
            if holders:
                return (
                    f"{path} is locked by processes that a killed winit (pid {pid}) left "
                    f"behind: end them (kill {holders}) to resume it, {FRESH}"
                )
        if pid is not None:
            return f"{path} is being run by another winit process (pid {pid}); wait for it, {FRESH}"
    return f"{path} is being run by another winit process; wait for it, {FRESH}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's
    return True


def _processes_holding(lock: Path) -> list[int]:
    """Processes with `lock` open (Linux's /proc; none found elsewhere), this one aside."""
    try:
        target = os.stat(lock)
        entries = os.listdir("/proc")
    except OSError:
        return []
    holders = []
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        with suppress(OSError):
            for fd in os.listdir(f"/proc/{entry}/fd"):
                found = os.stat(f"/proc/{entry}/fd/{fd}")
                if (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino):
                    holders.append(int(entry))
                    break
    return holders[:20]


# ------------------------------------------------------------------ the trials


def _is_number(value: Any, whole: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float
        return False


def trial_result(trial: Trial, path: Path) -> tuple[str, dict[str, Any], float | None] | None:
    """(status, summary, seconds) of `trial` where `path` holds its finished result, else
    None: missing, unreadable, not finished, another grid point's, or values of the wrong
    types (a hand-edited file). Reads only."""
    from .trial import FINISHED

    try:
        meta = read_json(path / "meta.json")
        summary = read_json(path / "summary.json")
    except WinitError:
        return None
    if not isinstance(meta, dict) or not isinstance(summary, dict):
        return None
    status, place = meta.get("status"), _sweep_place(meta)
    if status not in FINISHED or place is None or place.get("grid_point") != trial.point:
        return None
    if any(key not in summary for key in RESULT_KEYS):
        return None
    for key in (*RESULT_KEYS, "diverged_at"):
        value = summary.get(key)
        if value is not None and not _is_number(value, whole=key in STEP_KEYS):
            return None
    timing = meta.get("timing")
    timing = timing if isinstance(timing, dict) else {}
    # trials written before run_seconds named it trial_seconds
    seconds = timing.get("run_seconds", timing.get("trial_seconds"))
    return status, summary, float(seconds) if _is_number(seconds) and seconds >= 0 else None


def _sweep_place(meta: dict[str, Any]) -> dict[str, Any] | None:
    """A trial meta.json's place in its sweep ({"dir", "trial", "grid_point"}), if any."""
    experiment = meta.get("experiment")
    place = experiment.get("sweep") if isinstance(experiment, dict) else None
    return place if isinstance(place, dict) else None


def finished_trials(sweep: Sweep, trials_dir: Path) -> dict[int, TrialResult]:
    """The trials of `sweep` that an earlier run finished in `trials_dir` (reads only)."""
    from .results import TrialResult

    finished: dict[int, TrialResult] = {}
    for trial in sweep.trials:
        found = trial_result(trial, trials_dir / trial.dirname)
        earlier = _earlier_home(sweep, trial, trials_dir) if found is None else None
        if earlier is not None:
            found = trial_result(trial, earlier)
        if found is not None:
            finished[trial.index] = TrialResult(trial, found[0], found[1], None, found[2])
    return finished


def _earlier_home(sweep: Sweep, trial: Trial, trials_dir: Path) -> Path | None:
    """Where an older winit finished `trial` under another name (-0.1 was named 0.1),
    proved by its meta.json, while today's name is free; else None. Reads only."""
    from .grid import earlier_dirname

    earlier = trials_dir / earlier_dirname(sweep, trial)
    target = trials_dir / trial.dirname
    if earlier == target or target.exists() or target.is_symlink() or earlier.is_symlink():
        return None
    return earlier if earlier.is_dir() and trial_result(trial, earlier) else None


def adopt_earlier_names(sweep: Sweep, trials_dir: Path) -> None:
    """Give each trial an older winit finished under another name today's name, so that
    a resume keeps it instead of running it again beside the old directory."""
    for trial in sweep.trials:
        earlier = _earlier_home(sweep, trial, trials_dir)
        if earlier is not None:
            earlier.rename(trials_dir / trial.dirname)


def _not_winits(trial: Trial, path: Path) -> str | None:
    """Why `path`, where `trial`'s directory goes, cannot be proved winit's trial
    directory (so must not be deleted); None if it can, or holds nothing."""
    if path.is_symlink():
        return "a symbolic link"
    if not path.is_dir():
        return "a file"
    from ..trackers import EVENTS_DIR
    from .trial import TRIAL_FILES

    with os.scandir(path) as found:
        entries = list(found)
    for entry in entries:  # only a trial's files, or their temporary files
        if entry.name == EVENTS_DIR and _only_events(Path(entry.path)):
            continue
        stem, _, suffix = entry.name[1:].rpartition(".")
        temporary = entry.name.startswith(".") and stem in TRIAL_FILES
        if not entry.is_file(follow_symlinks=False) or (
            entry.name not in TRIAL_FILES and not (temporary and TEMP_SUFFIX.fullmatch(suffix))
        ):
            return f"it holds {entry.name!r}, which winit does not write there"
    if not entries:
        return None  # empty: nothing to lose
    try:
        meta = read_json(path / "meta.json")
    except WinitError as err:
        return str(err).replace(f"{path / 'meta.json'}: ", "its meta.json: ", 1)
    place = _sweep_place(meta) if isinstance(meta, dict) else None
    if place is None or place.get("trial") != trial.dirname:
        return "its meta.json is not that of this trial of a sweep"
    return None


def _only_events(path: Path) -> bool:
    """Whether `path` is a trial's tb/: a real folder of TensorBoard event files alone."""
    from ..trackers import EVENT_FILE_PREFIX

    if path.is_symlink() or not path.is_dir():
        return False
    with os.scandir(path) as found:
        return all(
            e.is_file(follow_symlinks=False) and e.name.startswith(EVENT_FILE_PREFIX) for e in found
        )


def _is_staging(name: str, trials: set[str], path: Path) -> bool:
    """Whether `name` in trials/ is a staging directory of one of `trials` that a killed
    run left: by the mark in its name, or an empty one named after a trial (an older
    winit's staging directories had no mark; an empty one holds nothing to lose)."""
    if not name.startswith(".") or path.is_symlink() or not path.is_dir():
        return False
    trial, mark, suffix = name[1:].rpartition(STAGING_MARK)
    if mark and trial in trials and TEMP_SUFFIX.fullmatch(suffix):
        return True
    return name[1:].rpartition(".")[0] in trials and not any(path.iterdir())


def clear_unfinished(sweep: Sweep, trials_dir: Path, finished: dict[int, TrialResult]) -> None:
    """Remove what winit left of the trials that will run again: their directories (a
    failure, or files that do not hold a result) and the staging directories of a killed
    run. Everything is checked before anything is removed."""
    doomed = []
    for trial in sweep.trials:
        path = trials_dir / trial.dirname
        if trial.index in finished or not os.path.lexists(path):
            continue
        problem = _not_winits(trial, path)
        if problem is not None:
            raise WinitError(
                f"{path}: not a trial directory winit wrote ({problem}), where trial "
                f"{trial.dirname} goes; winit deletes only what it wrote: move it away to "
                f"run that trial, {FRESH}"
            )
        doomed.append(path)
    names = {t.dirname for t in sweep.trials}
    with os.scandir(trials_dir) as entries:
        doomed += [Path(e.path) for e in entries if _is_staging(e.name, names, Path(e.path))]
    for path in doomed:
        try:
            shutil.rmtree(path)
        except OSError as err:
            raise WinitError(f"cannot remove {path}: {err.strerror}", exit_code=1) from None


def clear_temporary_files(path: Path) -> None:
    """Remove the temporary files of the sweep's own files in `path` that a killed run
    left (`.<file>.<8 random characters>`, as runs.write_atomic names them)."""
    with os.scandir(path) as entries:
        for entry in entries:
            stem, dot, suffix = entry.name[1:].rpartition(".")
            if (
                entry.name.startswith(".")
                and dot
                and SWEEP_FILES.fullmatch(stem)
                and TEMP_SUFFIX.fullmatch(suffix)
                and entry.is_file(follow_symlinks=False)
            ):
                with suppress(OSError):
                    os.unlink(entry.path)


__all__ = [
    "PREFIX",
    "clear_temporary_files",
    "clear_unfinished",
    "earlier_runs",
    "find_sweep_dir",
    "finished_trials",
    "sweep_lock",
    "trial_result",
]
