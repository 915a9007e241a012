"""`winit reproduce`: each classic result, fast versions by default, full ones marked slow."""

import json
import math

import pytest
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.reproduce import REPRODUCTIONS

runner = CliRunner()


def run_reproduction(name, fast=True):
    repro = REPRODUCTIONS[name]
    return repro.run(repro.config(), fast)


def rows_by(finding, *keys):
    return {tuple(row[k] for k in keys): row for row in finding.rows}


def test_glorot2010():
    finding = run_reproduction("glorot2010")
    standard, normalized = finding.rows
    assert finding.agree
    assert standard["activation std per layer"] < 0.7
    grad = "backprop gradient std per layer (towards the input)"
    assert standard[grad] < normalized[grad]
    assert all(row["max theory error"] < 0.05 for row in finding.rows)
    assert all(row["max gradient theory error"] < 0.1 for row in finding.rows)


def test_he2015():
    finding = run_reproduction("he2015")
    rows = rows_by(finding, "net", "init")
    chance = math.log(3)
    assert rows[("deep (30 layers)", "xavier_normal")]["final loss"] > chance - 0.05
    assert rows[("deep (30 layers)", "he_normal")]["final loss"] < chance - 0.4
    shallow = {
        init: rows[("shallow (6 layers)", init)]["steps to target"]
        for init in ("xavier_normal", "he_normal")
    }
    assert None not in shallow.values() and shallow["he_normal"] < shallow["xavier_normal"]
    assert finding.agree and set(finding.charts) == {"he2015_deep.png", "he2015_shallow.png"}


def test_saxe2013():
    finding = run_reproduction("saxe2013")
    orth = [r["steps to target"] for r in finding.rows if r["init"] == "orthogonal"]
    gauss = [r["steps to target"] for r in finding.rows if r["init"] == "lecun_normal"]
    assert None not in orth and orth[-1] <= 1.25 * orth[0]
    assert gauss[-1] is None or gauss[-1] >= 2 * gauss[0]
    assert finding.agree


def test_hanin2018():
    finding = run_reproduction("hanin2018")
    spreads = {(r["depth"], r["width"]): r["Var log |x_L|²"] for r in finding.rows}
    assert spreads[(10, 128)] < spreads[(10, 32)] < spreads[(40, 32)] < spreads[(40, 16)]
    # equal Σ1/n, different depth: the same spread within sampling error
    assert spreads[(10, 32)] == pytest.approx(spreads[(40, 128)], rel=0.3)
    assert finding.agree


def test_zero_symmetry():
    finding = run_reproduction("zero_symmetry")
    rows = rows_by(finding, "activation", "layer")
    assert all(
        rows[("relu", layer)]["weights still zero"] for layer in ("dense1", "dense4", "head")
    )
    assert rows[("sigmoid", "dense1")]["grad zero at step 0"]
    assert not rows[("sigmoid", "head")]["grad zero at step 0"]
    assert rows[("sigmoid", "dense2")]["rows identical after training"]
    assert not rows[("sigmoid", "dense2")]["weights still zero"]
    assert finding.agree


def test_schoenholz2017():
    finding = run_reproduction("schoenholz2017")
    phases = {row["phase"]: row for row in finding.rows}
    assert phases["critical"]["σ_w²"] == pytest.approx(1.76, abs=0.01)
    assert phases["critical"]["trained"] and phases["critical"]["final loss"] < math.log(3) - 0.4
    assert not phases["ordered"]["trained"] and not phases["chaotic"]["trained"]
    assert finding.agree


def test_mishkin2016():
    finding = run_reproduction("mishkin2016")
    assert len(finding.rows) == 31
    assert all(abs(row["output variance"] - 1) <= 0.1 for row in finding.rows)
    assert finding.agree and "orthogonal pre-init alone ends at 1.09" in finding.measured


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REPRODUCTIONS))
def test_full_versions_agree(name):
    assert run_reproduction(name, fast=False).agree


def test_cli_list_and_unknown(runs):
    listing = runner.invoke(app, ["reproduce", "--list", "--json"])
    assert [r["name"] for r in json.loads(listing.output)] == list(REPRODUCTIONS)
    result = runner.invoke(app, ["reproduce", "glorot"])
    assert result.exit_code == 2 and "did you mean glorot2010" in result.output


def test_cli_writes_a_run_directory_with_plots(runs):
    result = runner.invoke(app, ["reproduce", "saxe2013", "--json"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["agree"] and data["name"] == "saxe2013"
    run = runs / data["run_dir"].split("/")[-1]
    assert {p.name for p in run.iterdir()} == {
        "config.yaml",
        "meta.json",
        "finding.json",
        "saxe2013.png",
    }
    assert json.loads((run / "meta.json").read_text())["experiment"]["name"] == "saxe2013"
