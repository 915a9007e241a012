"""`winit reproduce fixup2019` (Zhang et al. 2019): a deep unnormalized residual MLP on
MNIST explodes under He init and fails to train; Fixup, SkipInit and 1/√L branches keep
its stream O(1) and train, as He does with batchnorm. The fast version end to end through
the CLI; the full one marked slow."""

import json
import math

import pytest
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.reproduce import REPRODUCTIONS
from weightinit_cli.reproduce.finding import with_overrides
from weightinit_cli.reproduce.fixup2019 import ARMS, FAST, ArmResult, agrees, stream_profile
from weightinit_cli.residual_stream import BlockStats
from weightinit_cli.train import TrainHistory

runner = CliRunner()
CHANCE = math.log(10)
LABELS = ["he_normal", "fixup", "skipinit", "he, 1/√L", "he, batchnorm"]


def check_rows(rows, blocks, accuracy):
    """What the paper says, in the finding's numbers, for a net of `blocks` blocks."""
    by = {row["init"]: row for row in rows}
    assert list(by) == LABELS
    he = by["he_normal"]
    # 2x per block: theory exactly (each block's prediction from its measured input),
    # the measurement within 10% per block and past a 1000x std by the end
    assert he["theory"] == pytest.approx(2.0**blocks, rel=1e-6)
    assert he["growth"] ** (1 / blocks) == pytest.approx(2, rel=0.1)
    assert he["growth"] > 1e6
    assert he["status"] == "diverged" or he["final loss"] > CHANCE - 0.05
    for label in ("fixup", "skipinit"):
        assert by[label]["growth"] == pytest.approx(1, abs=1e-6)
        assert by[label]["theory"] == pytest.approx(1, abs=1e-6)
    scaled = by["he, 1/√L"]
    assert scaled["theory"] == pytest.approx((1 + 1 / blocks) ** blocks, rel=1e-6)
    assert scaled["growth"] == pytest.approx(scaled["theory"], rel=0.35)
    assert scaled["growth"] < math.e * 1.35
    norm = by["he, batchnorm"]
    # each branch adds 1 (a unit Gaussian through He layers): linear, not 2^L
    linear = 1 + blocks / norm["E[x²] in"]
    assert norm["theory"] == pytest.approx(linear, rel=0.05)
    assert norm["growth"] == pytest.approx(linear, rel=0.35)
    for label in LABELS[1:]:
        row = by[label]
        assert row["status"] == "completed", label
        assert row["final loss"] < CHANCE / 2, label
        assert row["accuracy"] >= accuracy, label


def test_the_networks_are_deep_unnormalized_residual_mlps_on_mnist():
    full = REPRODUCTIONS["fixup2019"].config()
    fast = with_overrides(full, *FAST)
    for cfg, depth, width in ((full, 64, 128), (fast, 32, 64)):
        assert (cfg.model.block, cfg.model.norm, cfg.model.residual) == ("residual", "none", "pre")
        assert (cfg.model.depth, cfg.model.width, cfg.model.branch_depth) == (depth, width, 2)
        assert cfg.data.name == "mnist" and cfg.model.input_shape == [784]
        residual = [layer for layer in cfg.model.plan.layers if layer.kind == "residual"]
        assert len(residual) == depth >= 32
    assert [arm.label for arm in ARMS] == LABELS


def test_fixup2019_through_the_cli(runs):
    result = runner.invoke(app, ["reproduce", "fixup2019", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["agree"] and data["name"] == "fixup2019"
    assert data["paper"] == "Zhang et al. 2019"
    check_rows(data["rows"], 32, accuracy=0.6)
    assert data["measured"].startswith("32 blocks of width 64 on mnist: he_normal: E[x²] 2.0")
    assert "training diverged at step" in data["measured"]
    run = runs / data["run_dir"].split("/")[-1]
    assert {p.name for p in run.iterdir()} == {
        "config.yaml",
        "meta.json",
        "finding.json",
        "fixup2019_stream.png",
        "fixup2019_training.png",
    }
    assert (run / "fixup2019_stream.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((run / "finding.json").read_text())["rows"] == data["rows"]


def block(stream_in, stream_out, predicted_out):
    return BlockStats("b", stream_in, stream_out - stream_in, stream_out, None, predicted_out)


def test_the_stream_profile_chains_each_block_s_prediction_from_its_measured_input():
    blocks = [block(2.0, 5.0, 4.0), block(5.0, 9.0, 10.0), block(9.0, 18.0, None)]
    measured, predicted = stream_profile(blocks)
    assert measured == [1.0, 2.5, 4.5, 9.0]
    assert predicted[:3] == [1.0, 2.0, 4.0] and math.isnan(predicted[3])


def history(status="completed", loss=0.3, accuracy=0.9):
    return TrainHistory(status, 100, 2.3, loss, accuracy, None, None, CHANCE / 2, 30, [], [])


@pytest.mark.parametrize(
    "arm, stream, predicted, trained, agree",
    [
        (0, [1, 2, 4.1, 8], [1, 2, 4, 8], history("diverged"), False),  # no 1000x std: no blow-up
        (0, [1] + [2.0**k for k in range(1, 21)], [2.0**k for k in range(21)],
         history("diverged"), True),
        (0, [2.0**k for k in range(21)], [2.0**k for k in range(21)], history(), False),  # trains
        (0, [1.5**k for k in range(41)], [2.0**k for k in range(41)], history("diverged"), False),
        (0, [2.0**k for k in range(41)], [2.0**k for k in range(41)],
         history(loss=CHANCE - 0.01), True),  # stalled at chance
        (1, [1, 1, 1], [1, 1, 1], history(), True),
        (1, [1, 1, 1.001], [1, 1, 1], history(), False),  # a zero branch adds exactly nothing
        (1, [1, 1, 1], [1, 1, 1], history(accuracy=0.3), False),
        (2, [1, 1, 1], [1, 1, 1], history("stuck"), False),
        (3, [1, 1.5, 2.4], [1, 1.6, 2.6], history(), True),
        (3, [1, 2.6, 4.0], [1, 2.4, 3.8], history(), False),  # within theory, but not O(1)
        (3, [1, 1.5, 3.6], [1, 1.6, 2.6], history(), False),
        (4, [1, 2, 3], [1, 2, 3.1], history(loss=1.5), False),  # above the target loss
        (4, [1, 2, 3], [1, 2, float("nan")], history(), False),  # no theory: not as predicted
    ],
)  # fmt: skip
def test_each_arm_s_verdict_comes_from_its_numbers(arm, stream, predicted, trained, agree):
    result = ArmResult(ARMS[arm], 2.0, [float(s) for s in stream], predicted, trained)
    assert agrees(result, CHANCE) is agree


def test_without_training_steps_it_is_one_error_line(runs):
    result = runner.invoke(app, ["reproduce", "fixup2019", "--full", "--set", "train.steps=0"])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "Error: train.steps: fixup2019 trains each of its networks; give it 1 or more"
    )
    assert not runs.exists() or not list(runs.iterdir())


@pytest.mark.slow
def test_fixup2019_full():
    repro = REPRODUCTIONS["fixup2019"]
    finding = repro.run(repro.config(), False)
    check_rows(finding.rows, 64, accuracy=0.8)
    assert finding.agree
