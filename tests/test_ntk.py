"""init.parametrization ntk: the neural tangent parametrization in SP form. winit trains
W drawn as SP draws it, at lr / fan_in mult (SGD) or lr / √fan_in mult (Adam) where fan_in
is a width; that must take the same steps as the NTK network written with multipliers,
W = w · (fan_in / base)^(-1/2), with w trained at one lr (Jacot et al. 2018)."""

import math

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.experiments import first_batch, initialized, load_dataset
from weightinit_cli.loading import load_config
from weightinit_cli.models import Readout
from weightinit_cli.mup_shapes import parametrization_of
from weightinit_cli.parametrization import width_multipliers_table
from weightinit_cli.train import make_optimizer

runner = CliRunner()
MLP = ["model.input_shape=[64]", "model.depth=2", "model.num_classes=10", "data.name=gaussian"]


def ntk_config(*sets):
    return load_config(
        None, [*MLP, "init.parametrization=ntk", "model.base_width=64", *sets], "train"
    )


def test_ntk_table_of_an_mlp_at_width_mult_4():
    cfg = ntk_config("model.width=256")
    scaling = parametrization_of(cfg)
    assert (scaling.name, scaling.width_mult, scaling.readout_multiplier) == ("ntk", 4.0, 1.0)
    rows = {r["name"]: r for r in width_multipliers_table(scaling)}
    # name: init_mult, Adam lr, SGD lr
    expected = {
        "dense1.weight": (1.0, 1.0, 1.0),  # fan_in 64, not a width
        "dense1.bias": (1.0, 1.0, 1.0),
        "dense2.weight": (1.0, 0.5, 0.25),  # fan_in 256 = 4 x base
        "dense2.bias": (1.0, 1.0, 1.0),
        "head.weight": (1.0, 0.5, 0.25),
        "head.bias": (1.0, 1.0, 1.0),
    }
    got = {n: (r["init_mult"], r["adam_lr_mult"], r["sgd_lr_mult"]) for n, r in rows.items()}
    assert got == expected


def multiplier_form_steps(model, x, y, optimizer, lr, steps, base, weight_decay=0.0):
    """The NTK network with multipliers: each Linear's W = c · w, c = √(base / fan_in)
    where fan_in is a width (not the input layer), w trained at one `lr`."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    factors = [1.0] + [math.sqrt(base / m.in_features) for m in linears[1:]]
    pairs = zip(linears, factors, strict=True)
    raw = [(m.weight.detach() / c).clone().requires_grad_(True) for m, c in pairs]
    biases = [m.bias.detach().clone().requires_grad_(True) for m in linears]
    if optimizer == "sgd":
        opt = torch.optim.SGD([*raw, *biases], lr=lr, weight_decay=weight_decay)
    else:  # w's gradient is c times W's: an eps c times Adam's default is the same step
        groups = [{"params": [w], "eps": 1e-8 * c} for w, c in zip(raw, factors, strict=True)]
        opt = torch.optim.Adam([*groups, {"params": biases}], lr=lr, weight_decay=weight_decay)

    def forward():
        h = x
        for i, (w, b, c) in enumerate(zip(raw, biases, factors, strict=True)):
            h = nn.functional.linear(h, c * w, b)
            if i < len(raw) - 1:
                h = torch.relu(h)
        return h

    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(forward(), y).backward()
        opt.step()
    with torch.no_grad():
        return forward()


def after_steps(model, cfg, x, y, steps):
    """The model's output on x after `steps` steps of winit's optimizer on (x, y)."""
    opt = make_optimizer(model, cfg.train)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("weight_decay", [0.0, 0.5])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_ntk_in_sp_form_takes_the_steps_of_ntk_with_multipliers(optimizer, weight_decay):
    lr = 0.5 if optimizer == "sgd" else 1e-2
    cfg = ntk_config("model.width=512", f"train.optimizer={optimizer}", f"train.lr={lr}",
                     "train.momentum=0", "train.batch_size=64",
                     f"train.weight_decay={weight_decay}")  # fmt: skip
    data = load_dataset(cfg)
    model, _ = initialized(cfg, cfg.init.spec, data)
    assert not any(isinstance(m, Readout) for m in model.modules())  # NTK: no multiplier
    x, y = first_batch(data, 64, "cpu")
    expected = multiplier_form_steps(model, x, y, optimizer, lr, 3, 64, weight_decay)
    got = after_steps(model, cfg, x, y, 3)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)  # float32 rounding
    # and SP (one lr for all) is another network after those steps
    sp = load_config(None, [*MLP, "model.width=512", f"train.optimizer={optimizer}",
                            f"train.lr={lr}", "train.momentum=0",
                            f"train.weight_decay={weight_decay}"], "train")  # fmt: skip
    sp_model, _ = initialized(sp, sp.init.spec, data)
    assert (after_steps(sp_model, sp, x, y, 3) - expected).abs().max() > 1e-3


def hidden_change(parametrization, width, steps=4):
    """Mean |Δ| of the hidden layer's output over `steps` SGD steps on one batch."""
    cfg = load_config(None, [*MLP, f"init.parametrization={parametrization}",
                             "model.base_width=64", f"model.width={width}",
                             "train.optimizer=sgd", "train.lr=0.5", "train.momentum=0"],
                      "train")  # fmt: skip
    data = load_dataset(cfg)
    model, _ = initialized(cfg, cfg.init.spec, data)
    x, y = first_batch(data, 128, "cpu")
    hidden = model[:3]  # dense1, relu1, dense2
    with torch.no_grad():
        before = hidden(x)
    after_steps(model, cfg, x, y, steps)
    with torch.no_grad():
        return float((hidden(x) - before).abs().mean())


def test_ntk_features_stop_moving_as_width_grows_and_mup_s_do_not():
    """Lazy training: under NTK a hidden feature's change shrinks as 1/√width (16x wider:
    about 1/4); under µP it keeps its size (Yang & Hu 2021)."""
    ntk = hidden_change("ntk", 1024) / hidden_change("ntk", 64)
    mup = hidden_change("mup", 1024) / hidden_change("mup", 64)
    assert 0.15 < ntk < 0.4, ntk
    assert 0.7 < mup < 1.4, mup


def test_ntk_through_the_commands(tmp_path):
    sets = ["--set", "init.parametrization=ntk", "--set", "train.optimizer=sgd", "--set",
            "train.lr=0.5", "--widths", "64,256,1024", "--seeds", "1", "--json"]  # fmt: skip
    result = runner.invoke(app, ["coordcheck", *sets, "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output  # sizes are stable: the check passes
    result = runner.invoke(app, ["parametrizations", "--set", "init.parametrization=ntk",
                                 "--set", "model.width=128", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = __import__("json").loads(result.output)
    assert data["table"]["Adam lr"]["hidden weights"] == {
        "sp": "1", "ntk": "1/√fan_in", "mup": "1/fan_in"
    }  # fmt: skip
