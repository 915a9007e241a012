"""`winit transfer`: the sweep it hands the sweep runner, the optimum per width from
hand-made results, and the command end to end (files, --json, resume, bad input)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.errors import WinitError
from weightinit_cli.transfer import parse_lrs, transfer_sweep, width_curves

runner = CliRunner()
SMALL = ["--widths", "8,16", "--lrs", "2^-6..2^-4", "-j", "1", "--steps", "4"]
TINY_DATA = ["--set", "data.samples=64", "--set", "train.batch_size=32"]


def invoke(*args: str):
    return runner.invoke(app, ["transfer", *args], env={"COLUMNS": "100"})


def test_parse_lrs_range_and_list() -> None:
    assert parse_lrs("2^-3..2^-1") == [0.125, 0.25, 0.5]
    assert parse_lrs("0.1,2^-8,0.001") == [0.001, 2.0**-8, 0.1]
    assert parse_lrs(None) == [2.0**k for k in range(-12, -1)]


@pytest.mark.parametrize(
    "text", ["2^-3..2^-3", "2^-1..2^-3", "0.1", "0.1,0.1", "a,0.1", "-1,0.1", "2^x..2^-1", "inf,1"]
)
def test_parse_lrs_refuses(text: str) -> None:
    with pytest.raises(WinitError, match="^--lrs: "):
        parse_lrs(text)


def test_the_grid_the_sweep_runs() -> None:
    """width x lr x seed, first axis slowest, each trial's config set to its point; under
    µP the narrowest width becomes model.base_width (else every multiplier would be 1)."""
    sweep = transfer_sweep(None, [8, 16], [0.01, 0.1], ["init.parametrization=mup"], seeds=2)
    assert sweep.name == "transfer"
    assert [a.key for a in sweep.axes] == ["model.width", "train.lr", "seed"]
    assert len(sweep.trials) == 8
    got = [(t.config.model.width, t.config.train.lr, t.config.seed) for t in sweep.trials]
    expected = [(w, lr, s) for w in (8, 16) for lr in (0.01, 0.1) for s in (0, 1)]
    assert [(w, pytest.approx(lr), s) for w, lr, s in got] == expected
    assert {t.config.model.base_width for t in sweep.trials} == {8}
    assert {t.config.train.optimizer for t in sweep.trials} == {"adam"}
    sp = transfer_sweep(None, [8, 16], [0.01, 0.1])
    assert {t.config.model.base_width for t in sp.trials} == {None}
    assert sp.trials[0].config.init.parametrization == "sp"


def test_optimum_from_hand_made_results() -> None:
    """Mean over seeds, argmin per width, a diverged seed makes its lr inf, a failed one
    is missing, and the shift is counted in grid steps."""
    lrs = [0.001, 0.01, 0.1, 1.0]
    records = [
        # width 8: best at 0.1 (mean of 0.2 and 0.4 = 0.3 beats 0.5)
        (8, 0.001, "completed", 1.0), (8, 0.001, "completed", 1.2),
        (8, 0.01, "completed", 0.5), (8, 0.01, "completed", 0.5),
        (8, 0.1, "completed", 0.2), (8, 0.1, "stuck", 0.4),
        (8, 1.0, "diverged", None), (8, 1.0, "completed", 0.01),  # a diverged seed: inf
        # width 32: best at 0.001; 0.01 only failed
        (32, 0.001, "completed", 0.1), (32, 0.001, "completed", 0.3),
        (32, 0.01, "failed", None), (32, 0.01, "failed", None),
        (32, 0.1, "completed", 0.9), (32, 0.1, "completed", 0.9),
        (32, 1.0, "diverged", None), (32, 1.0, "diverged", None),
    ]  # fmt: skip
    narrow, wide = width_curves(records, [8, 32], lrs)
    assert narrow.best == 2 and math.isclose(narrow.cells[2].loss, 0.3)
    assert math.isclose(narrow.cells[0].loss, 1.1)
    assert math.isinf(narrow.cells[3].loss) and narrow.cells[3].diverged == 1
    assert wide.best == 0 and math.isclose(wide.cells[0].loss, 0.2)
    assert wide.cells[1].loss is None and wide.cells[1].missing == 2
    assert wide.cells[3].diverged == 2
    from weightinit_cli.transfer import TransferResult

    result = TransferResult("t", "sp", "adam", 4, 2, lrs, [narrow, wide])
    assert (result.shift, result.drift, result.diverged) == (2, -2, 3)
    cells = result.to_dict()["curves"][0]["cells"]
    assert cells[3]["loss"] is None and cells[3]["diverged"] == 1  # inf is not JSON


def test_a_tie_goes_to_the_smaller_lr_and_all_diverged_has_no_optimum() -> None:
    records = [(8, 0.1, "completed", 0.5), (8, 0.2, "completed", 0.5)]
    records += [(16, lr, "diverged", None) for lr in (0.1, 0.2)]
    tied, none = width_curves(records, [8, 16], [0.1, 0.2])
    assert tied.best == 0 and none.best is None


def test_end_to_end_then_resumed(runs) -> None:
    first = invoke(*SMALL, *TINY_DATA, "--json")
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert data["widths"] == [8, 16] and data["lrs"] == [2.0**-6, 2.0**-5, 2.0**-4]
    assert [len(c["cells"]) for c in data["curves"]] == [3, 3]
    for curve in data["curves"]:
        losses = [c["loss"] for c in curve["cells"]]
        assert curve["optimal_loss"] == min(losses)
        assert curve["optimal_log2_lr"] == -6 + losses.index(min(losses))
    run_dir = data["run_dir"]
    files = {p.name for p in (runs / run_dir.rsplit("/", 1)[-1]).iterdir()}
    assert {"transfer.png", "transfer.json", "results.csv", "sweep.yaml", "trials"} <= files
    saved = json.loads((runs / run_dir.rsplit("/", 1)[-1] / "transfer.json").read_text())
    assert saved["curves"] == data["curves"]

    again = invoke(*SMALL, *TINY_DATA)  # the same grid: every trial found finished
    assert again.exit_code == 0, again.output
    assert "optimal learning rate per width" in again.stdout
    assert "log2 lr" in again.stdout
    assert len(list(runs.iterdir())) == 1
    meta = json.loads((runs / run_dir.rsplit("/", 1)[-1] / "meta.json").read_text())
    assert (meta["ran"], meta["resumed"]) == (0, 6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--widths", "8"], "Error: --widths: a coordinate check compares at least two widths"),
        (["--widths", "8,x"], "Error: --widths: each width is a positive integer"),
        (["--lrs", "2^-4..2^-6"], "Error: --lrs: '2^-4..2^-6' needs 2 to 64 powers"),
        (["--lrs", "0.1,zero"], "Error: --lrs: each learning rate is a positive number"),
        (["-p", "abc"], "Error: --set init.parametrization=abc: init.parametrization: Input"),
        (["--address", "x"], "Error: --address is the Ray cluster to join; it needs --ray"),
    ],
)
def test_bad_input_is_one_error_line(runs, args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert not runs.exists()


def test_a_sweep_file_is_refused(runs, tmp_path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text("grid:\n  model.depth: [1, 2]\n")
    result = invoke(str(path))
    assert result.exit_code == 2
    assert "grid: winit transfer makes its own grid" in result.stderr


@pytest.mark.slow
def test_sp_optimum_moves_and_mup_stays(runs) -> None:
    """The default setup (widths 64..512, lrs 2^-12..2^-2, Adam, 60 steps): measured here,
    SP's optimum moves 3 grid steps (one per doubling), µP's at most 1."""
    shifts = {}
    for name in ("sp", "mup"):
        result = invoke("-p", name, "--json")
        assert result.exit_code == 0, result.output
        shifts[name] = json.loads(result.stdout)["optimum_shift_steps"]
    assert shifts["sp"] >= 2 and shifts["mup"] <= 1
