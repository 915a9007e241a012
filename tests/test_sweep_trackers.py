"""`winit sweep --log ...`: a TensorBoard run per trial (written by its worker, brought back
with its files) and an MLflow parent run with a child per trial; resuming duplicates
neither."""

import json
import os
from pathlib import Path

import pytest
from test_sweep import GRID, SMALL, fail_at_depth_4, read_csv, sweep, sweep_dirs

if os.environ.get("WINIT_REQUIRE_TENSORBOARD") != "1":
    pytest.importorskip("tensorboard")
if os.environ.get("WINIT_REQUIRE_MLFLOW") != "1":
    pytest.importorskip("mlflow")
from mlflow import MlflowClient
from test_tensorboard import events, hparams_of, scalar

from weightinit_cli.loading import config_hash, load_config

EVENTS = "events.out.tfevents."


def test_each_trial_is_a_tensorboard_run_and_a_resume_writes_none_twice(tmp_path):
    runs = tmp_path / "runs"
    result, first = sweep(*GRID, *SMALL, "--log", "tensorboard", "--jobs", "2", runs=runs)
    assert result.exit_code == 0, result.output
    path = Path(first["run_dir"])
    trials = sorted((path / "trials").iterdir())
    assert len(trials) == 4
    for trial in trials:
        (event_file,) = (trial / "tb").iterdir()
        assert event_file.name.startswith(EVENTS)
        acc = events(trial / "tb")
        metrics = read_csv(trial / "metrics.csv")
        assert scalar(acc, "loss") == [
            (int(r["step"]), pytest.approx(float(r["loss"]))) for r in metrics
        ]
        assert [h.step for h in acc.Histograms("weights/head")] == [int(r["step"]) for r in metrics]
        depth = load_config(trial / "config.yaml", [], "train").model.depth
        assert hparams_of(trial / "tb")["model.depth"].number_value == depth

    # a trial killed while it was written runs again; its directory, tb/ and all, replaced
    unfinished = trials[2]
    (unfinished / "summary.json").unlink()
    result, again = sweep(*GRID, *SMALL, "--log", "tensorboard", runs=runs)
    assert result.exit_code == 0, result.output
    assert (again["ran"], again["resumed"]) == (1, 3)
    (event_file,) = (unfinished / "tb").iterdir()  # one run, not two
    assert len(scalar(events(unfinished / "tb"), "loss")) == len(
        read_csv(unfinished / "metrics.csv")
    )


def test_log_dir_takes_the_trials_tensorboard_runs(tmp_path):
    runs, board = tmp_path / "runs", tmp_path / "board"
    args = [*GRID, *SMALL, "--log", "tensorboard", "--log-dir", str(board)]
    result, first = sweep(*args, runs=runs)
    assert result.exit_code == 0, result.output
    path = Path(first["run_dir"])
    for trial in (path / "trials").iterdir():
        assert not (trial / "tb").exists()
        assert events(board / path.name / trial.name).Scalars("loss")


def test_adding_a_tracker_resumes_the_same_sweep(tmp_path):
    runs = tmp_path / "runs"
    result, first = sweep(*GRID, *SMALL, runs=runs)
    assert result.exit_code == 0, result.output
    result, again = sweep(*GRID, *SMALL, "--log", "tensorboard", runs=runs)
    assert again["run_dir"] == first["run_dir"] and (again["ran"], again["resumed"]) == (0, 4)
    assert len(sweep_dirs(runs)) == 1


def child_runs(client: MlflowClient, experiment: str) -> tuple[object, dict[str, object]]:
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id])  # deleted runs are not among them
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.info.run_name: r for r in runs if r is not parent}
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children.values())
    return parent, children


def test_mlflow_parent_and_a_child_per_trial_resumed_without_duplicates(tmp_path, monkeypatch):
    import weightinit_cli.experiments as experiments

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "sweep")
    monkeypatch.chdir(tmp_path)
    run_train = fail_at_depth_4(monkeypatch)
    runs = tmp_path / "runs"
    result, first = sweep(*GRID, *SMALL, "--log", "mlflow", "--jobs", "2", runs=runs)
    assert result.exit_code == 1, result.output  # two trials failed
    path = Path(first["run_dir"])
    client = MlflowClient(store)
    parent, children = child_runs(client, "sweep")
    assert parent.info.run_name == path.name and parent.info.status == "FAILED"
    assert parent.data.tags["winit.status"] == "incomplete"
    assert json.loads(parent.data.params["grid.model.depth"]) == [2, 4]
    assert "model.depth" not in parent.data.params  # the grid's, not the base's
    assert sorted(children) == sorted(p.name for p in (path / "trials").iterdir())
    failed = children["1_method=he_depth=4"]
    assert failed.info.status == "FAILED" and failed.data.tags["winit.status"] == "failed"
    assert "summary.json" in [a.path for a in client.list_artifacts(parent.info.run_id)]

    monkeypatch.setattr(experiments, "run_train", run_train)
    result, again = sweep(*GRID, *SMALL, "--log", "mlflow", runs=runs)
    assert result.exit_code == 0, result.output
    assert (again["ran"], again["resumed"]) == (2, 2)
    resumed, children = child_runs(client, "sweep")
    assert resumed.info.run_id == parent.info.run_id and resumed.info.status == "FINISHED"
    assert len(children) == 4  # the failed tries' children replaced, not added to
    for name, child in children.items():
        trial = path / "trials" / name
        assert child.info.status == "FINISHED" and child.data.tags["winit.trial"] == name
        assert child.data.tags["winit.run_dir"] == str(trial.resolve())
        saved = load_config(trial / "config.yaml", [], "train")
        assert child.data.tags["winit.config_hash"] == config_hash(saved)
        assert child.data.params["model.depth"] == str(saved.model.depth)
        history = client.get_metric_history(child.info.run_id, "loss")
        assert [(m.step, m.value) for m in history] == [
            (int(r["step"]), pytest.approx(float(r["loss"])))
            for r in read_csv(trial / "metrics.csv")
        ]
        artifacts = sorted(a.path for a in client.list_artifacts(child.info.run_id))
        assert artifacts == sorted(p.name for p in trial.iterdir())


def test_mlflow_failing_mid_sweep_is_one_warning_and_the_sweep_goes_on(tmp_path, monkeypatch):
    from weightinit_cli.trackers.mlflow import SweepMlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    logged = []
    real = SweepMlflow.log_trial

    def full_disk_at_the_second(self, cfg, trial_dir, status, tracked):
        logged.append(trial_dir.name)
        if len(logged) == 2:
            raise OSError(28, "No space left on device")
        real(self, cfg, trial_dir, status, tracked)

    monkeypatch.setattr(SweepMlflow, "log_trial", full_disk_at_the_second)
    result, data = sweep(*GRID, *SMALL, "--log", "mlflow", runs=tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert len(logged) == 2  # dropped at its failure: no later trial is sent
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert warnings == [
        "Warning: mlflow stopped logging (OSError: [Errno 28] No space left on device); the run "
        "goes on and its directory has every number"
    ]
    assert data["status"] == "completed" and data["ran"] == 4
