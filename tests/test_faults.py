"""Faults during a run: divergence, signals, SIGKILL, a full disk; and `winit rerun`."""

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from weightinit_cli import runs as runs_module
from weightinit_cli.cli import app

runner = CliRunner()
TINY = ["--depth", "3", "--width", "16", "--steps", "30"]


def invoke(*args):
    return runner.invoke(app, list(args), env={"COLUMNS": "120"})


def test_divergence_names_the_step_and_the_first_layer(runs):
    result = invoke(
        "train",
        "--depth",
        "20",
        "--width",
        "16",
        "--steps",
        "30",
        "--method",
        "normal",
        "--set",
        "init.params.std=50",
        "--json",
    )
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["status"] == "diverged" and summary["diverged_at"] is not None
    layer = summary["diverged_layer"]
    assert layer is not None and layer.startswith(("dense", "relu", "head"))
    assert f"layer {layer}" in result.output and "Traceback" not in result.output


def start(args, env_root, *extra_env):
    env = {**os.environ, "WINIT_RUNS_DIR": str(env_root), "COLUMNS": "100"}
    return subprocess.Popen(
        [sys.executable, "-m", "weightinit_cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for_rows(root: Path, rows: int, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for metrics in root.glob("*/metrics.csv"):
            if len(metrics.read_text().splitlines()) > rows:
                return metrics
        time.sleep(0.05)
    raise AssertionError("the run never logged")


def test_sigterm_stops_compare_cleanly(tmp_path):
    process = start(
        ["compare", "--methods", "he", "xavier", "--steps", "1000000", "--depth", "3"], tmp_path
    )
    metrics = wait_for_rows(tmp_path, 3)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err.decode()
    run = metrics.parent
    assert json.loads((run / "meta.json").read_text())["status"] == "interrupted"
    summary = json.loads((run / "summary.json").read_text())
    statuses = [m["train"]["status"] for m in summary["methods"]]
    # Methods run side by side on several cores, one after another on one: either way every
    # method that started is interrupted, and one that never started is absent.
    assert statuses and set(statuses) == {"interrupted"}
    assert (run / "compare.png").exists() and b"Traceback" not in err


def test_sigkill_leaves_every_complete_metrics_row_readable(tmp_path):
    process = start(
        ["train", "--steps", "1000000", "--depth", "3", "--set", "train.log_every=1"], tmp_path
    )
    metrics = wait_for_rows(tmp_path, 20)
    process.kill()
    process.wait(timeout=30)
    with open(metrics, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 20
    assert all(None not in row.values() and row["loss"] for row in rows)
    assert [int(r["step"]) for r in rows] == list(range(len(rows)))
    meta = json.loads((metrics.parent / "meta.json").read_text())
    assert meta["status"] == "running"  # a killed run is recognisable as never finished
    assert not list(metrics.parent.glob(".*"))  # no temp files from atomic writes


def test_a_full_disk_is_a_clear_message(runs, monkeypatch):
    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] > 6:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(runs_module.os, "fsync", fsync)
    result = invoke("train", *TINY)
    assert result.exit_code == 1, result.output
    assert "No space left on device" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 2


def test_meta_records_what_reproduces_a_run(runs):
    invoke("train", *TINY, "--seed", "7")
    (run,) = runs.iterdir()
    meta = json.loads((run / "meta.json").read_text())
    assert meta["seed"] == 7 and meta["experiment"] == {"command": "train"}
    assert "--seed 7" in meta["command"] and len(meta["config_hash"]) == 12
    assert {"winit", "python", "torch", "numpy", "platform"} <= set(meta["versions"])


@pytest.mark.parametrize(
    "args",
    [
        ["train", *TINY],
        ["compare", "--methods", "he", "zero", "--depth", "3", "--steps", "20"],
        ["compare", "--methods", "xavier_normal", "he", "--param", "xavier_normal.gain=3"]
        + ["--param", "he.mode=fan_out", "--depth", "3", "--steps", "20"],
    ],
    ids=["train", "compare", "compare-with-params"],
)
def test_rerun_reproduces_bit_for_bit(runs, args):
    assert invoke(*args).exit_code == 0
    (original,) = runs.iterdir()
    result = invoke("rerun", str(original), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["identical"] and data["original"] == str(original)
    assert set(data["files"]) == {"metrics.csv", "layers.csv", "summary.json"}
    assert Path(data["rerun"]).parent == runs and Path(data["rerun"]) != original
    if "--param" in args:  # the parameters as given, gain among them, in meta.json
        methods = json.loads((original / "meta.json").read_text())["experiment"]["methods"]
        assert [m["params"] for m in methods] == [{"gain": 3}, {"mode": "fan_out"}]


def test_rerun_of_a_stats_directory(tmp_path, runs):
    out = tmp_path / "stats"
    assert invoke("stats", "--depth", "3", "--out", str(out)).exit_code == 0
    result = invoke("rerun", str(out), "--json")
    assert result.exit_code == 0 and json.loads(result.output)["identical"]


def test_rerun_of_spp_runs_measures_spp_again(tmp_path, runs):
    conv = ["--layer", "conv2d", "--depth", "3", "--spp"]
    out = tmp_path / "stats"
    assert invoke("stats", *conv, "--out", str(out)).exit_code == 0
    assert invoke("compare", "--methods", "he", "zero", *conv, "--steps", "5").exit_code == 0
    (compared,) = runs.iterdir()
    for original in (out, compared):
        assert json.loads((original / "meta.json").read_text())["experiment"]["spp"] is True
        result = invoke("rerun", str(original), "--json")
        assert result.exit_code == 0 and json.loads(result.output)["identical"], result.output


def test_rerun_says_where_numbers_differ(runs):
    invoke("train", *TINY)
    (original,) = runs.iterdir()
    metrics = original / "metrics.csv"
    lines = metrics.read_text().splitlines()
    cells = lines[2].split(",")
    cells[1] = "0.123"
    lines[2] = ",".join(cells)
    metrics.write_text("\n".join(lines) + "\n")
    result = invoke("rerun", str(original))
    assert result.exit_code == 1
    assert "row 2 differs first in loss" in result.output and "different" in result.output


@pytest.mark.parametrize("make", ["missing", "file", "no_meta"])
def test_rerun_needs_a_run_directory(tmp_path, runs, make):
    target = tmp_path / "thing"
    if make == "file":
        target.write_text("x")
    elif make == "no_meta":
        target.mkdir()
        (target / "config.yaml").write_text("seed: 1\n")
    result = invoke("rerun", str(target))
    assert result.exit_code == 2 and result.output.startswith("Error: ")


def test_deterministic_methods_agree_across_backends(runs):
    outputs = []
    for backend in ("scratch", "torch"):
        result = invoke(
            "stats",
            "--depth",
            "3",
            "--method",
            "constant",
            "--set",
            "init.params.value=0.01",
            "--backend",
            backend,
            "--json",
        )
        data = json.loads(result.output)
        data.pop("backend")
        outputs.append(data)
    assert outputs[0] == outputs[1]
