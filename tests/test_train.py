"""`winit train` and `winit compare` end to end: run directories, statuses, the textbook
result, divergence, interruption and reproducibility."""

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.experiments import load_dataset, run_train
from weightinit_cli.loading import load_config

runner = CliRunner()
SMALL = ["--depth", "3", "--width", "16", "--steps", "30"]


def invoke(*args):
    return runner.invoke(app, list(args), env={"COLUMNS": "120"})


def only_run(root: Path) -> Path:
    (run,) = root.iterdir()
    return run


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_train_writes_a_complete_run_directory(runs):
    result = invoke("train", *SMALL, "--set", "train.log_every=10")
    assert result.exit_code == 0, result.output
    run = only_run(runs)
    assert run.name.endswith("_default")
    assert sorted(p.name for p in run.iterdir()) == [
        "config.yaml",
        "layers.csv",
        "loss.png",
        "meta.json",
        "metrics.csv",
        "spectra.png",
        "summary.json",
    ]
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["seed"] == 0 and meta["device"] == "cpu"
    assert meta["versions"]["torch"] and len(meta["config_hash"]) == 12
    metrics = read_csv(run / "metrics.csv")
    assert [int(r["step"]) for r in metrics] == [0, 10, 20, 30]
    assert {"loss", "accuracy", "grad_norm", "grad_std_dense1", "grad_std_head"} <= set(metrics[0])
    layers = read_csv(run / "layers.csv")
    assert [r["when"] for r in layers] == ["init"] * 4 + ["final"] * 4
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 30
    assert summary["run_dir"] == str(run)
    assert summary["history"][-1]["loss"] == pytest.approx(float(metrics[-1]["loss"]))
    assert (run / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert (run / "spectra.png").read_bytes()[:4] == b"\x89PNG"
    for text in ("he_normal", "completed", "wrote", "loss (log)", "Weights (median over 4"):
        assert text in result.output


def test_train_json_is_the_summary_with_run_dir(runs):
    result = invoke("train", *SMALL, "--json")
    data = json.loads(result.output)
    keys = {
        "status",
        "steps",
        "initial_loss",
        "final_loss",
        "final_accuracy",
        "diverged_at",
        "history",
        "run_dir",
    }
    assert keys <= set(data) and data["run_dir"] == str(only_run(runs))
    first = data["history"][0]
    assert first == {
        "step": 0,
        "loss": data["initial_loss"],
        "accuracy": first["accuracy"],
        "weights": first["weights"],
    }
    assert list(first["weights"]) == ["dense1", "dense2", "dense3", "head"]
    assert set(first["weights"]["dense1"]) == {"spectral_norm", "stable_rank", "alpha"}


@pytest.mark.parametrize(
    "args",
    [
        ["--set", "data.name=blobs"],
        ["--set", "data.name=teacher", "--set", "model.input_shape=[8]"],
        [
            "--set",
            "data.name=digits",
            "--set",
            "model.input_shape=[64]",
            "--set",
            "model.num_classes=10",
        ],
        ["--layer", "conv2d", "--set", "model.input_shape=[1,8,8]"],
        ["--layer", "conv3d", "--set", "model.input_shape=[1,6,6,6]"],
        ["--set", "train.optimizer=adam", "--set", "train.lr=0.003", "--activation", "tanh"],
        ["--backend", "torch", "--method", "orthogonal", "--set", "train.weight_decay=0.001"],
    ],
    ids=[
        "blobs",
        "teacher",
        "digits",
        "conv2d-shapes2d",
        "conv3d-shapes3d",
        "adam-tanh",
        "torch-orthogonal",
    ],
)
def test_train_each_model_type_and_dataset(runs, args):
    pytest.importorskip("sklearn") if "data.name=digits" in args else None
    result = invoke("train", *SMALL, *args, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["status"] in ("completed", "stuck") and data["steps"] == 30
    assert math.isfinite(data["final_loss"]) and 0 <= data["final_accuracy"] <= 1


def test_train_on_the_users_npz(runs, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "mine.npz", x=x, y=y)
    result = invoke(
        "train",
        *SMALL,
        "--set",
        "data.name=npz",
        "--set",
        f"data.path={tmp_path / 'mine.npz'}",
        "--set",
        "model.input_shape=[5]",
        "--set",
        "model.num_classes=2",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["final_accuracy"] > 0.6


def test_same_seed_same_metrics(runs):
    for _ in range(2):
        assert invoke("train", *SMALL, "--seed", "4").exit_code == 0
    first, second = sorted(runs.iterdir())
    assert first != second  # names never collide, even within one second
    assert (first / "metrics.csv").read_text() == (second / "metrics.csv").read_text()
    assert (first / "layers.csv").read_text() == (second / "layers.csv").read_text()
    invoke("train", *SMALL, "--seed", "5")
    third = max(runs.iterdir(), key=lambda p: p.stat().st_mtime)
    assert (third / "metrics.csv").read_text() != (first / "metrics.csv").read_text()


def test_diverging_train_is_reported_and_exits_1(runs):
    result = invoke(
        "train", *SMALL, "--depth", "20", "--method", "normal", "--set", "init.params.std=50"
    )
    assert result.exit_code == 1
    assert "diverged at step" in result.output and "Traceback" not in result.output
    run = only_run(runs)
    assert json.loads((run / "meta.json").read_text())["status"] == "diverged"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["diverged_at"] is not None


def test_stopping_mid_run_keeps_complete_files():
    cfg = load_config(None, ["model.depth=3", "train.steps=1000", "train.log_every=5"])
    calls = iter(range(10_000))
    result = run_train(cfg, load_dataset(cfg), "cpu", should_stop=lambda: next(calls) >= 23)
    history = result.history
    assert history.status == "interrupted" and history.steps == 23
    assert [p.step for p in history.history] == [0, 5, 10, 15, 20, 23]


def test_ctrl_c_on_a_real_process_leaves_a_complete_interrupted_run(tmp_path):
    env = {**os.environ, "WINIT_RUNS_DIR": str(tmp_path), "COLUMNS": "100"}
    process = subprocess.Popen(
        [sys.executable, "-m", "weightinit_cli", "train", "--steps", "1000000", "--depth", "3"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    metrics = None
    while time.monotonic() < deadline:
        found = list(tmp_path.glob("*/metrics.csv"))
        if found and len(found[0].read_text().splitlines()) > 3:
            metrics = found[0]
            break
        time.sleep(0.1)
    assert metrics is not None, "the run never logged"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    run = metrics.parent
    assert json.loads((run / "meta.json").read_text())["status"] == "interrupted"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 0 < summary["steps"] < 1_000_000
    rows = read_csv(metrics)
    assert int(rows[-1]["step"]) == summary["steps"]
    assert b"Traceback" not in err


def test_compare_default_shows_the_textbook_result(runs):
    result = invoke("compare", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    by_method = {m["method"]: m for m in data["methods"]}
    assert list(by_method) == ["xavier_uniform", "he_normal", "zeros"]
    chance = math.log(3)
    zero, xavier, he = by_method["zeros"], by_method["xavier_uniform"], by_method["he_normal"]
    assert zero["train"]["status"] == "stuck"
    assert zero["train"]["final_loss"] == pytest.approx(chance, abs=0.01)
    assert all(layer["symmetric_weights"] for layer in zero["layers"])
    assert xavier["train"]["final_loss"] > 0.75 * chance
    assert xavier["train"]["steps_to_target"] is None
    assert he["train"]["final_loss"] < chance - 0.4 and he["train"]["final_accuracy"] > 0.9
    assert he["train"]["steps_to_target"] is not None
    run = Path(data["run_dir"])
    assert {
        "compare.png",
        "summary.json",
        "layers.csv",
        "metrics.csv",
        "meta.json",
        "config.yaml",
    } <= {p.name for p in run.iterdir()}
    assert {r["method"] for r in read_csv(run / "metrics.csv")} == set(by_method)


def test_compare_table_says_stuck_and_symmetric(runs):
    result = invoke("compare", "--methods", "he", "zero", "--steps", "20", "--depth", "4")
    assert result.exit_code == 0, result.output
    for text in (
        "activation std at init",
        "weight-gradient std at init",
        "stuck: symmetric",
        "never",
        "he_normal",
        "zeros",
        "loss (log)",
    ):
        assert text in result.output


def test_a_diverging_method_does_not_stop_the_others(runs):
    result = invoke(
        "compare",
        "--methods",
        "normal",
        "he",
        "--param",
        "normal.std=50",
        "--depth",
        "4",
        "--steps",
        "40",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = {m["method"]: m for m in json.loads(result.output)["methods"]}
    assert data["normal"]["train"]["status"] == "diverged"
    assert data["normal"]["train"]["diverged_at"] is not None
    assert data["he_normal"]["train"]["status"] == "completed"
    assert data["he_normal"]["train"]["steps"] == 40


def test_compare_params_and_zero_steps(runs):
    result = invoke(
        "compare",
        "--methods",
        "he",
        "he_uniform",
        "--param",
        "he.mode=fan_out",
        "--steps",
        "0",
        "--depth",
        "3",
        "--json",
    )
    data = json.loads(result.output)["methods"]
    assert data[0]["params"] == {"mode": "fan_out"} and all(m["train"] is None for m in data)
    head = data[0]["layers"][-1]
    assert head["expected_weight_std"] == pytest.approx(math.sqrt(2 / head["fan_out"]))


def test_compare_out_is_the_run_directory(tmp_path):
    out = tmp_path / "cmp"
    result = invoke("compare", "--methods", "he", "--steps", "5", "--depth", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "compare.png").exists() and (out / "summary.json").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["compare", "--methods", "he", "kaiming"], "he_normal more than once"),
        (["compare", "--methods", "he", "--param", "he.mode"], "METHOD.KEY=VALUE"),
        (["compare", "--methods", "he", "--param", "xavier.gain=2"], "not one of --methods"),
        (["compare", "--methods", "he", "--param", "he.std=2"], "he_normal does not take std"),
        (["train", "--set", "device=cuda"], "cuda"),
        (["train", "--set", "data.name=npz"], "data.path"),
        (["train", "--set", "train.lr=0"], "train.lr"),
    ],
)
def test_bad_input_exits_2_and_writes_no_run(runs, args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not runs.exists() or not any(runs.iterdir())
