"""Issue 7's methods and measurements: LSUV, delta-orthogonal, σ_b² in variance_scaling,
and signal propagation plots."""

import json
import math

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from weightinit_cli import apply_weight_init, torch_init
from weightinit_cli.cli import app
from weightinit_cli.errors import WinitError
from weightinit_cli.experiments import load_dataset
from weightinit_cli.experiments import run_stats as stats_of
from weightinit_cli.initspec import expected_std
from weightinit_cli.loading import load_config

runner = CliRunner()


def run_stats(cfg, method=None, spp=False):
    spec = cfg.init.spec_for(method, {}) if method else None
    return stats_of(cfg, load_dataset(cfg), "cpu", spec, spp)


@pytest.mark.parametrize("backend", ["scratch", "torch"])
@pytest.mark.parametrize(
    "model,shape",
    [
        (
            lambda: nn.Sequential(
                nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 3)
            ),
            (256, 20),
        ),
        (
            lambda: nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()
            ),
            (32, 3, 8, 8),
        ),
        (
            lambda: nn.Sequential(
                nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 4, 3, padding=1)
            ),
            (8, 1, 6, 6, 6),
        ),
    ],
    ids=["dense", "conv2d", "conv3d"],
)
def test_lsuv_gives_unit_output_variance_per_layer(model, shape, backend):
    net = model()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    report = apply_weight_init(net, "lsuv", backend=backend, seed=0, data=x, tol=0.01)
    outputs = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: outputs.append(o.var().item()))
        for m in net
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d))
    ]
    with torch.no_grad():
        net(x)
    for hook in hooks:
        hook.remove()
    assert all(abs(v - 1) <= 0.01 for v in outputs)
    for record, variance in zip(report, outputs, strict=True):
        assert record.lsuv_variance == pytest.approx(variance, rel=1e-4)
        assert record.lsuv_iterations >= 1
        assert record.target_std == pytest.approx(
            dict(net.named_modules())[record.name].weight.std(correction=0).item(), rel=1e-5
        )


def test_lsuv_needs_data():
    with pytest.raises(WinitError, match="data-dependent"):
        apply_weight_init(nn.Sequential(nn.Linear(4, 4)), "lsuv")


@pytest.mark.parametrize("shape", [(16, 8, 3, 3), (8, 8, 3, 3, 3), (12, 12, 5)])
def test_delta_orthogonal_is_orthogonal_at_the_centre_and_zero_elsewhere(shape):
    w = torch_init.init(
        "delta_orthogonal", shape, generator=torch.Generator().manual_seed(1), gain=2.0
    )
    centre = (slice(None), slice(None), *(k // 2 for k in shape[2:]))
    c = w[centre].reshape(shape[0], shape[1])
    gram = c.T @ c if shape[0] >= shape[1] else c @ c.T
    assert torch.allclose(gram, 4 * torch.eye(gram.shape[0]), atol=1e-4)
    rest = w.clone()
    rest[centre] = 0
    assert (rest == 0).all()
    rms = w.pow(2).mean().sqrt().item()  # the std it aims for is about zero mean
    assert rms == pytest.approx(expected_std("delta_orthogonal", shape, {"gain": 2.0}), rel=1e-4)


def test_delta_orthogonal_conv_net_preserves_norm_per_position():
    conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
    apply_weight_init(nn.Sequential(conv), "delta_orthogonal", backend="torch", seed=0)
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        y = conv(x)
    assert torch.allclose(y.norm(dim=1), x.norm(dim=1), atol=1e-4)


@pytest.mark.parametrize("backend", ["scratch", "torch"])
def test_variance_scaling_takes_sigma_b_squared(backend):
    model = nn.Sequential(nn.Linear(400, 4000))
    report = apply_weight_init(
        model,
        "variance_scaling",
        backend=backend,
        seed=0,
        scale=1.76,
        distribution="normal",
        bias_var=0.05,
    )
    assert report[0].bias == "normal" and report[0].bias_var == 0.05
    assert model[0].bias.std().item() == pytest.approx(math.sqrt(0.05), rel=0.05)
    assert model[0].weight.std().item() == pytest.approx(math.sqrt(1.76 / 400), rel=0.02)


def test_theory_uses_sigma_b_squared():
    cfg = load_config(
        None,
        [
            "model.activation=tanh",
            "model.depth=12",
            "init.method=variance_scaling",
            "init.params.scale=1.76",
            "init.params.bias_var=0.05",
            "init.params.distribution=normal",
        ],
        command="stats",
    )
    result = run_stats(cfg)
    hidden = result.layers[:-1]
    # Deep layers sit at the fixed point q* = 0.57 of the critical line.
    assert hidden[-1].predicted_preactivation_std ** 2 == pytest.approx(0.570, abs=0.01)
    for layer in hidden:
        assert layer.preactivation.std == pytest.approx(layer.predicted_preactivation_std, rel=0.1)


def test_spp_for_conv_nets(runs):
    result = runner.invoke(app, ["stats", "--layer", "conv2d", "--spp", "--json", "--depth", "4"])
    assert result.exit_code == 0, result.output
    spp = json.loads(result.output)["spp"]
    assert [x["index"] for x in spp] == [1, 2, 3, 4]
    assert all(x["channel_variance"] > 0 and x["channel_squared_mean"] >= 0 for x in spp)
    cfg = load_config(None, ["model.depth=4"], command="stats", layer="conv2d")
    he = run_stats(cfg, "he_normal", spp=True).spp
    xavier = run_stats(cfg, "xavier_normal", spp=True).spp
    # Xavier starves the ReLU conv net: its channel variance falls with depth, He's does not.
    assert xavier[-1].channel_variance < 0.2 * xavier[0].channel_variance
    assert he[-1].channel_variance > 0.3 * he[0].channel_variance
    table = runner.invoke(
        app,
        [
            "compare",
            "--layer",
            "conv2d",
            "--methods",
            "he",
            "xavier",
            "--steps",
            "0",
            "--spp",
            "--depth",
            "3",
        ],
        env={"COLUMNS": "150"},
    )
    assert table.exit_code == 0 and "Signal propagation" in table.output
    dense = runner.invoke(app, ["stats", "--spp"])
    assert dense.exit_code == 2 and "has none" in dense.output
