"""The init schemes made for residual networks: Fixup (Zhang et al. 2019), SkipInit (De &
Smith 2020) and ReZero (Bachlechner et al. 2020), against their papers' formulas, the
residual stream's theory and training."""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.experiments import initialized, load_dataset, run_stats
from weightinit_cli.loading import load_config
from weightinit_cli.methods import METHODS

runner = CliRunner()


def config(*sets, command="stats"):
    base = ["model.block=residual", "model.width=64", "model.input_shape=[16]"]
    return load_config(None, ["data.name=gaussian", *base, *sets], command)


def stats(cfg, spec=None):
    return run_stats(cfg, load_dataset(cfg), "cpu", spec)


def weights(cfg, method, **params):
    data = load_dataset(cfg)
    model, report = initialized(cfg, cfg.init.spec_for(method, params), data)
    return model, report, dict(model.named_parameters())


@pytest.mark.parametrize("backend", ["scratch", "torch"])
@pytest.mark.parametrize("branch_depth", [2, 3])
def test_fixup_scales_branch_layers_by_L_to_the_minus_1_over_2m_minus_2(backend, branch_depth):
    depth = 8
    cfg = config(
        f"model.depth={depth}", f"model.branch_depth={branch_depth}", f"init.backend={backend}"
    )
    model, report, params = weights(cfg, "fixup")
    he = math.sqrt(2 / 64)
    factor = depth ** (-1 / (2 * branch_depth - 2))
    by_name = {r.name: r for r in report.layers}
    for block in range(1, depth + 1):
        layers = [f"residual{block}.branch.dense{i}" for i in range(1, branch_depth + 1)]
        for name in layers[:-1]:
            assert by_name[name].target_std == pytest.approx(he * factor)
            assert params[f"{name}.weight"].std().item() == pytest.approx(he * factor, rel=0.05)
        last = layers[-1]
        assert by_name[last].target_std == 0
        assert torch.count_nonzero(params[f"{last}.weight"]) == 0
        assert params[f"residual{block}.gate.scale"].item() == 1.0
        assert params[f"residual{block}.gate.bias"].item() == 0.0
        # a scalar bias before each weighted layer and each activation of the branch
        biases = [n for n in params if n.startswith(f"residual{block}.branch.bias_")]
        names = [f"dense{i}" for i in range(1, branch_depth + 1)]
        names += [f"relu{i}" for i in range(1, branch_depth + 1)]
        assert sorted(biases) == sorted(f"residual{block}.branch.bias_{n}" for n in names)
    # the classifier starts at 0, weight and bias; the stem keeps He
    assert torch.count_nonzero(params["head.weight"]) == torch.count_nonzero(params["head.bias"])
    assert torch.count_nonzero(params["head.weight"]) == 0
    assert params["stem.weight"].std().item() == pytest.approx(math.sqrt(2 / 16), rel=0.1)


def test_fixup_zeroes_the_biases_of_the_layers_it_zeroes_whatever_the_bias_rule():
    cfg = config("model.depth=4", "init.bias=torch_default")
    _, _, params = weights(cfg, "fixup")
    assert torch.count_nonzero(params["head.bias"]) == 0
    assert torch.count_nonzero(params["residual1.branch.dense2.bias"]) == 0
    assert torch.count_nonzero(params["residual1.branch.dense1.bias"]) > 0


@pytest.mark.parametrize("method", ["skipinit", "rezero"])
def test_skipinit_and_rezero_gate_every_branch_with_alpha(method):
    cfg = config("model.depth=6")
    model, report, params = weights(cfg, method)
    gates = [p for name, p in params.items() if name.endswith("gate.scale")]
    assert len(gates) == 6 and all(g.item() == 0.0 for g in gates)
    # the branch weights keep He, the head too: only the gates start at 0
    assert report.layers[1].target_std == pytest.approx(math.sqrt(2 / 64))
    records = {r.name: r for r in report.parameters}
    assert records["residual1.gate.scale"].detail == f"gate: α = 0 ({method})"
    _, _, params = weights(cfg, method, alpha=0.5)
    assert params["residual3.gate.scale"].item() == 0.5


@pytest.mark.parametrize("method", ["fixup", "skipinit", "rezero"])
def test_the_zero_branch_schemes_keep_the_stream_at_its_input_value(method):
    result = stats(config("model.depth=16", f"init.method={method}"))
    assert len(result.blocks) == 16
    first = result.blocks[0].stream_in
    for block in result.blocks:
        assert block.branch == 0.0 and block.predicted_branch == 0.0
        assert block.stream_out == pytest.approx(first, rel=1e-6)
        assert block.predicted_out == pytest.approx(block.stream_out, rel=1e-6)
    assert result.verdict.kind == "stable"


def test_a_nonzero_alpha_scales_the_branch_by_alpha_squared_in_theory_and_measurement():
    cfg = config("model.depth=1", "model.width=512", "train.batch_size=512")
    he = stats(cfg).blocks[0]
    gated = stats(cfg, cfg.init.spec_for("skipinit", {"alpha": 0.5})).blocks[0]
    assert gated.predicted_branch == pytest.approx(0.25 * he.predicted_branch)
    assert gated.branch == pytest.approx(0.25 * he.branch, rel=1e-5)  # the same draws
    assert gated.branch == pytest.approx(gated.predicted_branch, rel=0.1)


def test_under_he_the_verdict_names_the_block_where_the_stream_explodes():
    result = stats(config("model.depth=32"))
    # E[x²] about doubles per block: the std passes 1000x (E[x²] 1e6x) near block 20,
    # where theory, chained from each block's measured input, says it does
    start = result.blocks[0].stream_in
    first = next(k for k, b in enumerate(result.blocks) if b.stream_out > 1e6 * start) + 1
    predicted = next(k for k, b in enumerate(result.blocks) if b.predicted_out > 1e6 * start)
    assert 19 <= first <= 23 and abs(first - (predicted + 1)) <= 1
    assert result.verdict.kind == "exploding"
    assert f"explodes at block {first} of 32 (residual{first})" in result.verdict.message
    assert "he_normal" in result.verdict.message and "fixup" in result.verdict.message


def test_the_gates_and_fixup_biases_learn():
    cfg = config("model.depth=4", "train.steps=5", "train.lr=0.05", command="train")
    from weightinit_cli.experiments import run_train

    for method in ("skipinit", "fixup"):
        data = load_dataset(cfg)
        run_train(cfg, data, "cpu", cfg.init.spec_for(method, {}))
    model, _, _ = weights(cfg, "skipinit")
    from weightinit_cli.train import train

    train(model, load_dataset(cfg), cfg.train, cfg.model.plan, device="cpu", seed=0)
    params = dict(model.named_parameters())
    assert params["residual1.gate.scale"].item() != 0.0  # α moves on the first step
    model, _, _ = weights(cfg, "fixup")
    train(model, load_dataset(cfg), cfg.train, cfg.model.plan, device="cpu", seed=0)
    params = dict(model.named_parameters())
    assert params["residual1.branch.bias_dense2"].item() != 0.0
    assert torch.count_nonzero(params["residual1.branch.dense2.weight"]) > 0


def test_the_schemes_are_in_winit_methods_with_their_papers():
    result = runner.invoke(app, ["methods", "--json"])
    assert result.exit_code == 0, result.output
    listed = {m["name"]: m for m in json.loads(result.output)}
    assert listed["fixup"]["reference"] == "Zhang et al. 2019"
    assert listed["skipinit"]["reference"] == "De & Smith 2020"
    assert listed["rezero"]["reference"] == "Bachlechner et al. 2020"
    assert all(METHODS[m].gate != "none" for m in ("fixup", "skipinit", "rezero"))


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["stats", "--method", "fixup"],
            "init.method: fixup is a scheme for residual networks, and this one has no "
            "residual blocks",
        ),
        (
            ["compare", "--methods", "he", "skipinit", "--steps", "1"],
            "--methods: skipinit is a scheme for residual networks",
        ),
        (
            ["stats", "--method", "fixup", "--set", "model.block=residual", "--set",
             "init.branch_scale=gpt2"],
            "init.branch_scale: fixup scales its branches itself",
        ),
        (
            ["stats", "--model", "tests/user_models.py:ResidualMLP", "--input-shape", "2",
             "--method", "rezero"],
            "init.method: rezero gates the residual blocks winit builds",
        ),
    ],
)  # fmt: skip
def test_a_scheme_where_it_cannot_apply_is_one_error_line(args, expected, runs):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not list(runs.glob("*"))


def test_compare_shows_he_exploding_and_fixup_and_skipinit_training(runs):
    result = runner.invoke(
        app,
        ["compare", "--methods", "he_normal", "fixup", "skipinit", "--set",
         "model.block=residual", "--depth", "24", "--width", "32", "--steps", "60", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    runs_ = {run["method"]: run for run in json.loads(result.output)["methods"]}
    assert runs_["he_normal"]["verdict_kind"] == "exploding"
    assert "explodes at block" in runs_["he_normal"]["verdict"]
    assert runs_["he_normal"]["train"]["status"] in ("diverged", "stuck")
    for method in ("fixup", "skipinit"):
        assert runs_[method]["verdict_kind"] == "stable"
        assert len(runs_[method]["blocks"]) == 24
        train = runs_[method]["train"]
        assert train["status"] == "completed"
        assert train["final_loss"] < 0.8 * train["initial_loss"]
