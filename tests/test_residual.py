"""Residual blocks: `residual` entries in model.layers and the residual stacks
(model.block: residual), planned, built, measured and trained like any network."""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.errors import ConfigErrors
from weightinit_cli.loading import config_data, load_config
from weightinit_cli.models import build_model
from weightinit_cli.session import stats as run_stats

runner = CliRunner()

LAYERS = (
    "model.layers=[{type: dense, units: 32},"
    " {type: residual, branch: [{type: layernorm}, {type: activation, fn: relu},"
    " {type: dense, units: 32}]},"
    " {type: residual, branch: [{type: dense, units: 64}, {type: activation, fn: tanh},"
    " {type: residual, branch: [{type: dense, units: 64}]}], skip: {type: dense, units: 64}},"
    " {type: dense, units: 3}]"
)


def config(*sets, command="train"):
    return load_config(None, ["model.input_shape=[16]", "data.name=gaussian", *sets], command)


def test_residual_layers_are_planned_and_built_under_their_module_names():
    cfg = config(LAYERS)
    plan = cfg.model.plan
    assert [layer.name for layer in plan.weighted] == [
        "dense1",
        "residual1.branch.dense1",
        "residual2.branch.dense1",
        "residual2.branch.residual1.branch.dense1",
        "residual2.skip",
        "dense2",
    ]
    model = build_model(plan)
    modules = dict(model.named_modules())
    assert all(layer.name in modules for layer in plan.all_layers)
    assert plan.parameters == sum(p.numel() for p in model.parameters())
    x = torch.randn(5, 16)
    skip, branch = modules["residual2.skip"], modules["residual2.branch"]
    h = modules["residual1"](modules["dense1"](x))
    assert torch.allclose(modules["residual2"](h), skip(h) + branch(h))
    assert model(x).shape == (5, 3)
    # the activation inside a branch belongs to the layer before it; the branch's end
    # meets a sum, and the layer after a block reads the sum: not chained
    by_name = {layer.name: layer for layer in plan.weighted}
    assert by_name["residual2.branch.dense1"].activation == "tanh"
    assert by_name["residual1.branch.dense1"].activation is None
    assert not by_name["dense2"].chained


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        (
            ["model.layers=[{type: dense, units: 8}, {type: residual, branch: [{type: dense,"
             " units: 4}]}, {type: dense, units: 3}]"],
            "model.layers.1 (residual, 'residual1'): the branch outputs [4] but the skip passes"
            " its input [8] on; they must be the same shape to add (add a skip: projection",
        ),
        (
            ["model.layers=[{type: residual, branch: [{type: dense, units: 4}],"
             " skip: {type: dense, units: 5}}, {type: dense, units: 3}]"],
            "the branch outputs [4] but the skip projection gives [5]",
        ),
        (
            ["model.layers=[{type: residual, branch: [{type: conv2d, channels: 4}]},"
             " {type: dense, units: 3}]"],
            "model.layers.0.branch.0 (conv2d, 'conv2d1'): conv2d needs a [C, H, W] input",
        ),
        (["model.layers=[{type: residual, branch: []}]"], "model.layers.0.branch"),
        (["model.residual=post"], "model.residual: shapes residual blocks; it needs model.block"),
        (["model.branch_depth=3"], "model.branch_depth: shapes residual blocks"),
    ],
)  # fmt: skip
def test_a_block_that_cannot_be_is_one_error_naming_its_field(sets, expected):
    with pytest.raises(ConfigErrors) as caught:
        config(*sets)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("residual", ["pre", "post"])
@pytest.mark.parametrize("norm", ["none", "batchnorm", "layernorm"])
@pytest.mark.parametrize("layer", ["dense", "conv2d"])
def test_residual_stacks_have_a_stem_depth_blocks_and_a_head(residual, norm, layer):
    sets = ["model.block=residual", f"model.residual={residual}", f"model.norm={norm}"]
    sets += ["model.depth=3", "model.branch_depth=2", "model.width=8"]
    if layer == "conv2d":
        sets += ["model.type=conv2d", "model.input_shape=[1, 8, 8]", "data.name=shapes2d"]
    cfg = load_config(None, sets if layer == "conv2d" else ["model.input_shape=[4]", *sets])
    plan = cfg.model.plan
    names = [layer.name for layer in plan.weighted]
    kind = "dense" if layer == "dense" else "conv2d"
    assert names == ["stem", *(f"residual{b}.branch.{kind}{i}" for b in (1, 2, 3) for i in (1, 2)),
                     "head"]  # fmt: skip
    block = next(layer for layer in plan.layers if layer.kind == "residual")
    branch = [sub.kind for sub in block.branch]
    normed = [] if norm == "none" else [norm]
    if residual == "pre":
        assert branch == [*normed, "activation", kind] * 2
    else:
        assert branch == [kind, *normed, "activation", kind, *normed]
        after = plan.layers[plan.layers.index(block) + 1]
        assert after.kind == "activation"  # act(x + F(x))
    model = build_model(plan)
    x = torch.randn(2, *cfg.model.input_shape)
    assert model(x).shape == (2, 3)
    assert plan.parameters == sum(p.numel() for p in model.parameters())


def test_under_he_an_unnormalized_pre_activation_stream_doubles_its_variance_per_block():
    """x + F(relu(x)) with He branches: Var(F) = Var(x), so Var doubles each block (2^L),
    what Fixup (Zhang et al. 2019) sets out from; each layer's theory, from its measured
    input, follows."""
    sets = ["model.block=residual", "model.depth=6", "model.branch_depth=1", "model.width=512"]
    result = run_stats(config(*sets, "init.method=he_normal", command="stats")).result
    branch_ends = [layer for layer in result.layers if ".branch." in layer.name]
    assert len(branch_ends) == 6
    stds = [layer.preactivation.std for layer in branch_ends]
    for before, after in zip(stds, stds[1:], strict=False):
        assert after / before == pytest.approx(math.sqrt(2), rel=0.1)
    for layer in result.layers[:-1]:  # the head's 3 units are too few for a 10% test
        assert layer.preactivation.std == pytest.approx(layer.predicted_preactivation_std, rel=0.1)


def test_a_plain_config_saves_as_before_and_a_residual_one_says_its_block():
    assert "block" not in config_data(config())["model"]  # configs of before keep their hash
    saved = config_data(config("model.block=residual"))["model"]
    assert saved["block"] == "residual" and "norm" not in saved


def test_train_and_rerun_a_residual_stack(runs):
    args = ["--set", "model.block=residual", "--set", "model.norm=batchnorm", "--depth", "3"]
    result = runner.invoke(app, ["train", *args, "--steps", "20"])
    assert result.exit_code == 0, result.output
    (run_dir,) = runs.iterdir()
    model = json.loads((run_dir / "summary.json").read_text())["model"]
    assert (model["block"], model["residual"], model["norm"]) == ("residual", "pre", "batchnorm")
    again = runner.invoke(app, ["rerun", str(run_dir)])
    assert again.exit_code == 0, again.output


def _blocks(*sets):
    sets = ["model.block=residual", "model.depth=5", "model.width=512", *sets]
    return run_stats(config(*sets, command="stats")).result.blocks


def test_the_stream_doubles_per_block_under_he_without_a_norm_as_theory_says():
    """E[(x + F(x))²] = E[x²] + E[F(x)²], and a He branch gives E[F²] = E[x²]: 2^L."""
    blocks = _blocks("init.method=he_normal")
    assert len(blocks) == 5
    for b in blocks:
        assert b.predicted_branch == pytest.approx(b.stream_in, rel=1e-9)  # relu then He
        assert b.stream_out / b.stream_in == pytest.approx(2.0, rel=0.15)
        assert b.stream_out == pytest.approx(b.predicted_out, rel=0.15)
    assert blocks[-1].stream_out / blocks[0].stream_in == pytest.approx(2**5, rel=0.3)


@pytest.mark.parametrize("norm", ["batchnorm", "layernorm"])
@pytest.mark.parametrize("residual", ["pre", "post"])
def test_with_a_norm_the_stream_grows_by_one_per_block(norm, residual):
    """A normalized branch outputs E[F²] = 1 whatever enters (Brock et al. 2021: the
    variance grows linearly within a stage of a normalized ResNet)."""
    blocks = _blocks(f"model.norm={norm}", f"model.residual={residual}")
    for b in blocks:
        assert b.predicted_branch == pytest.approx(1.0, rel=1e-6)
        assert b.branch == pytest.approx(1.0, rel=0.1)
        assert b.stream_out - b.stream_in == pytest.approx(1.0, rel=0.15)
        assert b.stream_out == pytest.approx(b.predicted_out, rel=0.1)


def test_the_stream_table_and_json_and_n_a_where_theory_has_no_model(runs):
    dropout = (
        "model.layers=[{type: dense, units: 64}, {type: residual, branch: [{type: activation,"
        " fn: relu}, {type: dropout, p: 0.5}, {type: dense, units: 64}]}, {type: dense, units: 3}]"
    )
    (block,) = run_stats(config(dropout, command="stats")).result.blocks
    assert block.predicted_branch is None and block.predicted_out is None
    shown = runner.invoke(
        app, ["stats", "--set", "model.block=residual", "--depth", "2"], env={"COLUMNS": "80"}
    )
    assert shown.exit_code == 0, shown.output
    assert "Residual stream at init: E[x²] per block" in shown.output
    data = json.loads(
        runner.invoke(
            app, ["stats", "--set", "model.block=residual", "--depth", "2", "--json"]
        ).stdout
    )
    assert [b["name"] for b in data["blocks"]] == ["residual1", "residual2"]
    assert set(data["blocks"][0]) == {
        "name", "stream_in", "branch", "stream_out", "predicted_branch", "predicted_out",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("scale", "factor"), [("sqrt_depth", 1 / 8), ("gpt2", 1 / 16), ("0.5", 0.25)]
)
def test_branch_scale_keeps_the_stream_near_its_input(scale, factor):
    """A branch times s adds s²·E[x²] per block: (1 + 1/L)^L ≈ e for 1/√L, not 2^L."""
    sets = ["model.depth=8", "model.branch_depth=1", f"init.branch_scale={scale}"]
    blocks = _blocks(*sets)
    for b in blocks:
        assert b.predicted_out / b.stream_in == pytest.approx(1 + factor, rel=1e-6)
        assert b.stream_out / b.stream_in == pytest.approx(1 + factor, rel=0.03)
    total = blocks[-1].stream_out / blocks[0].stream_in
    assert total == pytest.approx((1 + factor) ** 8, rel=0.1)


def test_branch_scale_is_recorded_and_saved_and_needs_residual_blocks():
    cfg = config("model.block=residual", "model.depth=4", "init.branch_scale=sqrt_depth")
    result = run_stats(cfg).result
    record = next(p for p in result.init.parameters if p.name == "residual4.branch.dense2.weight")
    assert record.detail == "he_normal × 0.5 (branch_scale)"
    assert record.target_std == pytest.approx(0.5 * math.sqrt(2 / 64))
    assert config_data(cfg)["init"]["branch_scale"] == "sqrt_depth"
    assert "branch_scale" not in config_data(config())["init"]
    with pytest.raises(ConfigErrors) as caught:
        config("init.branch_scale=gpt2")
    assert "init.branch_scale: scales the branches of residual blocks" in str(caught.value)
