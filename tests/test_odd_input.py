"""Odd but legal: outputs that cannot be written, links, file names that are not UTF-8.

`winit schema > /dev/full` and `winit methods | head -1` are ordinary shell use; a
runs directory that is a symbolic link is ordinary on a cluster; a file name need not
be UTF-8 on Linux. The contract: a full disk is one line on stderr (`Error: cannot
write the output: ...`, exit 1), a reader that went away a quiet exit, a link to a
directory is followed, a link to nowhere or to a file is one Error line with nothing
written, and no file name crashes a writer (PNG, meta.json, the terminal).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from weightinit_cli.cli import app

runner = CliRunner(env={"COLUMNS": "200"})  # wide: a path is not wrapped
TINY = ("--depth", "2", "--width", "4", "--steps", "2")
WINIT = [sys.executable, "-m", "weightinit_cli"]
FULL = "Error: cannot write the output: No space left on device"


def winit(args: list[str], stdout, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WINIT_RUNS_DIR": str(tmp_path / "runs")}
    return subprocess.run(
        [*WINIT, *args], stdout=stdout, stderr=subprocess.PIPE, env=env, timeout=120
    )


# Commands that print without running anything (fast as subprocesses).
PRINTERS = [
    pytest.param(["schema"], id="schema"),
    pytest.param(["methods"], id="methods-table"),
    pytest.param(["methods", "--json"], id="methods-json"),
    pytest.param(["methods", "he"], id="method-detail"),
    pytest.param(["critical", "--json"], id="critical-json"),
    pytest.param(["--help"], id="help"),
    pytest.param(["train", "--help"], id="command-help"),
    pytest.param(["--version"], id="version"),
]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize("args", PRINTERS)
def test_a_full_disk_is_one_error_line(tmp_path, args):
    with open("/dev/full", "w") as full:
        done = winit(args, full, tmp_path)
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert stderr.splitlines() == [FULL], stderr  # no traceback, no "Exception ignored"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["stats", *TINY[:4], "--json"], id="stats-json"),
        pytest.param(["train", *TINY, "--json"], id="train-json"),
        pytest.param(["sweep", *TINY, "--grid", "train.lr=[0.1,0.2]", "--dry-run"], id="plan"),
        pytest.param(["reproduce", "--list", "--json"], id="reproduce-list"),
    ],
)
def test_a_full_disk_after_a_run(monkeypatch, capsys, runs, args):
    """The same in-process (a run's imports are paid once): stdout is /dev/full."""
    with open("/dev/full", "w") as full:
        monkeypatch.setattr(sys, "stdout", full)
        with pytest.raises(SystemExit) as exited:
            app(args, prog_name="winit")
        monkeypatch.undo()
    assert exited.value.code == 1
    assert FULL in capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("args", [["methods"], ["methods", "--json"], ["schema"]])
def test_a_closed_pipe_is_a_quiet_exit(tmp_path, args):
    read, write = os.pipe()
    os.close(read)  # the reader is gone before winit writes a byte: EPIPE
    try:
        done = winit(args, write, tmp_path)
    finally:
        os.close(write)
    assert done.returncode == 1
    assert done.stderr.decode() == ""  # no BrokenPipeError, no "Exception ignored"


def test_methods_into_head(tmp_path):
    done = subprocess.run(
        f"{' '.join(WINIT)} methods | head -1", shell=True, capture_output=True, timeout=120
    )
    assert done.returncode == 0
    assert "Init methods" in done.stdout.decode()
    assert done.stderr.decode() == ""


@pytest.fixture
def links(tmp_path):
    """dir -> an empty directory, file -> a file, nowhere -> nothing."""
    (tmp_path / "real").mkdir()
    (tmp_path / "afile").write_text("x")
    for name, target in (("dir", "real"), ("file", "afile"), ("nowhere", "missing")):
        (tmp_path / name).symlink_to(target)
    return tmp_path


def test_out_through_a_link_to_a_directory_writes_there(links):
    result = runner.invoke(app, ["stats", *TINY[:4], "--out", str(links / "dir")])
    assert result.exit_code == 0, result.output
    assert (links / "real" / "std_vs_depth.png").is_file()
    assert (links / "dir").is_symlink()  # the link stays a link
    assert f"wrote {links / 'real'}/" in result.output


def test_runs_dir_through_a_link_to_a_directory_writes_there(links):
    result = runner.invoke(app, ["train", *TINY, "--runs-dir", str(links / "dir")])
    assert result.exit_code == 0, result.output
    (run,) = (links / "real").iterdir()
    assert (run / "meta.json").is_file()


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["stats", "--out", "{nowhere}"], "{nowhere} is a symbolic link to missing, which"),
        (["stats", "--out", "{nowhere}/x"], "{nowhere} is a symbolic link to missing, which"),
        (["stats", "--out", "{file}"], "--out {file} already exists as a file"),
        (["compare", "--out", "{nowhere}"], "{nowhere} is a symbolic link to missing, which"),
        (["train", "--runs-dir", "{nowhere}"], "{nowhere} is a symbolic link to missing, which"),
        (["train", "--runs-dir", "{file}"], "the runs directory {file} is a file"),
        (["sweep", "--runs-dir", "{nowhere}", "--grid", "seed=[0,1]"], "{nowhere} is a symbolic"),
        (["reproduce", "glorot2010", "--runs-dir", "{nowhere}/x"], "{nowhere} is a symbolic link"),
    ],
    ids=[
        "out-dangling",
        "out-under-dangling",
        "out-file",
        "compare-out-dangling",
        "runs-dir-dangling",
        "runs-dir-file",
        "sweep-runs-dir-dangling",
        "reproduce-under-dangling",
    ],
)
def test_a_link_to_nowhere_or_to_a_file_is_one_error(links, args, expect):
    paths = {name: str(links / name) for name in ("nowhere", "file")}
    result = runner.invoke(app, [a.format(**paths) for a in args])
    lines = result.output.splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert expect.format(**paths) in lines[0]
    assert sorted(p.name for p in links.iterdir()) == ["afile", "dir", "file", "nowhere", "real"]
    assert not any((links / "real").iterdir())


def test_the_runs_dir_variable_through_a_link_to_nowhere(links, monkeypatch):
    monkeypatch.setenv("WINIT_RUNS_DIR", str(links / "nowhere" / "runs"))
    result = runner.invoke(app, ["train", *TINY])
    assert result.exit_code == 2, result.output
    assert f"{links / 'nowhere'} is a symbolic link to missing" in result.output
    assert "Traceback" not in result.output


BAD_NAME = b"bad\xff\xfe name"  # not UTF-8: Python's str of it holds surrogates (\udcff)


def test_a_config_file_name_that_is_not_utf8(tmp_path, runs):
    """The config is named after its file: the PNG's title, meta.json, the terminal."""
    config = os.fsencode(tmp_path) + b"/" + BAD_NAME + b".yaml"
    with open(config, "wb") as f:
        f.write(b"seed: 1\n")
    result = runner.invoke(app, ["train", os.fsdecode(config), *TINY])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "bad\\xff\\xfe name: target loss" in result.output
    (run,) = runs.iterdir()
    assert (run / "loss.png").read_bytes().startswith(b"\x89PNG")
    meta = json.loads((run / "meta.json").read_text(encoding="utf-8"))
    assert meta["status"] == "completed"
    assert os.fsencode(meta["command"]).find(BAD_NAME) >= 0  # the name as it was
    listed = runner.invoke(app, ["train", os.fsdecode(config), *TINY, "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)["status"] == "completed"


def test_an_out_name_that_is_not_utf8(tmp_path):
    out = os.fsencode(tmp_path) + b"/" + BAD_NAME
    result = runner.invoke(app, ["stats", *TINY[:4], "--out", os.fsdecode(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path}/bad\\xff\\xfe name/" in result.output
    assert os.path.isfile(out + b"/std_vs_depth.png")
    summary = json.loads(Path(os.fsdecode(out + b"/meta.json")).read_text(encoding="utf-8"))
    assert summary["status"] == "completed"


def test_a_grid_value_naming_a_file_that_is_not_utf8(tmp_path, monkeypatch):
    """A YAML escape (\\udcff) names a file whose name is not UTF-8: the sweep's CSVs,
    heatmaps and table take it, and the sweep resumes from them."""
    import numpy as np

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for name in (BAD_NAME + b".npz", b"good.npz"):
        with open(name, "wb") as f:
            np.savez(f, x=rng.standard_normal((40, 2)).astype(np.float32), y=np.arange(40) % 3)
    grid = 'data.path=["bad\\udcff\\udcfe name.npz", "good.npz"]'
    args = ["sweep", *TINY, "--set", "data.name=npz", "--set", "data.path=good.npz"]
    for ran in (2, 0):  # the second time, both trials come from the first run
        result = runner.invoke(app, [*args, "--grid", grid, "--runs-dir", "runs", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["ran"] == ran
    (sweep,) = (tmp_path / "runs").iterdir()
    results = (sweep / "results.csv").read_text(encoding="utf-8")  # UTF-8 still
    assert "bad\\udcff\\udcfe name.npz" in results
    shown = runner.invoke(app, [*args, "--grid", grid, "--runs-dir", "runs"])
    assert shown.exit_code == 0 and "bad\\xff\\xfe name.npz" in shown.output
