"""`winit sweep`, end to end: grids, trial directories, parallel = sequential, resume,
failures, interruption, and the Ray backend on a real local Ray instance."""

from __future__ import annotations

import csv
import fcntl
import importlib.util
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.errors import WinitError
from weightinit_cli.loading import config_hash, load_config
from weightinit_cli.sweep.grid import load_sweep

runner = CliRunner()

# Small trials: a few hundred milliseconds each.
SMALL = [
    "--set", "model.depth=3", "--set", "model.width=16", "--steps", "30",
    "--set", "data.samples=256", "--set", "train.batch_size=64",
]  # fmt: skip
GRID = ["--grid", "init.method=he,xavier", "--grid", "model.depth=2,4"]
TRIAL_FILES = {"config.yaml", "meta.json", "layers.csv", "metrics.csv", "summary.json"}


def sweep(*args: str, runs: Path | None = None) -> tuple[object, dict]:
    """`winit sweep ... --json`; (the CliRunner result, the printed JSON or {})."""
    extra = ["--runs-dir", str(runs)] if runs is not None else []
    result = runner.invoke(app, ["sweep", *args, *extra, "--json"])
    output = result.stdout
    data = json.loads(output[output.index("{") :]) if "{" in output else {}
    return result, data


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def sweep_dirs(runs: Path) -> list[Path]:
    return sorted(runs.glob("sweep-*"))


# ------------------------------------------------------------------ the grid


def test_a_sweep_file_and_the_command_line_make_one_grid(tmp_path):
    path = tmp_path / "depths.yaml"
    path.write_text(
        "name: depths\nseed: 5\ntrain: {steps: 30}\n"
        "grid:\n  init.method: [xavier_normal, he]\n  model:\n    depth: [5, 10, 20]\n"
        "seeds: 2\n"
    )
    spec = load_sweep(path, ["model.depth=3,6"], ["model.width=8"])
    assert [(a.key, a.values) for a in spec.axes] == [
        ("init.method", ("xavier_normal", "he")),
        ("model.depth", (3, 6)),  # the command line replaced the file's axis
        ("seed", (5, 6)),  # seeds: 2 from the sweep seed
    ]
    assert len(spec.trials) == 8
    first, last = spec.trials[0], spec.trials[-1]
    assert first.point == {"init.method": "xavier_normal", "model.depth": 3, "seed": 5}
    assert (first.config.init.method, first.config.model.depth, first.config.seed) == (
        "xavier_normal",
        3,
        5,
    )
    assert (last.config.init.method, last.config.model.depth, last.config.seed) == (
        "he_normal",
        6,
        6,
    )
    assert all(t.config.model.width == 8 and t.config.train.steps == 30 for t in spec.trials)
    assert first.dirname == "0_method=xavier_normal_depth=3_seed=5"
    assert len({t.dirname for t in spec.trials}) == 8

    # sweep.yaml (the spec) is itself a sweep file for the same trials
    from weightinit_cli.loading import to_yaml

    again = tmp_path / "again.yaml"
    again.write_text(to_yaml(spec.spec()))
    reloaded = load_sweep(again)
    assert reloaded.spec_hash() == spec.spec_hash()
    assert [config_hash(t.config) for t in reloaded.trials] == [
        config_hash(t.config) for t in spec.trials
    ]


def test_trials_share_the_sweep_seed_unless_seed_is_an_axis():
    plain = load_sweep(None, ["init.method=he,xavier"], ["seed=7"])
    assert [t.config.seed for t in plain.trials] == [7, 7]
    seeded = load_sweep(None, ["init.method=he,xavier"], ["seed=7"], seeds=3)
    assert [t.config.seed for t in seeded.trials] == [7, 8, 9, 7, 8, 9]
    explicit = load_sweep(None, ["seed=[3, 11]"])
    assert [t.config.seed for t in explicit.trials] == [3, 11]


def test_grid_values_are_yaml_and_lists_take_brackets():
    spec = load_sweep(
        None,
        ["train.lr=1e-3,0.1", "model.activation=relu,tanh", "data.noise=[0, 0.5]"],
    )
    axes = {a.key: a.values for a in spec.axes}
    assert axes["train.lr"] == (0.001, 0.1)
    assert axes["model.activation"] == ("relu", "tanh")
    assert axes["data.noise"] == (0, 0.5)
    shapes = load_sweep(None, ["model.input_shape=[[1, 8, 8], [1, 16, 16]]"], layer="conv2d").trials
    assert [t.config.model.input_shape for t in shapes] == [[1, 8, 8], [1, 16, 16]]
    assert shapes[1].dirname == "1_input_shape=1x16x16"


# ------------------------------------------------------------------ running


def test_a_sweep_writes_a_run_directory_per_trial_and_the_results(tmp_path):
    runs = tmp_path / "runs"
    result, data = sweep(*GRID, "--seeds", "2", *SMALL, "--jobs", "2", runs=runs)
    assert result.exit_code == 0, result.output
    (path,) = sweep_dirs(runs)
    assert path.name.startswith("sweep-") and path.name.endswith("_default")
    assert data["run_dir"] == str(path) and data["status"] == "completed"
    assert data["grid"] == {
        "init.method": ["he", "xavier"],
        "model.depth": [2, 4],
        "seed": [0, 1],
    }
    assert data["ran"] == 8 and data["resumed"] == 0

    meta = json.loads((path / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["backend"] == "local" and meta["jobs"] == 2
    assert meta["counts"]["completed"] + meta["counts"]["stuck"] == 8
    assert (path / "sweep.yaml").read_text().rstrip().endswith("seed: [0, 1]")

    rows = read_csv(path / "results.csv")
    assert len(rows) == 8
    for row in rows:
        trial = path / "trials" / row["trial"]
        assert {p.name for p in trial.iterdir()} == TRIAL_FILES
        summary = json.loads((trial / "summary.json").read_text())
        assert summary["run_dir"] == str(trial)
        assert float(row["final_loss"]) == summary["final_loss"]
        assert summary["steps"] == 30 and len(read_csv(trial / "metrics.csv")) == 4
        trial_meta = json.loads((trial / "meta.json").read_text())
        point = trial_meta["experiment"]["sweep"]["grid_point"]
        assert point == {
            "init.method": row["init.method"],
            "model.depth": int(row["model.depth"]),
            "seed": int(row["seed"]),
        }
        cfg = load_config(trial / "config.yaml")
        assert trial_meta["config_hash"] == config_hash(cfg)
        assert (cfg.model.depth, cfg.seed) == (point["model.depth"], point["seed"])

    # summary.csv: each grid point's mean and sample std over its two seeds
    groups = read_csv(path / "summary.csv")
    assert len(groups) == 4
    for group in groups:
        losses = [
            float(r["final_loss"])
            for r in rows
            if (r["init.method"], r["model.depth"]) == (group["init.method"], group["model.depth"])
        ]
        assert len(losses) == 2
        assert float(group["final_loss_mean"]) == pytest.approx(statistics.fmean(losses))
        assert float(group["final_loss_std"]) == pytest.approx(statistics.stdev(losses))
        assert int(group["trials"]) == 2
    for name in ("heatmap_final_loss.png", "heatmap_final_accuracy.png"):
        assert (path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # He trains a ReLU net that Xavier leaves near chance (3 classes: ln 3 = 1.10)
    by_method = {g["init.method"]: float(g["final_loss_mean"]) for g in groups}
    assert by_method["he"] < by_method["xavier"]


def test_the_table_shows_mean_and_std_over_seeds(tmp_path):
    result = runner.invoke(
        app,
        ["sweep", "--grid", "init.method=he,zero", "--seeds", "2", *SMALL,
         "--runs-dir", str(tmp_path)],
        env={"COLUMNS": "120"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "mean ± std over 2 seeds" in result.stdout
    zero_row = next(line for line in result.stdout.splitlines() if line.split()[:1] == ["zero"])
    assert "±" in zero_row and "2 stuck" in zero_row  # zero init: symmetric, and stuck


def test_workers_give_the_numbers_of_one_process(tmp_path):
    """--jobs 1 runs the trials here and --jobs 2 in forked workers: every file the same."""
    paths = {}
    for jobs in ("1", "2"):
        result, data = sweep(*GRID, *SMALL, "--jobs", jobs, runs=tmp_path / jobs)
        assert result.exit_code == 0, result.output
        paths[jobs] = Path(data["run_dir"])
    assert_same_trials(paths["1"], paths["2"])


def assert_same_trials(a: Path, b: Path) -> None:
    """The two sweep directories hold the same results, trial by trial, bit for bit."""

    def without_timing(rows):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert without_timing(read_csv(a / "results.csv")) == without_timing(
        read_csv(b / "results.csv")
    )
    assert (a / "summary.csv").read_bytes() == (b / "summary.csv").read_bytes()
    trials = sorted(p.name for p in (a / "trials").iterdir())
    assert trials == sorted(p.name for p in (b / "trials").iterdir()) and trials
    for name in trials:
        for file in ("metrics.csv", "layers.csv"):
            assert (a / "trials" / name / file).read_bytes() == (
                b / "trials" / name / file
            ).read_bytes(), f"{name}/{file}"
        summaries = [json.loads((d / "trials" / name / "summary.json").read_text()) for d in (a, b)]
        for summary in summaries:
            summary.pop("run_dir")
        assert summaries[0] == summaries[1]


def test_running_it_again_resumes_and_reruns_only_what_did_not_finish(tmp_path):
    runs = tmp_path / "runs"
    result, first = sweep(*GRID, *SMALL, runs=runs)
    assert result.exit_code == 0, result.output
    path = Path(first["run_dir"])
    trials = sorted((path / "trials").iterdir())
    removed, unfinished = trials[0], trials[3]
    before = {t.name: (t / "metrics.csv").read_bytes() for t in (removed, unfinished)}
    untouched = (trials[1] / "summary.json").stat().st_mtime_ns
    import shutil

    shutil.rmtree(removed)
    (unfinished / "summary.json").unlink()  # as if killed while writing it
    (path / "trials" / ".0_method=he_depth=2.tmp").mkdir()  # a killed run's staging dir

    result, again = sweep(*GRID, *SMALL, runs=runs)
    assert result.exit_code == 0, result.output
    assert again["run_dir"] == str(path) and len(sweep_dirs(runs)) == 1
    assert (again["ran"], again["resumed"]) == (2, 2)
    assert sorted(p.name for p in (path / "trials").iterdir()) == [t.name for t in trials]
    for trial in (removed, unfinished):
        assert (trial / "metrics.csv").read_bytes() == before[trial.name]
        assert (trial / "summary.json").exists()
    assert (trials[1] / "summary.json").stat().st_mtime_ns == untouched
    assert json.loads((path / "meta.json").read_text())["resumed"] == 2

    # nothing left to do: every trial is skipped
    result, done = sweep(*GRID, *SMALL, runs=runs)
    assert (done["ran"], done["resumed"]) == (0, 4)
    # another grid is another sweep; --fresh starts over on purpose
    result, other = sweep(
        "--grid", "init.method=he,xavier", "--grid", "model.depth=2", *SMALL, runs=runs
    )
    assert other["run_dir"] != str(path) and other["ran"] == 2
    result, fresh = sweep(*GRID, *SMALL, "--fresh", runs=runs)
    assert fresh["run_dir"] not in (str(path), other["run_dir"]) and fresh["ran"] == 4
    assert len(sweep_dirs(runs)) == 3


def test_the_order_of_the_axes_and_the_name_tell_sweeps_apart(tmp_path):
    runs = tmp_path / "runs"
    result, first = sweep(*GRID, *SMALL, runs=runs)
    swapped = ["--grid", "model.depth=2,4", "--grid", "init.method=he,xavier"]
    result, other = sweep(*swapped, *SMALL, runs=runs)
    # other trial directory names, so another sweep, not a mix of both in one
    assert other["run_dir"] != first["run_dir"] and other["ran"] == 4
    assert len(list((Path(first["run_dir"]) / "trials").iterdir())) == 4
    # a name that starts like another's is still another sweep
    result, named = sweep(*GRID, *SMALL, "--set", "name=run", runs=runs)
    result, longer = sweep(*GRID, *SMALL, "--set", "name=run-2", runs=runs)
    assert named["ran"] == longer["ran"] == 4 and named["run_dir"] != longer["run_dir"]


def test_the_command_line_replaces_a_file_axis_in_its_place(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("grid:\n  init.method: [he, xavier]\n  model.depth: [2, 4]\n")
    runs = tmp_path / "runs"
    result, first = sweep(str(path), *SMALL, runs=runs)
    assert result.exit_code == 0, result.output
    result, again = sweep(str(path), "--grid", "init.method=he,xavier", *SMALL, runs=runs)
    assert again["run_dir"] == first["run_dir"] and (again["ran"], again["resumed"]) == (0, 4)
    assert list(again["grid"]) == ["init.method", "model.depth"]


def test_a_sweep_yaml_resumes_its_own_sweep(tmp_path):
    runs = tmp_path / "runs"
    result, first = sweep(*GRID, *SMALL, runs=runs)
    path = Path(first["run_dir"])
    result, again = sweep(str(path / "sweep.yaml"), runs=runs)
    assert result.exit_code == 0, result.output
    assert again["run_dir"] == str(path) and (again["ran"], again["resumed"]) == (0, 4)


def fail_at_depth_4(monkeypatch, message: str = "out of luck\nat depth 4"):
    """Every trial at model.depth 4 raises; the real run_train, to put back."""
    import weightinit_cli.experiments as experiments

    run_train = experiments.run_train

    def fails_at_depth_4(cfg, *args, **kwargs):
        if cfg.model.depth == 4:
            raise RuntimeError(message)
        return run_train(cfg, *args, **kwargs)

    monkeypatch.setattr(experiments, "run_train", fails_at_depth_4)
    return run_train


def test_a_failed_trial_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    import weightinit_cli.experiments as experiments

    run_train = fail_at_depth_4(monkeypatch)
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["sweep", *GRID, *SMALL, "--jobs", "2", "--runs-dir", str(runs)])
    assert result.exit_code == 1
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("Error: 2 of 4 trials failed (first: 1_method=he_depth=4: ")
    assert "RuntimeError: out of luck at depth 4" in error and "again" in error
    (path,) = sweep_dirs(runs)
    rows = {r["trial"]: r for r in read_csv(path / "results.csv")}
    assert rows["1_method=he_depth=4"]["status"] == "failed"
    assert rows["1_method=he_depth=4"]["error"] == "RuntimeError: out of luck at depth 4"
    assert rows["0_method=he_depth=2"]["status"] in ("completed", "stuck")
    failed = path / "trials" / "1_method=he_depth=4"
    assert {p.name for p in failed.iterdir()} == {"config.yaml", "meta.json"}
    meta = json.loads((failed / "meta.json").read_text())
    assert meta["status"] == "failed" and meta["error"].startswith("RuntimeError")
    assert json.loads((path / "meta.json").read_text())["status"] == "incomplete"

    monkeypatch.setattr(experiments, "run_train", run_train)
    result, again = sweep(*GRID, *SMALL, runs=runs)
    assert result.exit_code == 0, result.output
    assert (again["ran"], again["resumed"], again["status"]) == (2, 2, "completed")


def test_a_killed_worker_fails_its_trial_and_the_others_finish(tmp_path, monkeypatch):
    """A worker killed mid-trial (as the kernel's out-of-memory killer would): that trial
    is failed, the other worker finishes the rest, and the results are written."""
    import weightinit_cli.experiments as experiments

    run_train = experiments.run_train

    def killed_at_depth_4(cfg, *args, **kwargs):
        if cfg.model.depth == 4 and cfg.init.method == "he_normal":
            os.kill(os.getpid(), signal.SIGKILL)
        return run_train(cfg, *args, **kwargs)

    monkeypatch.setattr(experiments, "run_train", killed_at_depth_4)
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["sweep", *GRID, *SMALL, "--jobs", "2", "--runs-dir", str(runs)])
    assert result.exit_code == 1, result.output
    assert "1 of 4 trials failed (first: 1_method=he_depth=4: its worker process died" in (
        result.output
    )
    assert "run the same command again to resume it" in " ".join(result.output.split())
    (path,) = sweep_dirs(runs)
    statuses = {r["trial"]: r["status"] for r in read_csv(path / "results.csv")}
    assert statuses.pop("1_method=he_depth=4") == "failed"
    assert set(statuses.values()) <= {"completed", "stuck"} and len(statuses) == 3


def test_a_diverged_trial_is_a_result_and_is_not_rerun(tmp_path):
    runs = tmp_path / "runs"
    result, data = sweep("--grid", "train.lr=0.02,1000", *SMALL, runs=runs)
    assert result.exit_code == 0, result.output
    diverged = next(t for t in data["trials"] if t["train.lr"] == 1000)
    assert diverged["status"] == "diverged" and diverged["diverged_at"] is not None
    assert data["counts"]["diverged"] == 1
    # its last finite loss is kept in its row, but is no result: no mean, only a count
    group = next(g for g in data["groups"] if g["point"] == {"train.lr": 1000})
    assert group["final_loss"] == {"mean": None, "std": None, "n": 0}
    assert group["statuses"] == {"diverged": 1}
    result, again = sweep("--grid", "train.lr=0.02,1000", *SMALL, runs=runs)
    assert (again["ran"], again["resumed"]) == (0, 2)


def test_a_trial_reruns_bit_for_bit_beside_the_sweep(tmp_path):
    runs = tmp_path / "runs"
    result, data = sweep("--grid", "init.method=he,orthogonal", *SMALL, runs=runs)
    trial = Path(data["run_dir"]) / "trials" / "1_method=orthogonal"
    result = runner.invoke(app, ["rerun", str(trial), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["identical"], report
    assert Path(report["rerun"]).parent == runs  # not among the sweep's trials
    whole = runner.invoke(app, ["rerun", data["run_dir"]])
    assert whole.exit_code == 2 and "is a sweep: `winit sweep" in whole.output


def test_full_trials_write_what_winit_train_writes_and_rerun_too(tmp_path):
    runs = tmp_path / "runs"
    _, lean = sweep("--grid", "init.method=he,orthogonal", *SMALL, runs=runs)
    _, full = sweep(
        "--grid", "init.method=he,orthogonal", *SMALL, "--full-trials", "--fresh", runs=runs
    )
    lean_trial = Path(lean["run_dir"]) / "trials" / "1_method=orthogonal"
    full_trial = Path(full["run_dir"]) / "trials" / "1_method=orthogonal"
    assert {p.name for p in full_trial.iterdir()} == {*TRIAL_FILES, "loss.png", "spectra.png"}
    assert {r["when"] for r in read_csv(lean_trial / "layers.csv")} == {"init"}
    assert {r["when"] for r in read_csv(full_trial / "layers.csv")} == {"init", "final"}
    # the same training either way: only the extra files differ
    assert (lean_trial / "metrics.csv").read_text() == (full_trial / "metrics.csv").read_text()
    result = runner.invoke(app, ["rerun", str(full_trial), "--json"])
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert result.exit_code == 0 and report["identical"], report
    # a sweep directory's trials are all one way: resuming the other way is refused
    again = runner.invoke(app, ["sweep", "--grid", "init.method=he,orthogonal", *SMALL,
                                "--runs-dir", str(runs)])  # fmt: skip
    assert again.exit_code == 2 and "ran its trials with --full-trials" in again.output


def test_dry_run_lists_the_trials_and_writes_nothing(tmp_path):
    runs = tmp_path / "runs"
    result, plan = sweep(*GRID, "--seeds", "3", "--dry-run", runs=runs)
    assert result.exit_code == 0, result.output
    assert len(plan["trials"]) == 12 and plan["resumes"] is None
    assert plan["trials"][-1] == {
        "trial": "11_method=xavier_depth=4_seed=2",
        "point": "init.method=xavier model.depth=4 seed=2",
    }
    assert not runs.exists()
    text = runner.invoke(app, ["sweep", *GRID, "--dry-run", "--runs-dir", str(runs)])
    assert "4 trials; a new sweep directory" in text.stdout


def test_a_sweep_being_run_is_not_run_twice(tmp_path):
    runs = tmp_path / "runs"
    result, data = sweep("--grid", "model.depth=2,3", *SMALL, runs=runs)
    path = Path(data["run_dir"])
    with open(path / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = runner.invoke(
            app, ["sweep", "--grid", "model.depth=2,3", *SMALL, "--runs-dir", str(runs)]
        )
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {path} is being run by another winit process")


def test_ctrl_c_keeps_the_finished_trials_and_says_interrupted(tmp_path):
    """SIGINT while long trials run: exit 130, the finished trials stay, the rest are
    left for the next run, and the sweep's files say so."""
    runs = tmp_path / "runs"
    # three workers: the two long trials (scheduled first) and the short ones beside them
    args = [
        "--grid", "train.steps=30,1000000", "--grid", "model.depth=2,3", "--set",
        "model.width=8", "--set", "data.samples=128", "--jobs", "3", "--runs-dir", str(runs),
    ]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "weightinit_cli", "sweep", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "100"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = list(runs.glob("sweep-*/trials/*/summary.json"))
        if len(done) == 2:
            break
        time.sleep(0.2)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    (path,) = sweep_dirs(runs)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["status"] == "interrupted" and meta["counts"]["pending"] == 2
    assert sorted(p.name for p in (path / "trials").iterdir()) == [
        "0_steps=30_depth=2",
        "1_steps=30_depth=3",
    ]
    statuses = [r["status"] for r in read_csv(path / "results.csv")]
    assert statuses.count("pending") == 2
    plan = runner.invoke(app, ["sweep", *args, "--dry-run"])
    assert "2 of them finished there" in " ".join(plan.stdout.split())  # however it wraps


# ------------------------------------------------------------------ Ray


def test_without_ray_the_ray_backend_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    runs = tmp_path / "runs"
    result = runner.invoke(
        app, ["sweep", "--grid", "model.depth=2,3", "--backend", "ray", "--runs-dir", str(runs)]
    )
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: --backend ray needs Ray, an optional extra: pip install 'weightinit-cli[ray]' "
        "(in a checkout: pip install -e '.[ray]'), or use --backend local"
    )
    assert not runs.exists()


def _ray_or_skip() -> None:
    if importlib.util.find_spec("ray") is None:
        if os.environ.get("WINIT_REQUIRE_RAY"):
            pytest.fail("WINIT_REQUIRE_RAY is set but Ray is not installed")
        pytest.skip("Ray is not installed (pip install 'weightinit-cli[ray]')")


def test_the_ray_backend_on_a_local_ray_gives_the_local_numbers(tmp_path):
    """A real Ray instance started on this machine: the same trials as local workers."""
    _ray_or_skip()
    result, ray_run = sweep(*GRID, *SMALL, "--backend", "ray", "--jobs", "2", runs=tmp_path / "r")
    assert result.exit_code == 0, result.output
    meta = json.loads((Path(ray_run["run_dir"]) / "meta.json").read_text())
    assert meta["backend"] == "ray" and meta["status"] == "completed"
    result, local = sweep(*GRID, *SMALL, "--jobs", "2", runs=tmp_path / "l")
    assert_same_trials(Path(ray_run["run_dir"]), Path(local["run_dir"]))

    import ray

    assert not ray.is_initialized()  # the instance winit started is stopped again


def test_a_ray_the_caller_connected_is_used_and_left_running(tmp_path):
    """In Python, after ray.init(): the sweep runs on that Ray and leaves it connected."""
    _ray_or_skip()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result, ray_run = sweep(*GRID, *SMALL, "--backend", "ray", runs=tmp_path / "r")
        assert result.exit_code == 0, result.output
        assert ray.is_initialized()
    finally:
        ray.shutdown()
    result, local = sweep(*GRID, *SMALL, "--jobs", "1", runs=tmp_path / "l")
    assert_same_trials(Path(ray_run["run_dir"]), Path(local["run_dir"]))


# ------------------------------------------------------------------ results


def test_groups_pool_seeds_and_leave_diverged_runs_out_of_the_means():
    from weightinit_cli.sweep.heatmap import sweep_heatmap
    from weightinit_cli.sweep.results import TrialResult, summarize

    spec = load_sweep(
        None, ["init.method=he,xavier", "model.depth=2,3", "model.width=4,8"], seeds=2
    )
    finished = {}
    for t in spec.trials:
        xavier = t.config.init.method == "xavier_uniform"
        diverged = xavier and (t.config.seed == 1 or t.config.model.width == 8)
        # a diverged run's summary keeps its last finite loss: huge, and not a result
        loss = 1e20 if diverged else t.config.model.depth + 0.5 * t.config.seed
        summary = {"final_loss": loss, "final_accuracy": 0.5, "steps_to_target": None}
        finished[t.index] = TrialResult(t, "diverged" if diverged else "completed", summary)
    result = summarize(spec, "nowhere", "completed", finished, resumed=0)
    assert len(result.groups) == 8 and result.counts["diverged"] == 6
    groups = {tuple(g.point.values()): g for g in result.groups}
    he = groups[("he", 3, 4)]
    assert he.statuses == {"completed": 2}
    assert he.metrics["final_loss"].mean == pytest.approx(3.25)
    assert he.metrics["final_loss"].std == pytest.approx(statistics.stdev([3.0, 3.5]))
    xavier = groups[("xavier", 2, 4)]
    assert xavier.statuses == {"completed": 1, "diverged": 1}
    assert (xavier.metrics["final_loss"].mean, xavier.metrics["final_loss"].n) == (2.0, 1)
    assert xavier.metrics["final_loss"].std is None  # one value has no spread
    assert groups[("xavier", 2, 8)].metrics["final_loss"].mean is None

    figure = sweep_heatmap(result, "final_loss")
    panels = [ax for ax in figure.axes if ax.get_visible() and ax.images]
    assert [ax.get_title() for ax in panels] == ["width=4", "width=8"]  # a panel per width
    texts = [t.get_text() for t in panels[1].texts]
    assert texts == ["2.25", "3.25", "diverged", "diverged"]  # he: depth 2, 3; xavier: none
    assert "(1 not)" in " ".join(t.get_text() for t in panels[0].texts)


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="model.depthinit.methodseed=,[]0123456789-e: '\"", max_size=40)
    | st.text(max_size=30)
)
def test_any_grid_option_is_a_grid_or_a_winit_error(text):
    """Whatever follows --grid, the answer is a grid or a WinitError, never a crash."""
    try:
        spec = load_sweep(None, [text])
    except WinitError:
        return
    assert spec.trials and all(t.config.train.steps >= 1 for t in spec.trials)


def test_a_big_grid_shows_its_first_rows_and_keeps_all_in_the_files():
    from rich.console import Console

    from weightinit_cli.sweep.results import TrialResult, summarize
    from weightinit_cli.sweep.view import MAX_ROWS, sweep_table

    spec = load_sweep(None, ["model.depth=" + ",".join(map(str, range(1, 61)))])
    finished = {
        t.index: TrialResult(t, "completed", {"final_loss": 1.0 / t.config.model.depth})
        for t in spec.trials
    }
    result = summarize(spec, "nowhere", "completed", finished, resumed=0)
    console = Console(width=100, record=True)
    console.print(sweep_table(result))
    text = console.export_text()
    assert f"the first {MAX_ROWS} of 60 grid points; all are in summary.csv" in text
    firsts = [line.split()[0] for line in text.splitlines() if line.strip()]
    assert "40" in firsts and "41" not in firsts
    assert len([g.row() for g in result.groups]) == 60


def test_a_sweep_over_the_residual_schemes_trains_them_and_he_diverges(tmp_path):
    """Issue 15: the schemes through sweep, on a residual stack deep enough that He blows up."""
    runs = tmp_path / "runs"
    result, data = sweep(
        "--grid", "init.method=he_normal,fixup,skipinit", "--set", "model.block=residual",
        "--set", "model.depth=24", "--set", "model.width=16", "--steps", "30",
        "--set", "data.samples=256", "--set", "train.batch_size=64", "--jobs", "1", runs=runs,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (path,) = sweep_dirs(runs)
    status = {row["init.method"]: row["status"] for row in read_csv(path / "results.csv")}
    assert status["he_normal"] == "diverged"
    assert status["fixup"] in ("completed", "stuck") and status["skipinit"] != "diverged"
