"""`--log mlflow`: the runs read back through MlflowClient from a local store (MLflow's
SQLite default, and the file store), and from a real `mlflow server` on 127.0.0.1."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_train import invoke, only_run, read_csv

if os.environ.get("WINIT_REQUIRE_MLFLOW") != "1":
    pytest.importorskip("mlflow")
from mlflow import MlflowClient

from weightinit_cli.loading import config_data, config_hash, load_config
from weightinit_cli.trackers import flat_config

SMALL = ["--depth", "3", "--width", "32", "--steps", "20", "--set", "train.log_every=10"]
SMALL_SETS = ["model.depth=3", "model.width=32", "train.steps=20", "train.log_every=10"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One SQLite store for the module (a new one migrates its tables: seconds)."""
    root = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{root / 'mlflow.db'}"


@pytest.fixture
def tracking(store: str, monkeypatch, request, tmp_path) -> MlflowClient:
    """This test's own experiment in the module's store; the working directory a temporary
    one, so a default that slipped through would not land in the checkout."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", request.node.name)
    monkeypatch.chdir(tmp_path)
    return MlflowClient(store)


def runs_of(client: MlflowClient, experiment: str) -> dict[str, object]:
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    return {r.info.run_name: r for r in client.search_runs([found.experiment_id])}


def history(client: MlflowClient, run, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]


def artifacts(client: MlflowClient, run) -> list[str]:
    return sorted(a.path for a in client.list_artifacts(run.info.run_id))


def check_train_run(client: MlflowClient, run_dir: Path, experiment: str) -> None:
    """What an MLflow run of `winit train` must hold, against its run directory."""
    (run,) = runs_of(client, experiment).values()
    assert run.info.run_name == run_dir.name and run.info.status == "FINISHED"
    saved = load_config(run_dir / "config.yaml", [], "train")
    assert run.data.params == {k: str(v) for k, v in flat_config(config_data(saved)).items()}
    assert run.data.params["model.depth"] == "3" and run.data.params["log"] == '["mlflow"]'
    tags = run.data.tags
    assert tags["winit.status"] == "completed" and tags["winit.command"] == "train"
    assert tags["winit.config_hash"] == config_hash(saved)
    assert tags["winit.run_dir"] == str(run_dir.resolve())
    from weightinit_cli import __version__

    assert tags["winit.version"] == __version__
    metrics = read_csv(run_dir / "metrics.csv")
    for key, column in (("loss", "loss"), ("grad_std/dense2", "grad_std_dense2"),
                        ("spectral_norm/head", "spectral_norm_head")):  # fmt: skip
        assert history(client, run, key) == [
            (int(r["step"]), pytest.approx(float(r[column]))) for r in metrics
        ]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert run.data.metrics["final_loss"] == pytest.approx(summary["final_loss"])
    assert artifacts(client, run) == sorted(p.name for p in run_dir.iterdir())


def test_train_logs_params_metrics_tags_and_artifacts(runs: Path, tracking, request) -> None:
    result = invoke("train", *SMALL, "--log", "mlflow")
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output and "INFO" not in result.output
    run_dir = only_run(runs)
    check_train_run(tracking, run_dir, request.node.name)
    # the artifacts are the run directory's files byte for byte
    (run,) = runs_of(tracking, request.node.name).values()
    local = tracking.download_artifacts(run.info.run_id, "meta.json", str(runs.parent))
    assert Path(local).read_bytes() == (run_dir / "meta.json").read_bytes()
    assert json.loads(Path(local).read_text())["status"] == "completed"


def test_compare_is_a_parent_with_a_child_per_method(runs: Path, tracking, request) -> None:
    result = invoke("compare", "--methods", "he", "orthogonal", *SMALL, "--log", "mlflow",
                    "--log", "tensorboard")  # fmt: skip
    assert result.exit_code == 0, result.output
    run_dir = only_run(runs)
    found = runs_of(tracking, request.node.name)
    assert sorted(found) == sorted([run_dir.name, "he_normal", "orthogonal"])
    parent = found[run_dir.name]
    assert parent.info.status == "FINISHED" and "init.method" not in parent.data.params
    # the parent holds the run directory; TensorBoard's event files stay out of it
    files = sorted(p.name for p in run_dir.iterdir() if p.name != "tb")
    assert artifacts(tracking, parent) == files
    metrics = read_csv(run_dir / "metrics.csv")
    for method in ("he_normal", "orthogonal"):
        child = found[method]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.params["init.method"] == method
        expected = [(int(r["step"]), float(r["loss"])) for r in metrics if r["method"] == method]
        assert history(tracking, child, "loss") == [(s, pytest.approx(v)) for s, v in expected]
        assert artifacts(tracking, child) == []


def test_stats_logs_the_pass_at_init(runs: Path, tracking, request) -> None:
    result = invoke("stats", "--depth", "3", "--width", "32", "--log", "mlflow")
    assert result.exit_code == 0, result.output
    run_dir = only_run(runs)
    (run,) = runs_of(tracking, request.node.name).values()
    assert run.data.tags["winit.command"] == "stats"
    for row in read_csv(run_dir / "layers.csv"):
        std = run.data.metrics[f"activation_std/{row['name']}"]
        assert std == pytest.approx(float(row["activation_std"]))
    assert "layers.csv" in artifacts(tracking, run)


def test_a_diverged_run_is_failed_in_mlflow_and_its_nans_stay_home(runs, tracking, request):
    result = invoke("train", *SMALL, "--set", "train.lr=1e6", "--log", "mlflow")
    assert result.exit_code == 1, result.output  # a diverged run's own exit code
    run_dir = only_run(runs)
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "diverged"
    (run,) = runs_of(tracking, request.node.name).values()
    assert run.info.status == "FAILED" and run.data.tags["winit.status"] == "diverged"
    finite = [r for r in read_csv(run_dir / "metrics.csv") if r["loss"] not in ("nan", "inf")]
    assert [s for s, _ in history(tracking, run, "loss")] == [int(r["step"]) for r in finite]


def test_the_file_store(runs: Path, tmp_path: Path, monkeypatch) -> None:
    """MLflow 3 refuses its file store unless asked (MLFLOW_ALLOW_FILE_STORE); winit logs
    to it as to any store."""
    monkeypatch.chdir(tmp_path)
    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    result = invoke("train", *SMALL, "--log", "mlflow")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mlruns").is_dir()
    check_train_run(MlflowClient(store), only_run(runs), "winit")


def test_mlflow_is_out_of_the_hash_and_reruns_identical(runs: Path, tracking) -> None:
    result = invoke("train", *SMALL, "--log", "mlflow")
    assert result.exit_code == 0, result.output
    saved = load_config(only_run(runs) / "config.yaml", [], "train")
    assert saved.log == ["mlflow"]
    assert config_hash(saved) == config_hash(load_config(None, SMALL_SETS, "train"))
    rerun = invoke("rerun", str(only_run(runs)), "--json")
    assert rerun.exit_code == 0, rerun.output
    assert json.loads(rerun.stdout)["identical"]


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_a_missing_package_is_one_error_line(runs: Path, monkeypatch, command: str) -> None:
    from weightinit_cli import trackers

    monkeypatch.setitem(trackers.PACKAGES, "mlflow", "no_such_package_winit")
    grid = ["--grid", "model.depth=2,3"] if command == "sweep" else []
    result = invoke(command, *SMALL, *grid, "--log", "mlflow")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: log: mlflow needs the no_such_package_winit package: pip install "
        "'weightinit-cli[mlflow]'"
    ]
    assert not runs.exists() or not any(runs.iterdir())


# --------------------------------------------------------------------------- a real server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mlflow server` on 127.0.0.1, its artifacts served by it, stopped afterwards."""
    root = tmp_path_factory.mktemp("server")
    port = free_port()
    where = ["--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
    where += ["--artifacts-destination", str(root / "artifacts")]
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
        + ["--workers", "1", *where],
        stdout=subprocess.DEVNULL,
        stderr=open(root / "server.log", "w"),  # noqa: SIM115 -- open as long as the server
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    yield url, process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_a_real_server(runs: Path, server, monkeypatch, tmp_path) -> None:
    url, _ = server
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "served")
    result = invoke("train", *SMALL, "--log", "mlflow")
    assert result.exit_code == 0, result.output
    check_train_run(MlflowClient(url), only_run(runs), "served")
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()


def test_a_server_gone_mid_run_never_costs_the_run(runs: Path, server, monkeypatch, tmp_path):
    """Last in the module: it stops the server."""
    url, process = server
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "gone")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the user's setting wins
    from weightinit_cli.trackers import mlflow
    from weightinit_cli.trackers.mlflow import MlflowTracker

    monkeypatch.setattr(mlflow, "FLUSH_SECONDS", 0.0)  # each log point sent as it comes

    real = MlflowTracker.log_point
    steps = []

    def then_stop(self, label, point, names):
        steps.append(point.step)
        if point.step == 10:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        real(self, label, point, names)

    monkeypatch.setattr(MlflowTracker, "log_point", then_stop)
    result = invoke("train", *SMALL, "--log", "mlflow")
    assert result.exit_code == 0, result.output
    assert steps == [0, 10]  # dropped at its failure, never called again
    warnings = [line for line in result.output.splitlines() if line.startswith("Warning:")]
    (warning,) = warnings
    # refused or reset, as the kill and the request fall
    assert warning.startswith("Warning: mlflow stopped logging (") and "127.0.0.1" in warning
    run_dir = only_run(runs)
    assert [int(r["step"]) for r in read_csv(run_dir / "metrics.csv")] == [0, 10, 20]
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "completed"
