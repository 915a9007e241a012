"""compare's methods on several worker processes: the same numbers as one after another."""

import pytest

from weightinit_cli.errors import ShapeError
from weightinit_cli.experiments import load_dataset
from weightinit_cli.experiments import run_compare as compare_specs
from weightinit_cli.loading import load_config
from weightinit_cli.parallel import default_jobs, run_tasks
from weightinit_cli.serialize import compare_json

CONV = [
    "model.type=conv2d",
    "model.input_shape=[1,8,8]",
    "data.name=shapes2d",
    "model.depth=3",
    "model.width=8",
    "train.steps=20",
    "data.samples=256",
]


def run_compare(cfg, methods, **kw):
    specs = [cfg.init.spec_for(method, params) for method, params in methods]
    return compare_specs(cfg, specs, load_dataset(cfg), "cpu", **kw)


DENSE = ["model.depth=4", "train.steps=30"]
METHODS = [("he_normal", {}), ("xavier_uniform", {}), ("orthogonal", {"gain": 1.5})]


@pytest.mark.parametrize("overrides", [CONV, DENSE], ids=["conv2d", "dense"])
def test_parallel_equals_sequential(overrides):
    cfg = load_config(None, overrides)
    logged = {1: [], 3: []}
    results = {
        jobs: run_compare(
            cfg,
            METHODS,
            jobs=jobs,
            on_log=lambda m, p, j=jobs: logged[j].append((m, p.step, p.loss)),
        )
        for jobs in (1, 3)
    }
    assert compare_json(results[1]) == compare_json(results[3])
    points = cfg.train.steps // cfg.train.log_every + 1
    assert sorted(logged[1]) == sorted(logged[3]) and len(logged[1]) == 3 * points


def test_a_stop_request_reaches_every_worker():
    cfg = load_config(None, ["model.depth=3", "train.steps=100000", "train.log_every=5"])
    seen = []

    def on_log(method, point):
        seen.append(point.step)

    result = run_compare(
        cfg, METHODS[:2], jobs=2, on_log=on_log, should_stop=lambda: len(seen) >= 6
    )
    assert [run.train.status for run in result.runs] == ["interrupted", "interrupted"]
    assert all(run.train.steps < 100000 for run in result.runs)


def test_a_user_error_in_a_worker_is_raised_in_the_parent():
    cfg = load_config(None, ["model.depth=2", "train.steps=5"])
    with pytest.raises(ShapeError, match="identity cannot apply to layer 'dense1'"):
        run_compare(cfg, [("he_normal", {}), ("identity", {})], jobs=2)


def test_tasks_come_back_in_order():
    out = run_tasks(lambda i, log, stop: i * i, 5, jobs=3)
    assert out == [0, 1, 4, 9, 16]


def test_default_jobs():
    assert default_jobs(1) == 1
    assert default_jobs(3) in (1, 3)
