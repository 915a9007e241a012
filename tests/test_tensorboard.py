"""`--log tensorboard`: the event files read back with TensorBoard's own EventAccumulator,
against the run directory's numbers and the layers' tensors."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_train import invoke, only_run, read_csv

if os.environ.get("WINIT_REQUIRE_TENSORBOARD") != "1":
    pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from weightinit_cli.experiments import initialized, load_dataset
from weightinit_cli.loading import config_hash, load_config

SMALL = ["--depth", "3", "--width", "32", "--steps", "20", "--set", "train.log_every=10"]
LAYERS = ["dense1", "dense2", "dense3", "head"]


def events(path: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 0})
    accumulator.Reload()
    return accumulator


def scalar(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_train_scalars_are_metrics_csv_and_histograms_the_tensors(runs: Path) -> None:
    result = invoke("train", *SMALL, "--log", "tensorboard")
    assert result.exit_code == 0, result.output
    run = only_run(runs)
    acc = events(run / "tb")
    metrics = read_csv(run / "metrics.csv")
    for tag, column in (("loss", "loss"), ("accuracy", "accuracy"), ("grad_norm", "grad_norm"),
                        ("grad_std/dense2", "grad_std_dense2"),
                        ("spectral_norm/dense2", "spectral_norm_dense2")):  # fmt: skip
        logged = scalar(acc, tag)
        assert [s for s, _ in logged] == [int(r["step"]) for r in metrics] == [0, 10, 20]
        # TensorBoard keeps float32
        assert [v for _, v in logged] == pytest.approx([float(r[column]) for r in metrics])
    # at step 0 the weights are the init's: the same seed draws them again here
    cfg = load_config(None, ["model.depth=3", "model.width=32"], "train")
    data = load_dataset(cfg)
    model, _ = initialized(cfg, cfg.init.spec, data)
    for name in LAYERS:
        weight = model.get_submodule(name).weight.detach()
        (first, *_) = acc.Histograms(f"weights/{name}")
        value = first.histogram_value
        assert first.step == 0 and value.num == weight.numel()
        assert (value.min, value.max) == pytest.approx((float(weight.min()), float(weight.max())))
        assert sum(value.bucket) == weight.numel()
        assert value.sum == pytest.approx(float(weight.double().sum()), abs=1e-6)
    activation = acc.Histograms("activations/dense1")[0].histogram_value
    assert activation.num == len(data.y_test) * 32  # every held-out input, every unit
    assert activation.min >= 0  # after the ReLU
    assert [h.step for h in acc.Histograms("gradients/head")] == [0, 10, 20]
    hparams = acc.PluginTagToContent("hparams")
    assert hparams  # the config as hparams, beside the final metrics
    summary = json.loads((run / "summary.json").read_text())
    assert scalar(acc, "hparam/final_loss")[0][1] == pytest.approx(summary["final_loss"])


def test_tensorboard_keeps_a_nan_loss_that_mlflow_leaves_out() -> None:
    from weightinit_cli.trackers import point_metrics
    from weightinit_cli.train import LogPoint

    point = LogPoint(5, math.nan, 0.5, math.inf, 2.0, layer_grad_std=[0.1, math.nan])
    shown = point_metrics(point, ["dense1", "head"], nonfinite_loss=True)
    assert math.isnan(shown["loss"]) and shown["test_loss"] == math.inf
    assert "grad_std/head" not in shown and shown["grad_std/dense1"] == 0.1
    assert point_metrics(point, ["dense1", "head"]) == {
        "accuracy": 0.5, "grad_norm": 2.0, "grad_std/dense1": 0.1
    }


def test_compare_writes_a_run_per_method(runs: Path) -> None:
    result = invoke("compare", "--methods", "he", "orthogonal", *SMALL, "--log", "tensorboard")
    assert result.exit_code == 0, result.output
    run = only_run(runs)
    assert sorted(p.name for p in (run / "tb").iterdir()) == ["he_normal", "orthogonal"]
    metrics = read_csv(run / "metrics.csv")
    for method in ("he_normal", "orthogonal"):
        losses = [v for _, v in scalar(events(run / "tb" / method), "loss")]
        expected = [float(r["loss"]) for r in metrics if r["method"] == method]
        assert losses == pytest.approx(expected)
        assert hparams_of(run / "tb" / method)["init.method"].string_value == method


def hparams_of(path: Path):
    """The hparams a run's event files hold (the plugin's session start)."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = events(path).PluginTagToContent("hparams")["_hparams_/session_start_info"]
    return plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams


def test_a_run_logged_to_tensorboard_reruns_identical(runs: Path) -> None:
    result = invoke("train", *SMALL, "--log", "tensorboard")
    assert result.exit_code == 0, result.output
    run = only_run(runs)
    rerun = invoke("rerun", str(run), "--json")
    assert rerun.exit_code == 0, rerun.output
    match = json.loads(rerun.stdout)
    assert match["identical"], match
    assert events(Path(match["rerun"]) / "tb").Scalars("loss")  # the rerun logs as it did


def test_stats_keeps_a_run_directory_for_its_histograms(runs: Path) -> None:
    result = invoke("stats", "--depth", "3", "--width", "32", "--log", "tensorboard")
    assert result.exit_code == 0, result.output
    run = only_run(runs)
    acc = events(run / "tb")
    stats = read_csv(run / "layers.csv")
    for row in stats:
        (histogram,) = acc.Histograms(f"weights/{row['name']}")
        assert histogram.histogram_value.max == pytest.approx(float(row["weight_max"]))
        (std,) = scalar(acc, f"activation_std/{row['name']}")
        assert std[1] == pytest.approx(float(row["activation_std"]))
    assert f"wrote {run}/" in " ".join(result.output.split())


def test_log_dir_puts_the_runs_under_it(runs: Path, tmp_path: Path) -> None:
    board = tmp_path / "board"
    result = invoke("train", *SMALL, "--log", "tensorboard", "--log-dir", str(board))
    assert result.exit_code == 0, result.output
    run = only_run(runs)
    assert not (run / "tb").exists()
    assert events(board / run.name).Scalars("loss")
    saved = load_config(run / "config.yaml", [], "train")
    assert saved.log == ["tensorboard"] and saved.log_dir == str(board)
    # where a run is also shown is not what it computes: the hash is the plain run's
    assert config_hash(saved) == config_hash(load_config(None, ["model.depth=3",
        "model.width=32", "train.steps=20", "train.log_every=10"], "train"))  # fmt: skip


def test_a_missing_package_is_one_error_line(runs: Path, monkeypatch) -> None:
    from weightinit_cli import trackers

    monkeypatch.setitem(trackers.PACKAGES, "tensorboard", "no_such_package_winit")
    result = invoke("train", *SMALL, "--log", "tensorboard")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: log: tensorboard needs the no_such_package_winit package: pip install "
        "'weightinit-cli[tensorboard]'"
    ]
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.parametrize(
    "args", [["--log", "nonsense"], ["--set", "log=[tensorboard, tensorboard]"]]
)
def test_bad_trackers_are_config_errors(runs: Path, args: list[str]) -> None:
    result = invoke("train", *SMALL, *args)
    (line,) = result.output.strip().splitlines()
    assert result.exit_code == 2 and line.startswith("Error: ") and "log" in line, line


def test_a_log_dir_in_the_way_is_refused_before_the_run(runs: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = invoke("train", *SMALL, "--log", "tensorboard", "--log-dir", str(blocker / "tb"))
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: log_dir {blocker / 'tb'}: {blocker} is a file, not a directory"
    ]
    assert not runs.exists() or not any(runs.iterdir())


def test_commands_without_trackers_refuse_them(runs: Path) -> None:
    result = invoke("coordcheck", "--set", "log=[tensorboard]")
    assert result.exit_code == 2
    assert result.output.startswith(
        "Error: log: tensorboard: winit coordcheck does not log to trackers yet (train, compare, "
        "stats and sweep do)"
    ), result.output


def test_a_tracker_that_fails_never_costs_the_run(runs: Path, monkeypatch) -> None:
    from weightinit_cli.trackers.tensorboard import TensorBoardTracker

    calls = []
    real = TensorBoardTracker.log_point

    def failing(self, label, point, names):
        calls.append(point.step)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(self, label, point, names)

    monkeypatch.setattr(TensorBoardTracker, "log_point", failing)
    result = invoke("train", *SMALL, "--log", "tensorboard")
    assert result.exit_code == 0, result.output
    assert calls == [0, 10]  # dropped at its failure, never called again
    warnings = [line for line in result.output.splitlines() if line.startswith("Warning:")]
    assert warnings == [
        "Warning: tensorboard stopped logging (OSError: [Errno 28] No space left on device); "
        "the run goes on and its directory has every number"
    ]
    run = only_run(runs)
    assert [int(r["step"]) for r in read_csv(run / "metrics.csv")] == [0, 10, 20]
    assert json.loads((run / "meta.json").read_text())["status"] == "completed"


def test_no_tracker_asked_imports_none() -> None:
    code = (
        "import sys, tempfile\n"
        "from weightinit_cli.cli import app\n"
        "try:\n    app(['train', '--depth', '2', '--steps', '2', '--json', '--runs-dir', "
        "tempfile.mkdtemp()])\nexcept SystemExit as e:\n    assert not e.code\n"
        "assert not {'tensorboard', 'torch.utils.tensorboard', 'mlflow'} & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
