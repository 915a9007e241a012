"""`winit reproduce yang2021` (Yang et al. 2021, Tensor Programs V): with Adam on MNIST the
optimal lr of an MLP moves with width under SP and stays put under µP, where wider is
better. The fast version end to end through the CLI; the full one marked slow."""

import json
import math

import pytest
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.reproduce import REPRODUCTIONS
from weightinit_cli.reproduce.yang2021 import LOG2_LRS, WIDTHS, agrees
from weightinit_cli.transfer import TransferResult, width_curves

runner = CliRunner()
LRS = [2.0**k for k in LOG2_LRS]


def optima(rows, init):
    """The optimal log2 lr and its loss per width, in increasing width, from the rows."""
    mine = [row for row in rows if row["init"] == init]
    assert [row["width"] for row in mine] == list(WIDTHS)
    return [row["optimal log2 lr"] for row in mine], [row["optimal loss"] for row in mine]


def check_claim(rows):
    """The paper's claim in the finding's numbers: SP's optimum moves >= 2 grid steps over
    the 8x widths, µP's <= 1, both inside the grid, and µP's widest beats its narrowest."""
    assert WIDTHS[-1] / WIDTHS[0] == 8
    sp, _ = optima(rows, "sp")
    mup, mup_loss = optima(rows, "mup")
    for best in sp + mup:
        assert LOG2_LRS[0] < best < LOG2_LRS[-1]  # bracketed by the grid
    assert max(sp) - min(sp) >= 2
    assert sp[-1] < sp[0]  # SP's optimum falls as width grows (Adam: about 1/width)
    assert max(mup) - min(mup) <= 1
    assert mup_loss[-1] < mup_loss[0]
    # at the base width µP is SP exactly: the same network, init and learning rates
    sp_rows = {row["width"]: row for row in rows if row["init"] == "sp"}
    mup_rows = {row["width"]: row for row in rows if row["init"] == "mup"}
    assert mup_rows[WIDTHS[0]] == {**sp_rows[WIDTHS[0]], "init": "mup"}


def test_the_network_is_an_adam_mlp_on_mnist():
    cfg = REPRODUCTIONS["yang2021"].config()
    assert cfg.data.name == "mnist" and cfg.model.input_shape == [784]
    assert (cfg.model.type, cfg.model.block, cfg.model.depth) == ("dense", "plain", 3)
    assert cfg.train.optimizer == "adam" and cfg.model.base_width == WIDTHS[0]
    assert [2.0**k for k in LOG2_LRS] == LRS and len(LRS) >= 5


def _result(bests, losses=None):
    """A TransferResult whose width curves have their optimum at `bests`."""
    records = []
    for i, (width, best) in enumerate(zip(WIDTHS, bests, strict=True)):
        low = 1.0 if losses is None else losses[i]
        for j, lr in enumerate(LRS):
            records.append((width, lr, "completed", low + abs(j - best)))
    curves = width_curves(records, WIDTHS, LRS)
    return TransferResult("t", "sp", "adam", 1, 1, LRS, curves)


def test_the_verdict_follows_the_numbers():
    wider = [1.0, 0.9, 0.8, 0.7]
    assert agrees(_result([5, 4, 3, 3]), _result([4, 4, 5, 4], wider))
    assert not agrees(_result([5, 4, 4, 4]), _result([4, 4, 5, 4], wider))  # SP moves 1
    assert not agrees(_result([5, 4, 3, 3]), _result([3, 4, 5, 4], wider))  # µP moves 2
    assert not agrees(_result([5, 4, 3, 3]), _result([4, 4, 5, 4]))  # wider no better
    assert not agrees(_result([5, 4, 3, 0]), _result([4, 4, 5, 4], wider))  # at the edge


def test_yang2021_through_the_cli(runs):
    result = runner.invoke(app, ["reproduce", "yang2021", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["agree"] and data["name"] == "yang2021"
    assert data["paper"] == "Yang et al. 2021" and "Tensor Programs V" in data["claim"]
    assert data["measured"].startswith("MLP of depth 3, adam for 40 steps on mnist, 1 seed(s)")
    check_claim(data["rows"])
    assert all(math.isfinite(row["optimal loss"]) for row in data["rows"])
    run = runs / data["run_dir"].split("/")[-1]
    assert {"finding.json", "yang2021_sp.png", "yang2021_mup.png"} <= {
        p.name for p in run.iterdir()
    }


@pytest.mark.slow
def test_yang2021_full():
    repro = REPRODUCTIONS["yang2021"]
    finding = repro.run(repro.config(), False)
    assert finding.agree, finding.measured
    assert "150 steps on mnist, 3 seed(s)" in finding.measured
    check_claim(finding.rows)
