"""The layer plan and the torch model built from it agree: names, shapes, parameters."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from pydantic import TypeAdapter
from torch import nn

from weightinit_cli.config import LayerSpec, ModelConfig
from weightinit_cli.errors import ShapeError
from weightinit_cli.loading import load_config
from weightinit_cli.models import build_model
from weightinit_cli.plan import Layer

CONFIGS = Path(__file__).parents[1] / "configs"


def unchecked(**fields) -> ModelConfig:
    """A ModelConfig that skipped its own shape check: its plan is made when first asked for."""
    if "layers" in fields:
        fields["layers"] = TypeAdapter(list[LayerSpec]).validate_python(fields["layers"])
    return ModelConfig.model_construct(**{**ModelConfig().model_dump(), **fields})


# Every layer type, pooling both ways, strides, groups and int padding, in one network.
EVERY_LAYER = ModelConfig(
    input_shape=[4, 9, 9],
    layers=[
        {"type": "conv2d", "channels": 8, "kernel_size": 3, "padding": "valid", "groups": 2},
        {"type": "batchnorm"},
        {"type": "activation", "fn": "leaky_relu", "negative_slope": 0.2},
        {"type": "conv2d", "channels": 8, "kernel_size": 3, "stride": 2, "padding": 1},
        {"type": "pool", "kind": "max", "size": 2},
        {"type": "activation", "fn": "tanh"},
        {"type": "dropout", "p": 0.1},
        {"type": "flatten"},
        {"type": "dense", "units": 6, "bias": False},
        {"type": "batchnorm"},
        {"type": "activation", "fn": "gelu"},
        {"type": "dense", "units": 3},
    ],
)
VOLUME = ModelConfig(
    input_shape=[2, 6, 6, 6],
    layers=[
        {"type": "conv3d", "channels": 4, "padding": "valid"},
        {"type": "batchnorm"},
        {"type": "activation", "fn": "selu"},
        {"type": "pool", "kind": "avg", "global": True},
        {"type": "dense", "units": 2},
    ],
)
MODELS = {
    "default": load_config().model,
    "stats": load_config(command="stats").model,
    "tanh_no_bias": ModelConfig(depth=3, width=8, activation="tanh", bias=False),
    "linear": ModelConfig(depth=2, width=8, activation="linear"),
    **{path.stem: load_config(path).model for path in sorted(CONFIGS.glob("*.yaml"))},
    "conv2d_valid": ModelConfig(type="conv2d", input_shape=[1, 9, 9], depth=3, padding="valid"),
    "every_layer": EVERY_LAYER,
    "volume": VOLUME,
}


@pytest.fixture(params=list(MODELS), scope="module")
def planned(request) -> tuple[ModelConfig, tuple[Layer, ...], nn.Sequential]:
    model = MODELS[request.param]
    torch.manual_seed(0)
    return model, model.plan.layers, build_model(model.plan)


def test_module_names_and_order_are_the_plans(planned) -> None:
    _, plans, net = planned
    assert [name for name, _ in net.named_children()] == [plan.name for plan in plans]
    assert [plan.index for plan in plans] == list(range(len(plans)))
    assert len({plan.name for plan in plans}) == len(plans)


def test_forward_shapes_match_the_plan(planned) -> None:
    model, plans, net = planned
    seen: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    for name, module in net.named_children():
        module.register_forward_hook(
            lambda mod, args, out, name=name: seen.__setitem__(
                name, (tuple(args[0].shape[1:]), tuple(out.shape[1:]))
            )
        )
    net.eval()
    with torch.no_grad():
        out = net(torch.zeros(2, *model.input_shape))
    assert tuple(out.shape) == (2, model.plan.outputs) == (2, model.num_classes)
    assert seen == {plan.name: (plan.in_shape, plan.out_shape) for plan in plans}


def test_parameter_counts_and_weight_shapes_match_the_plan(planned) -> None:
    _, plans, net = planned
    for plan, module in zip(plans, net.children(), strict=True):
        assert plan.params == sum(p.numel() for p in module.parameters()), plan.name
        weight = getattr(module, "weight", None) if plan.weight_shape else None
        assert plan.weight_shape == (tuple(weight.shape) if weight is not None else None)
        assert plan.groups == getattr(module, "groups", 1)


def test_stack_naming_and_following_activation() -> None:
    model = ModelConfig(depth=2, width=8, activation="leaky_relu", negative_slope=0.3)
    plans = model.plan.layers
    assert [p.name for p in plans] == ["dense1", "leaky_relu1", "dense2", "leaky_relu2", "head"]
    assert [(p.activation, p.negative_slope, p.activation_layer) for p in plans[::2]] == [
        ("leaky_relu", 0.3, "leaky_relu1"),
        ("leaky_relu", 0.3, "leaky_relu2"),
        (None, 0.0, None),
    ]
    assert [p.chained for p in model.plan.weighted] == [False, True, True]
    linear = ModelConfig(depth=2, width=8, activation="linear").plan.layers
    assert [(p.name, p.activation) for p in linear] == [
        ("dense1", None),
        ("dense2", None),
        ("head", None),
    ]
    conv = MODELS["conv2d"].plan.layers
    assert [p.name for p in conv[-3:]] == ["relu6", "pool", "head"]
    assert conv[0].weight_shape == (16, 1, 3, 3)


def test_activation_is_found_past_batchnorm_and_pooling() -> None:
    plans = {plan.name: plan for plan in EVERY_LAYER.plan.layers}
    assert (plans["conv2d1"].activation, plans["conv2d1"].negative_slope) == ("leaky_relu", 0.2)
    assert plans["conv2d2"].activation == "tanh"
    assert plans["dense1"].activation == "gelu"
    assert plans["dense2"].activation is None
    assert plans["conv2d1"].weight_shape == (8, 2, 3, 3)
    # theory carries its prediction through an activation, not through pooling or batchnorm
    assert [p.chained for p in EVERY_LAYER.plan.weighted] == [False, False, False, False]


def test_theory_chains_through_one_activation_only() -> None:
    # dense, relu, sigmoid, dense: theory knows the relu after dense1, not the sigmoid too
    stacked = ModelConfig(
        input_shape=[8],
        layers=[
            {"type": "dense", "units": 16},
            {"type": "activation", "fn": "relu"},
            {"type": "activation", "fn": "sigmoid"},
            {"type": "dense", "units": 16},
            {"type": "activation", "fn": "relu"},
            {"type": "dense", "units": 16},
        ],
    )
    assert [p.chained for p in stacked.plan.weighted] == [False, False, True]


def test_mixed_contains_the_seeds_layers() -> None:
    net = build_model(MODELS["mixed"].plan)
    described = {repr(module) for module in net.children()}
    assert "Linear(in_features=10, out_features=5, bias=True)" in described
    assert "ReLU()" in described
    assert "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))" in described


def test_construction_is_deterministic_given_the_seed() -> None:
    states = []
    for _ in range(2):
        torch.manual_seed(3)
        states.append(build_model(MODELS["every_layer"].plan).state_dict())
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {"type": "conv3d", "input_shape": [1, 8, 8]},
            "model.input_shape: conv3d needs [C, D, H, W]; got [1, 8, 8]",
        ),
        ({"input_shape": [1, 8, 8]}, "model.input_shape: dense needs [features]; got [1, 8, 8]"),
        (
            {"input_shape": [3, 8], "layers": [{"type": "dense", "units": 2}]},
            "model.input_shape: needs [features], [C, H, W] or [C, D, H, W]; got [3, 8]",
        ),
        (
            {"input_shape": [4], "layers": [{"type": "conv2d", "channels": 2}]},
            "model.layers.0 (conv2d, 'conv2d1'): conv2d needs a [C, H, W] input; got [4] "
            "(flat: put conv layers before flatten and dense)",
        ),
        (
            {"input_shape": [1, 4, 4], "layers": [{"type": "conv2d", "channels": 2, "stride": 2}]},
            "model.layers.0 (conv2d, 'conv2d1'): padding 'same' needs stride 1; got stride 2",
        ),
        (
            {"input_shape": [1, 4, 4], "layers": [{"type": "pool", "size": 5}]},
            "model.layers.0 (pool, 'pool1'): input 4x4 is smaller than pool size 5",
        ),
        (
            {"input_shape": [4], "layers": [{"type": "pool", "global": True}]},
            "model.layers.0 (pool, 'pool1'): pool needs a [C, H, W] or [C, D, H, W] input; got [4]",
        ),
    ],
)
def test_impossible_networks_raise_shape_errors_naming_the_layer(model: dict, message: str) -> None:
    with pytest.raises(ShapeError) as caught:
        _ = unchecked(**model).plan
    assert str(caught.value) == message


def test_oversized_models_are_refused_before_allocating() -> None:
    huge = unchecked(width=10**6, depth=1000)  # 10**12 parameters in one layer
    start = time.perf_counter()
    with pytest.raises(ShapeError, match=r"needs [\d,.]+ GiB .*; the limit is 4 GiB"):
        _ = huge.plan
    assert time.perf_counter() - start < 1.0
