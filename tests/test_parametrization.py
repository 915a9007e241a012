"""Parametrizations (init.parametrization sp | mup, model.base_width): µP's table of
multipliers against hand-computed values, winit's µP against the `mup` package step by
step, SP exactly as before, and the combinations refused."""

import copy
import os

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from weightinit_cli.errors import ConfigErrors
from weightinit_cli.experiments import initialized, load_dataset
from weightinit_cli.loading import config_data, config_hash, load_config
from weightinit_cli.models import Readout
from weightinit_cli.mup_shapes import parametrization_of
from weightinit_cli.parametrization import width_multipliers_table
from weightinit_cli.train import make_optimizer

runner = CliRunner()


def reference_mup():
    """The `mup` package (installed --no-deps: its sdist declares torchvision and seaborn);
    a skip where it is absent, a failure in CI (WINIT_REQUIRE_MUP=1)."""
    try:
        import mup
    except ImportError:
        if os.environ.get("WINIT_REQUIRE_MUP"):
            pytest.fail("WINIT_REQUIRE_MUP is set but mup is not installed")
        pytest.skip("mup is not installed (pip install --no-deps mup==1.0.0)")
    return mup


# the MLP: 64 -> w -> w -> 10
MLP = ["model.input_shape=[64]", "model.depth=2", "model.num_classes=10", "data.name=gaussian"]


def config(*sets, command="train"):
    return load_config(None, [*MLP, *sets], command)


def built(cfg):
    return initialized(cfg, cfg.init.spec, load_dataset(cfg))


def test_mup_table_of_an_mlp_at_width_mult_4():
    cfg = config("model.width=256", "model.base_width=64", "init.parametrization=mup")
    scaling = parametrization_of(cfg)
    assert (scaling.width_mult, scaling.readout, scaling.readout_multiplier) == (4.0, "head", 0.25)
    rows = {r["name"]: r for r in width_multipliers_table(scaling)}
    # name: role, kind, init_mult, Adam lr, SGD lr (Yang et al. 2021 Table 3, as mup does it)
    expected = {
        "dense1.weight": ("input", "vector", 1.0, 1.0, 4.0),
        "dense1.bias": ("bias", "vector", 1.0, 1.0, 4.0),
        "dense2.weight": ("hidden", "matrix", 1.0, 0.25, 1.0),
        "dense2.bias": ("bias", "vector", 2.0, 1.0, 4.0),  # rescale_linear_bias: √4
        "head.weight": ("output", "vector", 2.0, 1.0, 4.0),  # MuReadout: √4, input / 4
        "head.bias": ("bias", "fixed", 2.0, 1.0, 1.0),
    }
    got = {
        n: (r["role"], r["kind"], r["init_mult"], r["adam_lr_mult"], r["sgd_lr_mult"])
        for n, r in rows.items()
    }
    assert got == expected
    assert [r["forward_mult"] for r in rows.values()] == [1.0] * 4 + [0.25] * 2


def test_mup_table_of_a_conv_stack_and_the_optimizer_groups():
    sets = ["model.type=conv2d", "model.input_shape=[1,8,8]", "model.depth=2", "model.width=32"]
    mup = ["model.base_width=8", "init.parametrization=mup", "train.optimizer=adam"]
    cfg = load_config(None, [*sets, "data.name=shapes2d", *mup], "train")
    rows = {r["name"]: r for r in width_multipliers_table(parametrization_of(cfg))}
    assert (rows["conv2d1.weight"]["role"], rows["conv2d1.weight"]["adam_lr_mult"]) == ("input", 1)
    assert (rows["conv2d2.weight"]["role"], rows["conv2d2.weight"]["adam_lr_mult"]) == (
        "hidden",
        0.25,
    )
    assert rows["head.weight"]["role"] == "output" and rows["head.weight"]["init_mult"] == 2.0
    model, _ = built(cfg)
    groups = make_optimizer(model, cfg.train).param_groups
    lr = cfg.train.lr
    names = {id(p): n for n, p in model.named_parameters()}
    by_lr = {g["lr"]: sorted(names[id(p)] for p in g["params"]) for g in groups}
    assert by_lr == {
        lr / 4: ["conv2d2.weight"],
        lr: sorted(n for n, _ in model.named_parameters() if n != "conv2d2.weight"),
    }


def _mup_twin(sp_model, base_sp_model):
    """The same network in mup's terms: SP weights, MuReadout head, set_base_shapes."""
    mup = reference_mup()

    def with_readout(model):
        model = copy.deepcopy(model)
        head = model.head
        readout = mup.MuReadout(head.in_features, head.out_features, bias=head.bias is not None)
        readout.load_state_dict(head.state_dict())
        model.head = readout
        return model

    twin = with_readout(sp_model)
    mup.set_base_shapes(twin, with_readout(base_sp_model))  # rescale_params=True
    return twin


def _coordinates(model, x):
    """Each module's output mean |x| (mup's coord check `l1`) in one forward pass."""
    out, handles = {}, []
    for name, module in model.named_modules():

        def hook(module, inputs, output, name=name):
            out[name] = output.abs().mean().item()

        if name:
            handles.append(module.register_forward_hook(hook))
    logits = model(x)
    for h in handles:
        h.remove()
    return logits, out


@pytest.mark.parametrize(
    "stack, train",
    [
        ([], ["train.optimizer=adam", "train.lr=0.01", "train.weight_decay=0.001"]),
        ([], ["train.optimizer=sgd", "train.lr=0.1", "train.momentum=0.9",
              "train.weight_decay=0.001"]),
        (["model.block=residual", "model.norm=layernorm"], ["train.optimizer=adam"]),
        (["model.block=residual", "model.norm=batchnorm"], ["train.optimizer=sgd",
                                                             "train.lr=0.05"]),
    ],
)  # fmt: skip
def test_mup_parity_with_the_mup_package(stack, train):
    mup = reference_mup()
    common = [*stack, *train, "model.base_width=32", "init.bias=torch_default"]
    sp = config("model.width=128", *common)
    ours, _ = built(config("model.width=128", "init.parametrization=mup", *common))
    twin = _mup_twin(built(sp)[0], built(config("model.width=32", *common))[0])
    # the init: winit's µP draw is mup's rescaling of the same SP draw
    for (name, a), (_, b) in zip(ours.named_parameters(), twin.named_parameters(), strict=True):
        assert torch.equal(a, b), name
    optimizer = make_optimizer(ours, sp.train)
    fn = mup.MuAdam if sp.train.optimizer == "adam" else mup.MuSGD
    extra = {"momentum": sp.train.momentum} if sp.train.optimizer == "sgd" else {}
    theirs = fn(twin.parameters(), lr=sp.train.lr, weight_decay=sp.train.weight_decay, **extra)
    generator = torch.Generator().manual_seed(0)
    for step in range(4):
        x = torch.randn(32, 64, generator=generator)
        y = torch.randint(0, 10, (32,), generator=generator)
        for model, opt in ((ours, optimizer), (twin, theirs)):
            logits, model.coordinates = _coordinates(model, x)
            opt.zero_grad()
            nn.functional.cross_entropy(logits, y).backward()
            opt.step()
        assert ours.coordinates.keys() == twin.coordinates.keys()
        for name, value in ours.coordinates.items():
            assert value == pytest.approx(twin.coordinates[name], rel=1e-6, abs=1e-9), (step, name)
        for (name, a), (_, b) in zip(ours.named_parameters(), twin.named_parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=f"{step} {name}")


def test_zero_readout_outputs_exactly_zero_at_the_first_step():
    cfg = config("model.width=128", "model.base_width=32", "init.parametrization=mup",
                 "init.readout=zero", "init.bias=torch_default")  # fmt: skip
    model, report = built(cfg)
    assert isinstance(model.head, Readout)
    assert torch.count_nonzero(model(torch.randn(8, 64))) == 0
    (head,) = [r for r in report.layers if r.name == "head"]
    assert (head.target_std, head.scale) == (0.0, 0.0)
    assert [p.detail for p in report.parameters if p.name.startswith("head.")] == [
        "zero readout (mup)"
    ] * 2


def test_sp_is_unchanged_and_mup_at_its_base_width_is_sp():
    sp_model, sp_report = built(config("model.width=64"))
    assert not isinstance(sp_model.head, Readout) and not hasattr(sp_model, "parametrization")
    (group,) = make_optimizer(sp_model, config().train).param_groups
    assert (group["lr"], group["weight_decay"]) == (0.02, 0.0)
    # a base_width under SP changes nothing
    ignored, _ = built(config("model.width=64", "model.base_width=16"))
    assert all(
        torch.equal(a, b) for a, b in zip(sp_model.parameters(), ignored.parameters(), strict=True)
    )
    # µP at width_mult 1: the same weights and the same steps as SP
    mup_cfg = config("model.width=64", "init.parametrization=mup", "init.bias=torch_default")
    sp_cfg = config("model.width=64", "init.bias=torch_default")
    a, _ = built(mup_cfg)
    b, _ = built(sp_cfg)
    x, y = torch.randn(16, 64), torch.randint(0, 10, (16,))
    for model, cfg in ((a, mup_cfg), (b, sp_cfg)):
        opt = make_optimizer(model, cfg.train)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    # configs saved before these fields keep their hash; the fields show once used
    assert config_hash(load_config(None, [], "train")) == "c2bde6eec8ba"
    data = config_data(config())
    assert "parametrization" not in data["init"] and "base_width" not in data["model"]
    data = config_data(mup_cfg)
    assert data["init"]["parametrization"] == "mup" and "readout" not in data["init"]


@pytest.mark.parametrize(
    "sets, message",
    [
        (["model.layers=[{type: dense, units: 32}, {type: dense, units: 3}]",
          "model.input_shape=[2]"],
         "init.parametrization: mup scales a stack's width against model.base_width"),
    ],
)  # fmt: skip
def test_bad_combinations_are_one_error_line(sets, message):
    with pytest.raises(ConfigErrors) as caught:
        load_config(None, ["init.parametrization=mup", *sets], "train")
    (problem,) = caught.value.problems
    assert message in problem and "\n" not in problem, problem


def test_a_zero_readout_under_sp_zeroes_the_head_only():
    from weightinit_cli.experiments import initialized, load_dataset

    cfg = load_config(
        None, ["model.depth=2", "init.readout=zero", "init.bias=torch_default"], "train"
    )
    model, report = initialized(cfg, cfg.init.spec, load_dataset(cfg))
    params = dict(model.named_parameters())
    assert (
        torch.count_nonzero(params["head.weight"]) == 0
        and torch.count_nonzero(params["head.bias"]) == 0
    )
    assert torch.count_nonzero(params["dense1.weight"]) > 0
    records = {p.name: p for p in report.parameters}
    assert (
        records["head.weight"].detail == "zero readout" and records["head.weight"].target_std == 0
    )
