"""`winit reproduce gpt2_residual` (Radford et al. 2019, GPT-2; nanoGPT's init): in a pre-LN
transformer at init the residual stream's E[x²] grows linearly with depth under N(0, 0.02)
and stays bounded with 1/√(2L) output projections, and the deeper net trains with them.
The fast version end to end through the CLI; the full one marked slow."""

import json
import math
import re

import pytest
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.reproduce import REPRODUCTIONS
from weightinit_cli.reproduce.finding import with_overrides
from weightinit_cli.reproduce.gpt2_residual import (
    ARMS,
    BOUNDED,
    FAST_TRAINED,
    Stream,
    depths,
    judge,
    line_fit,
    profile,
    shape_fits,
)
from weightinit_cli.residual_stream import BlockStats
from weightinit_cli.train import TrainHistory

runner = CliRunner()
UNSCALED, SCALED = (arm.label for arm in ARMS)


TRAINED_TEXT = re.compile(r"1/√\(2L\) completed, loss ([\d.e-]+), accuracy (\d+)%; N\(0, 0.02\) ")


def check_rows(rows, layers):
    """What the claim says about the stream at init, in the finding's numbers, at the
    measured depths `layers`."""
    assert [(r["init"], r["layers"]) for r in rows] == [
        (label, n) for label in (UNSCALED, SCALED) for n in layers
    ]
    for row in rows:
        # two N(0, 1) embeddings added: E[x²] = 2 entering the first block
        assert row["E[x²] in"] == pytest.approx(2.0, rel=0.05)
        assert row["added"] == pytest.approx(row["E[x²] out"] - row["E[x²] in"], rel=1e-9)
        assert row["out/in"] == pytest.approx(row["E[x²] out"] / row["E[x²] in"], rel=1e-9)
    plain, scaled = rows[: len(layers)], rows[len(layers) :]
    # under N(0, 0.02) each layer adds about the same: theory's gain is proportional to
    # depth, within the 9% (at 48 layers) by which the attention's ρ̄ rises as the uniform
    # attention copies the tokens' mean into each; the measurement follows theory
    gain = [r["theory"] - r["E[x²] in"] for r in rows]
    per_layer = gain[0] / layers[0]
    for row, theory, n in zip(plain, gain[: len(layers)], layers, strict=True):
        assert 1 <= theory / (per_layer * n) < 1.12
        assert row["added"] == pytest.approx(theory, rel=0.2)
    assert plain[-1]["added"] > 4 * plain[0]["added"]
    # with 1/√(2L) the stack adds what one unscaled block adds, c/2, at every depth
    for row, theory in zip(scaled, gain[len(layers) :], strict=True):
        assert theory == pytest.approx(per_layer / 2, rel=0.02)
        assert row["added"] == pytest.approx(theory, rel=0.4)
        assert row["out/in"] < BOUNDED
    assert plain[-1]["out/in"] > 2 > BOUNDED


def check_trained(measured, net):
    """The scaled deeper net trains (chance is 1/8); the unscaled one is reported too."""
    assert f"Trained ({net}): " in measured
    loss, accuracy = TRAINED_TEXT.search(measured).groups()
    assert float(loss) < math.log(8) / 2 and int(accuracy) >= 90


def test_the_measured_nets_are_gpt2_small_wide_and_the_trained_one_narrow():
    cfg = REPRODUCTIONS["gpt2_residual"].config()
    m, init = cfg.model, cfg.init
    assert (m.type, m.norm_position, m.width, m.heads, m.depth) == (
        "transformer",
        "pre",
        768,
        12,
        48,
    )
    assert (init.method, init.params, init.branch_scale) == ("normal", {"std": 0.02}, "gpt2")
    assert cfg.data.name == "pointer"
    # nanoGPT: 0.02/√(2·n_layer) on each of the 2·48 residual branches' output projection
    assert cfg.init.branch_factor(96, 48) == pytest.approx(1 / math.sqrt(96))
    assert depths(48, fast=False) == [2, 4, 8, 16, 32, 48]
    assert depths(48, fast=True) == [2, 4, 8, 16]
    assert depths(12, fast=False) == [2, 4, 8, 12] and depths(2, fast=True) == [2]
    fast = with_overrides(cfg, *FAST_TRAINED)
    assert (fast.model.depth, fast.model.width, fast.train.optimizer) == (8, 32, "adam")


def test_gpt2_residual_through_the_cli(runs):
    result = runner.invoke(app, ["reproduce", "gpt2_residual", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["agree"] and data["name"] == "gpt2_residual"
    assert data["paper"] == "Radford et al. 2019"
    check_rows(data["rows"], [2, 4, 8, 16])
    check_trained(data["measured"], "8 layers × 32, 150 adam steps on pointer")
    assert data["measured"].startswith("at init, width 768, 2, 4, 8, 16 layers; E[x²] enters")
    run = runs / data["run_dir"].split("/")[-1]
    charts = {"gpt2_residual_stream.png", "gpt2_residual_depths.png", "gpt2_residual_training.png"}
    assert {p.name for p in run.iterdir()} == {"config.yaml", "meta.json", "finding.json", *charts}
    assert all((run / name).read_bytes()[:4] == b"\x89PNG" for name in charts)
    assert json.loads((run / "finding.json").read_text())["rows"] == data["rows"]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("train.steps=0", "train.steps: gpt2_residual trains its deeper net; give it 1 or more"),
        ("model.depth=2", "model.depth: gpt2_residual measures the stream at 2, 4, ... layers up "
         "to this depth and fits a line across them; give it 3 or more"),
    ],
)  # fmt: skip
def test_what_it_cannot_run_is_one_error_line(runs, setting, expected):
    result = runner.invoke(app, ["reproduce", "gpt2_residual", "--set", setting])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"Error: {expected}"
    assert not runs.exists() or not list(runs.iterdir())


def test_the_profile_adds_each_block_s_predicted_branch_to_the_measured_start():
    blocks = [
        BlockStats("a", 2.0, 0.5, 2.4, 0.3, 2.3),
        BlockStats("b", 2.4, 0.1, 2.6, 0.2, 2.6),
        BlockStats("c", 2.6, 0.1, 2.9, None, None),
    ]
    measured, predicted = profile(blocks)
    assert measured == [2.0, 2.4, 2.6, 2.9]
    assert predicted[:3] == pytest.approx([2.0, 2.3, 2.5]) and math.isnan(predicted[3])


def test_a_line_and_an_exponential_are_told_apart_on_the_same_scale():
    assert line_fit([1, 2, 3], [3, 5, 7]) == pytest.approx((2.0, 1.0))
    line, power = shape_fits([2 + 0.07 * k for k in range(33)])
    assert line == pytest.approx(1.0) and power < 0.995
    line, power = shape_fits([2 * 1.05**k for k in range(33)])
    assert power == pytest.approx(1.0) and line < 0.98


def history(status="completed", accuracy=1.0):
    return TrainHistory(status, 150, 2.1, 0.03, accuracy, None, None, 1.04, 90, [], [])


def streams(arm, gain, layers=(2, 4, 8, 16), theory=None, shape="line"):
    """Streams whose stack adds gain(L) over a start of 2, by equal steps per block (a
    line) or by a steady factor; theory adds theory(L) (default: the measurement)."""
    out = []
    for n in layers:
        total, predicted = gain(n), (theory or gain)(n)
        if shape == "line":
            ys = [2 + total * k / (2 * n) for k in range(2 * n + 1)]
        else:
            ys = [2 * (1 + total / 2) ** (k / (2 * n)) for k in range(2 * n + 1)]
        out.append(Stream(arm, n, ys, [2 + predicted * k / (2 * n) for k in range(2 * n + 1)], ""))
    return out


def per_layer(c):
    return lambda n: c * n


@pytest.mark.parametrize(
    "plain, scaled, trained, agree",
    [
        (streams(ARMS[0], per_layer(0.15)), streams(ARMS[1], lambda n: 0.075), history(), True),
        # the deepest stream grows by a steady factor, not by steady steps
        (streams(ARMS[0], per_layer(0.15), shape="power"), streams(ARMS[1], lambda n: 0.075),
         history(), False),
        # theory's gains fall a third short of the measurement's
        (streams(ARMS[0], per_layer(0.15), theory=per_layer(0.1)),
         streams(ARMS[1], lambda n: 0.075), history(), False),
        # gains that do not grow in proportion to depth
        (streams(ARMS[0], lambda n: 0.15 * n**1.5), streams(ARMS[1], lambda n: 0.075),
         history(), False),
        # the scaled stream grows with depth (as predicted): not bounded
        (streams(ARMS[0], per_layer(0.15)), streams(ARMS[1], per_layer(0.05)), history(),
         False),
        # the scaled stream misses its theory by 60%
        (streams(ARMS[0], per_layer(0.15)),
         streams(ARMS[1], lambda n: 0.12, theory=lambda n: 0.075), history(), False),
        (streams(ARMS[0], per_layer(0.15)), streams(ARMS[1], lambda n: 0.075),
         history(accuracy=0.3), False),
        (streams(ARMS[0], per_layer(0.15)), streams(ARMS[1], lambda n: 0.075),
         history("diverged"), False),
    ],
)  # fmt: skip
def test_the_verdict_comes_from_the_numbers(plain, scaled, trained, agree):
    assert judge(plain, scaled, trained).agree(plain[-1], trained) is agree


@pytest.mark.slow
def test_gpt2_residual_full():
    repro = REPRODUCTIONS["gpt2_residual"]
    finding = repro.run(repro.config(), False)
    check_rows(finding.rows, [2, 4, 8, 16, 32, 48])
    check_trained(finding.measured, "16 layers × 64, 300 adam steps on pointer")
    verdicts = {(r["init"], r["layers"]): r["verdict"] for r in finding.rows}
    # at 48 layers the stream has grown past 4x: winit's verdict calls it linear
    assert verdicts[(UNSCALED, 48)] == "linear" and verdicts[(SCALED, 48)] == "stable"
    assert finding.agree
