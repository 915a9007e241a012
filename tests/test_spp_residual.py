"""--spp on residual nets: per top-level block, Brock et al.'s average channel squared
mean and variance of the stream at the block's output, and the average channel variance
of what the block's gate adds, measured against theory and torch, end to end."""

import json
import math

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.experiments import first_batch, initialized, load_dataset, run_stats
from weightinit_cli.loading import load_config
from weightinit_cli.plan import Layer, NetworkPlan
from weightinit_cli.spp import channel_statistics, signal_propagation

runner = CliRunner()

BN_DENSE = [
    "model.block=residual",
    "model.norm=batchnorm",
    "model.input_shape=[16]",
    "model.width=256",
    "model.depth=6",
    "data.name=gaussian",
    "data.samples=256",
    "train.batch_size=256",
]
KEYS = {"index", "name", "channel_squared_mean", "channel_variance", "residual_variance"}


def stats_of(*sets):
    cfg = load_config(None, list(sets), command="stats")
    return run_stats(cfg, load_dataset(cfg), "cpu", spp=True)


def initialized_model(method=None):
    """The BN dense net under `method`, and its first batch."""
    cfg = load_config(None, BN_DENSE, command="stats")
    data = load_dataset(cfg)
    model, _ = initialized(cfg, cfg.init.spec_for(method, {}) if method else cfg.init.spec, data)
    x, _ = first_batch(data, cfg.train.batch_size, "cpu")
    return model, x, cfg.model.plan


def slope(ys):
    xs = range(len(ys))
    mx, my = sum(xs) / len(ys), sum(ys) / len(ys)
    num = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return num / sum((x - mx) ** 2 for x in xs)


def test_bn_relu_dense_blocks_add_one_minus_one_over_pi_to_the_channel_variance():
    # Each branch ends in a He-initialized dense layer of ReLU(BN(x)): per unit it adds
    # N·σ_g²·E[W²] = 2·(1 − 1/π)/2 to the variance and 2·μ_g² = 1/π to the squared mean
    # (Brock et al. 2021, §4.1): the stream's channel variance grows linearly.
    result = stats_of(*BN_DENSE)
    spp = result.spp
    assert [x.name for x in spp] == [f"residual{i}" for i in range(1, 7)]
    assert slope([x.channel_variance for x in spp]) == pytest.approx(1 - 1 / math.pi, rel=0.08)
    assert slope([x.channel_squared_mean for x in spp]) == pytest.approx(1 / math.pi, rel=0.2)
    for x in spp:
        assert x.residual_variance == pytest.approx(1 - 1 / math.pi, rel=0.1)
    # per channel, mean² + variance is the second moment: the stream table's, exactly
    for x, block in zip(spp, result.blocks, strict=True):
        moment = x.channel_squared_mean + x.channel_variance
        assert moment == pytest.approx(block.stream_out, rel=1e-5)


def test_what_a_block_adds_is_its_gate_output():
    # SkipInit's α = 0 gates every branch off: the stream passes unchanged, though each
    # branch itself computes something
    spp = signal_propagation(*initialized_model("skipinit"))
    assert all(x.residual_variance == 0 for x in spp)
    assert len({(x.channel_squared_mean, x.channel_variance) for x in spp}) == 1
    he = signal_propagation(*initialized_model("he_normal"))
    assert all(x.residual_variance > 0.5 for x in he)


def test_measuring_uses_batch_statistics_and_leaves_the_model_as_it_was():
    model, x, plan = initialized_model()
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    spp = signal_propagation(model, x, plan)
    assert not model.training and not any(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # in eval mode a BatchNorm at init is an identity and the stream would double per block
    assert spp[-1].channel_variance < 10


class _Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.branch = nn.Linear(width, width)
        self.gate = nn.Identity()

    def forward(self, x):
        return x + self.gate(self.branch(x))


def test_a_sequence_s_channels_are_its_last_dim():
    # a [T, E] stream (a transformer's): statistics per feature over batch and tokens
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("residual1", _Block(8))
    block = Layer(0, "residual1", "residual", (5, 8), (5, 8))
    x = torch.randn(64, 5, 8) * torch.linspace(0.5, 2, 8) + torch.arange(8.0)
    (row,) = signal_propagation(model, x, NetworkPlan((5, 8), (block,)))
    with torch.no_grad():
        out, added = model(x).double(), model.residual1.branch(x).double()
    flat = out.reshape(-1, 8)
    assert row.channel_squared_mean == pytest.approx(flat.mean(0).square().mean().item())
    assert row.channel_variance == pytest.approx(flat.var(0, correction=0).mean().item())
    expected = added.reshape(-1, 8).var(0, correction=0).mean().item()
    assert row.residual_variance == pytest.approx(expected)
    assert channel_statistics(out, -1) == pytest.approx(
        (row.channel_squared_mean, row.channel_variance)
    )


def test_cli_spp_on_residual_conv_and_dense_nets(runs):
    conv = ["--layer", "conv2d", "--depth", "3", "--set", "model.block=residual"]
    result = runner.invoke(app, ["stats", *conv, "--spp", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    spp = data["spp"]
    assert [x["name"] for x in spp] == ["residual1", "residual2", "residual3"]
    assert all(set(x) == KEYS for x in spp)
    # over a conv's channels (each over batch and space) mean² + variance is E[x²]; the
    # block's E[x²] is a float32 dot product over 10^5 values (rounding ~1e-5 relative,
    # depending on the BLAS's summation order), the channel statistics float64
    for x, block in zip(spp, data["blocks"], strict=True):
        moment = x["channel_squared_mean"] + x["channel_variance"]
        assert moment == pytest.approx(block["stream_out"], rel=1e-4)
        assert 0 < x["residual_variance"] < block["branch"]
    table = runner.invoke(
        app,
        ["compare", "--methods", "he", "skipinit", "--steps", "0", "--spp", "--depth", "3",
         "--set", "model.block=residual"],
        env={"COLUMNS": "150"},
    )  # fmt: skip
    assert table.exit_code == 0, table.output
    assert "each residual block's output and its branch" in table.output
    assert table.output.count("branch var") == 2
    compared = runner.invoke(
        app,
        ["compare", "--methods", "he", "--steps", "0", "--spp", "--json", "--depth", "2",
         "--set", "model.block=residual"],
    )  # fmt: skip
    assert compared.exit_code == 0, compared.output
    (method,) = json.loads(compared.output)["methods"]
    assert [set(x) for x in method["spp"]] == [KEYS, KEYS]


def test_cli_spp_keeps_plain_conv_rows_and_refuses_a_plain_dense_net(runs):
    plain = runner.invoke(app, ["stats", "--layer", "conv2d", "--depth", "2", "--spp", "--json"])
    assert plain.exit_code == 0, plain.output
    spp = json.loads(plain.output)["spp"]
    assert [set(x) for x in spp] == [KEYS - {"residual_variance"}] * 2
    dense = runner.invoke(app, ["stats", "--spp"])
    assert dense.exit_code == 2
    assert "has none" in dense.output and "model.block=residual" in dense.output
