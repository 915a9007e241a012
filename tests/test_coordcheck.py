"""`winit coordcheck`: the coordinates against a hand-written loop, mup's verdict rule,
SP with Adam flagged, and the command end to end (exit codes, --json, the files)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.coordcheck import (
    coordcheck,
    default_coord_jobs,
    parse_widths,
    ratio,
    record,
    slope,
    stable,
    width_configs,
)
from weightinit_cli.experiments import first_batch, initialized, load_dataset
from weightinit_cli.loading import load_config
from weightinit_cli.parallel import one_torch_thread

runner = CliRunner()
MLP = [
    "model.depth=2",
    "model.input_shape=[16]",
    "model.num_classes=10",
    "data.name=gaussian",
    "data.samples=256",
    "train.batch_size=64",
]
ADAM = ["train.optimizer=adam", "train.lr=0.01"]


def sets(*fields: str) -> list[str]:
    return [arg for field in fields for arg in ("--set", field)]


def invoke(*args: str):
    return runner.invoke(app, ["coordcheck", *args], env={"COLUMNS": "120"})


def test_record_equals_a_hand_written_loop() -> None:
    """mean |x| of every module at each step, from the weights by hand (x W^T + b, relu),
    with torch's own Adam stepping the same parameters."""
    cfg = load_config(None, [*MLP, *ADAM, "model.width=32"], "coordcheck")
    data = load_dataset(cfg)
    got = record(cfg, data, "cpu", steps=3)
    model, _ = initialized(cfg, cfg.init.spec, data)
    params = [p for _, p in sorted(model.named_parameters())]  # dense1, dense2, head: b, w
    optimizer = torch.optim.Adam(params, lr=0.01)
    x, y = first_batch(data, cfg.train.batch_size, "cpu")
    w = dict(model.named_parameters())
    expected: dict[str, list[float]] = {n: [] for n in got}
    for _ in range(3):
        h1 = x @ w["dense1.weight"].T + w["dense1.bias"]
        a1 = torch.relu(h1)
        h2 = a1 @ w["dense2.weight"].T + w["dense2.bias"]
        a2 = torch.relu(h2)
        out = a2 @ w["head.weight"].T + w["head.bias"]
        for name, value in zip(got, (h1, a1, h2, a2, out), strict=True):
            expected[name].append(value.abs().mean().item())
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(out, y).backward()
        optimizer.step()
    assert list(got) == ["dense1", "relu1", "dense2", "relu2", "head"]
    for name in got:
        assert got[name] == pytest.approx(expected[name], rel=1e-5), name


def test_slope_and_ratio_rule() -> None:
    assert slope([64, 128, 256], [1.0, math.sqrt(2), 2.0]) == pytest.approx(0.5)
    assert slope([64, 128], [1.0, 0.0]) is None
    assert ratio(2.0, 2.4) == pytest.approx(1.2) and stable(ratio(2.0, 2.4))
    assert not stable(ratio(2.0, 2.5)) and not stable(ratio(2.5, 2.0))
    assert ratio(0.0, 0.0) == 1.0 and stable(ratio(0.0, 0.0))  # a zero readout at t=1
    assert ratio(0.0, 1.0) is None and not stable(None)


def test_sp_with_adam_flags_the_modules_that_grow_with_width() -> None:
    cfg = load_config(None, [*MLP, *ADAM], "coordcheck")
    result = coordcheck(cfg, load_dataset(cfg), "cpu", [128, 512, 2048], steps=3, seeds=2)
    by_name = {m.name: m for m in result.modules}
    # the input layer's update sums over the 16 inputs: no width in it
    assert by_name["dense1"].passed and by_name["relu1"].passed
    # a hidden layer's Adam update sums width terms of size lr: it grows about ∝ width
    for name in ("dense2", "head"):
        assert not by_name[name].passed
        assert by_name[name].ratios[-1] > 2 and by_name[name].slopes[-1] > 0.4
    assert {"dense2", "head"} <= set(result.failed) and not result.passed
    # averaged over the seeds: the mean of the two seeds' records
    assert result.seeds == [0, 1]
    assert len(by_name["dense2"].sizes) == 3 and len(by_name["dense2"].sizes[0]) == 3


def test_jobs_change_neither_the_numbers_nor_their_order() -> None:
    """Networks handed out widest first to 2 workers or run here: the same floats, each
    width's the mean of its own seeds' records, modules in plan order."""
    cfg = load_config(None, [*MLP, *ADAM], "coordcheck")
    data = load_dataset(cfg)
    told: dict[int, list[tuple[int, int]]] = {1: [], 2: []}

    def check(jobs: int):
        tell = lambda width, seed: told[jobs].append((width, seed))  # noqa: E731
        return coordcheck(cfg, data, "cpu", [32, 64, 128], 3, 3, jobs=jobs, on_network=tell)

    results = {jobs: check(jobs) for jobs in (1, 2)}
    here, forked = ([m.to_dict() for m in results[j].modules] for j in (1, 2))
    assert here == forked
    assert [m["name"] for m in here] == ["dense1", "relu1", "dense2", "relu2", "head"]
    assert results[1].failed == results[2].failed
    # each size: the seeds' records, one network at a time on one thread, summed in order
    configs = width_configs(cfg, [32, 64, 128], 3)
    with one_torch_thread():
        records = {w: [record(c, data, "cpu", 3) for c in configs[w]] for w in configs}
    for module in here:
        for t in range(3):
            expected = [sum((r[module["name"]][t] for r in records[w]), 0.0) / 3 for w in configs]
            assert module["sizes"][t] == expected, module["name"]
    # told as each finishes: here widest first, in the workers in any order
    widest_first = [(w, s) for w in (128, 64, 32) for s in (0, 1, 2)]
    assert told[1] == widest_first and sorted(told[2]) == sorted(widest_first)


@pytest.mark.parametrize(("cores", "networks", "jobs"), [(1, 18, 1), (2, 18, 2), (16, 3, 3)])
def test_default_jobs_one_worker_per_core(monkeypatch, cores: int, networks: int, jobs: int):
    monkeypatch.setattr("weightinit_cli.parallel.usable_cores", lambda: cores)
    assert default_coord_jobs(networks) == jobs


def test_the_command_runs_its_networks_on_jobs_workers(runs) -> None:
    args = ["--widths", "32,64", "--steps", "2", "--seeds", "2", "--json", *sets(*MLP, *ADAM)]
    outs = []
    for jobs in ("1", "2"):
        res = invoke("-j", jobs, *args)
        assert res.exit_code in (0, 1), res.output
        outs.append(json.loads(res.stdout))
    assert outs[0]["modules"] == outs[1]["modules"]
    res = invoke("--jobs", "0", *args)
    assert res.exit_code == 2 and "--jobs" in res.stderr


def test_the_command_fails_under_sp_with_adam_and_writes_its_run(runs) -> None:
    res = invoke("--widths", "64,128,512", "--steps", "3", "--seeds", "2", *sets(*MLP, *ADAM))
    assert res.exit_code == 1, res.output
    assert "FAIL: " in res.output and "t=3" in res.output
    (run,) = runs.iterdir()
    assert run.name.endswith("coordcheck-default") and str(run) in res.output.replace("\n", "")
    summary = json.loads((run / "summary.json").read_text())
    assert "dense2" in summary["failed"] and "head" in summary["failed"]
    assert summary["widths"] == [64, 128, 512] and summary["passed"] is False
    assert (run / "coordcheck.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (run / "coords.csv").read_text().splitlines()
    assert lines[0] == "module,kind,width,step,l1"
    assert len(lines) == 1 + 5 * 3 * 3  # modules x widths x steps
    assert json.loads((run / "meta.json").read_text())["status"] == "completed"


def test_json_keys_and_a_pass_exits_0(runs) -> None:
    """With a tiny SGD step nothing moves from init, where He's sizes do not depend on
    width: every module passes."""
    res = invoke(
        "--widths", "256,512", "--steps", "2", "--seeds", "3", "--json",
        *sets(*MLP, "model.num_classes=64", "train.lr=1e-7", "init.readout=default"),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {
        "name", "parametrization", "method", "optimizer", "lr", "statistic", "widths",
        "steps", "seeds", "ratio_bound", "passed", "failed", "seconds", "modules", "run_dir",
    }  # fmt: skip
    assert out["passed"] is True and out["failed"] == [] and out["parametrization"] == "sp"
    assert set(out["modules"][0]) == {
        "name", "kind", "sizes", "slopes", "ratios", "stable", "passed"
    }  # fmt: skip
    assert out["ratio_bound"] == 1.2 and out["seeds"] == [0, 1, 2]


@pytest.mark.parametrize(
    ("widths", "message"),
    [
        ("64,abc", "--widths: each width is a positive integer, e.g. 64,128,256; got 'abc'"),
        ("0,64", "--widths: each width is a positive integer, e.g. 64,128,256; got '0'"),
        ("64,2.5", "--widths: each width is a positive integer, e.g. 64,128,256; got '2.5'"),
        ("64", "--widths: a coordinate check compares at least two widths"),
        ("64,64", "--widths: a width given twice: '64,64'"),
        (",".join(str(2**i) for i in range(17)), "--widths: at most 16 widths; got 17"),
        ("64,2000000", "--widths: 2000000 is over the limit of 1,000,000 units"),
    ],
)
def test_bad_widths_are_one_error_line(runs, widths: str, message: str) -> None:
    res = invoke("--widths", widths)
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [f"Error: {message}"]
    assert not runs.exists()


def test_a_width_too_big_to_build_is_refused_before_any_work(runs) -> None:
    res = invoke("--widths", "64,1000000", *sets(*MLP))
    assert res.exit_code == 2
    assert res.stderr.startswith("Error: ") and len(res.stderr.strip().splitlines()) == 1
    assert not runs.exists()


def test_parse_widths_sorts_and_defaults() -> None:
    assert parse_widths("256, 64,128", 10**6) == [64, 128, 256]
    assert parse_widths(None, 10**6) == [64, 128, 256, 512, 1024, 2048]
