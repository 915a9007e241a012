"""A user's files in a sweep directory are theirs: a resumed sweep removes only what winit
made and can prove it made (a trial directory whose meta.json names that trial, a staging
directory by the mark in its name), and refuses, in one line, to run a trial whose place
is taken by something that is not winit's, which stays as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from weightinit_cli.cli import app

runner = CliRunner()
ARGS = ["sweep", "--grid", "model.depth=2,3", "--steps", "5", "--set", "model.width=8"]
ARGS += ["--set", "data.samples=64", "--jobs", "1", "--json"]
TRIALS = ["0_depth=2", "1_depth=3"]
STAGING_MARK = ".winit-staging-"  # in the name of a staging directory (runs.staged_dir)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """The runs root of a finished two-trial sweep, made once for the module."""
    root = tmp_path_factory.mktemp("finished") / "runs"
    result = runner.invoke(app, [*ARGS, "--runs-dir", str(root)])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def sweep_dir(finished, tmp_path) -> Path:
    """A copy of the finished sweep whose trial 0 has to run again (its summary gone)."""
    root = tmp_path / "runs"
    shutil.copytree(finished, root, symlinks=True)
    (path,) = root.glob("sweep-*")
    (path / "trials" / TRIALS[0] / "summary.json").unlink()
    return path


def resume(path: Path):
    return runner.invoke(app, [*ARGS, "--runs-dir", str(path.parent)])


def make(path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)


def contents(path: Path) -> dict[str, bytes]:
    """Every file under `path` but the lock (which names the pid that holds it)."""
    files = [p for p in sorted(path.rglob("*")) if p.is_file() and p.name != ".lock"]
    return {str(p.relative_to(path)): p.read_bytes() for p in files}


USER_FILES = {
    "trials/.my_notes/notes.txt": "depth 3 looks stuck",
    "trials/.ipynb_checkpoints/look-checkpoint.ipynb": "{}",
    "trials/analysis/plot.py": "print('mine')",
    "trials/README": "what these trials are",
    "trials/.hidden": "a dot-file",
    f"trials/.{TRIALS[0]}.bak/config.yaml": "a backup named after a trial",
    f"trials/.{TRIALS[0]}.20260101/meta.json": "{}",  # looks like an old staging dir, isn't empty
    ".my_notes/todo.txt": "rerun with seeds",
    "look.ipynb": "{}",
    ".meta.json.notes": "not a temporary file of winit's",
}


def test_a_resume_leaves_the_user_s_files_and_directories_alone(sweep_dir):
    make(sweep_dir, USER_FILES)
    result = resume(sweep_dir)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ran"] == 1  # trial 0 ran again, beside the user's files
    kept = {k: v.decode() for k, v in contents(sweep_dir).items() if k in USER_FILES}
    assert kept == USER_FILES
    assert (sweep_dir / "trials" / TRIALS[0] / "summary.json").is_file()


def test_what_a_killed_run_left_is_removed_and_only_that(sweep_dir):
    trials = sweep_dir / "trials"
    staged = trials / f".{TRIALS[0]}{STAGING_MARK}k2j4h5g6"  # a trial's staging directory
    make(staged, {"config.yaml": "half", "meta.json": "{"})
    (trials / f".{TRIALS[1]}.x8y7z6w5").mkdir()  # an older winit's, empty
    temporary = sweep_dir / ".results.csv.a1b2c3d4"  # write_atomic's temporary file
    temporary.write_text("trial,sta")
    result = resume(sweep_dir)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in trials.iterdir()) == TRIALS
    assert not temporary.exists()


def _user_dir(trial: Path) -> None:
    shutil.rmtree(trial)
    make(trial, {"mine.txt": "my own experiment"})


def _user_file(trial: Path) -> None:
    shutil.rmtree(trial)
    trial.write_text("a file of mine")


def _symlink(trial: Path) -> None:
    shutil.rmtree(trial)
    (trial.parent / "elsewhere").mkdir()
    make(trial.parent / "elsewhere", {"keep.txt": "kept"})
    trial.symlink_to(trial.parent / "elsewhere")


def _notes_in_a_trial(trial: Path) -> None:
    make(trial, {"notes.txt": "why this trial failed"})


def _another_trials_meta(trial: Path) -> None:
    other = trial.parent / TRIALS[1] / "meta.json"
    shutil.copy(other, trial / "meta.json")


def _unreadable_meta(trial: Path) -> None:
    (trial / "meta.json").write_text('{"status": "comp')


@pytest.mark.parametrize(
    "occupy, expect",
    [
        (_user_dir, "'mine.txt', which winit does not write there"),
        (_user_file, "a file"),
        (_symlink, "a symbolic link"),
        (_notes_in_a_trial, "'notes.txt', which winit does not write there"),
        (_another_trials_meta, "its meta.json is not that of this trial"),
        (_unreadable_meta, "its meta.json: not valid JSON"),
    ],
    ids=["user-dir", "user-file", "symlink", "notes-in-trial", "other-trial-meta", "bad-meta"],
)
def test_a_trial_s_place_taken_by_what_winit_did_not_write_is_refused(sweep_dir, occupy, expect):
    trial = sweep_dir / "trials" / TRIALS[0]
    occupy(trial)
    before = contents(sweep_dir)
    result = resume(sweep_dir)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {trial}: not a trial directory"), lines
    assert expect in lines[0] and "move it away" in lines[0] and "Traceback" not in result.output
    assert contents(sweep_dir) == before  # nothing removed, nothing written
    assert trial.is_symlink() or trial.exists()


def test_a_trial_directory_is_as_readable_as_any_new_directory(finished, tmp_path):
    """Trial directories are staged in a temporary directory (made 0700): once in place
    they get what the umask gives any new directory, as their files do."""
    (path,) = finished.glob("sweep-*")
    (tmp_path / "new").mkdir()
    expected = (tmp_path / "new").stat().st_mode & 0o777
    assert {(path / "trials" / t).stat().st_mode & 0o777 for t in TRIALS} == {expected}
