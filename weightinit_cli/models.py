"""The network a model config describes: first a pure-Python plan, then torch modules.

plan_layers checks every shape and the parameter budget without torch, so a config
that cannot be built fails at load time. build_model turns the same plan into an
nn.Sequential whose module names are the plan's names, so callers can zip the two.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import ActivationLayer, ConvLayer, DenseLayer, LayerSpec, ModelConfig, PoolLayer
from .errors import ShapeError

if TYPE_CHECKING:
    import torch

Shape = tuple[int, ...]

WEIGHTED_KINDS = ("dense", "conv2d", "conv3d")
MAX_PARAM_BYTES = 4 * 2**30  # float32 parameters; refused before anything is allocated
# input rank and its form, for the stack types and the conv layers
_INPUT_FORMS = {
    "dense": (1, "[features]"),
    "conv2d": (3, "[C, H, W]"),
    "conv3d": (4, "[C, D, H, W]"),
}
_TORCH_ACTIVATIONS = {
    "linear": "Identity",
    "relu": "ReLU",
    "leaky_relu": "LeakyReLU",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "selu": "SELU",
    "gelu": "GELU",
    "elu": "ELU",
    "silu": "SiLU",
}


@dataclass
class LayerPlan:
    """One module of the network, its shapes (without the batch dim) and parameters."""

    index: int
    name: str
    kind: str  # dense | conv2d | conv3d | flatten | activation | batchnorm | dropout | pool
    in_shape: Shape
    out_shape: Shape
    weight_shape: Shape | None = None  # PyTorch layout
    groups: int = 1
    # weighted layers: the activation after it (before the next weighted layer), if any;
    # activation layers: their own function
    activation: str | None = None
    negative_slope: float = 0.01
    params: int = 0


def _dims(shape: Shape) -> str:
    return "x".join(map(str, shape))


def _listed(shape: Shape) -> str:
    return f"[{', '.join(map(str, shape))}]"


def _specs(model: ModelConfig) -> list[tuple[str | None, LayerSpec]]:
    """The layers in order, each with a fixed name or None (numbered per type)."""
    if model.layers is not None:
        return [(None, spec) for spec in model.layers]
    hidden: LayerSpec
    if model.type == "dense":
        hidden = DenseLayer(type="dense", units=model.width, bias=model.bias)
    else:
        hidden = ConvLayer(
            type=model.type,
            channels=model.width,
            kernel_size=model.kernel_size,
            padding=model.padding,
            bias=model.bias,
        )
    block: list[tuple[str | None, LayerSpec]] = [(None, hidden)]
    if model.activation != "linear":
        act = ActivationLayer(
            type="activation", fn=model.activation, negative_slope=model.negative_slope
        )
        block.append((None, act))
    specs = block * model.depth
    if model.type != "dense":
        specs.append(
            ("pool", PoolLayer.model_validate({"type": "pool", "kind": "avg", "global": True}))
        )
    specs.append(("head", DenseLayer(type="dense", units=model.num_classes, bias=model.bias)))
    return specs


def _check_input(model: ModelConfig, shape: Shape) -> None:
    if model.layers is None:
        rank, form = _INPUT_FORMS[model.type]
        if len(shape) != rank:
            raise ShapeError(f"model.input_shape: {model.type} needs {form}; got {list(shape)}")
    elif len(shape) not in (1, 3, 4):
        raise ShapeError(
            f"model.input_shape: needs [features], [C, H, W] or [C, D, H, W]; got {list(shape)}"
        )


def _weights(weight: Shape, bias: bool) -> tuple[Shape, int]:
    """A weight shape and the parameter count of it plus its bias."""
    return weight, math.prod(weight) + (weight[0] if bias else 0)


def _conv(spec: ConvLayer, shape: Shape) -> tuple[Shape, Shape, int]:
    rank, form = _INPUT_FORMS[spec.type]
    if len(shape) != rank:
        hint = " (flat: put conv layers before flatten and dense)" if len(shape) == 1 else ""
        raise ShapeError(f"{spec.type} needs a {form} input; got {_listed(shape)}{hint}")
    channels, spatial = shape[0], shape[1:]
    if channels % spec.groups or spec.channels % spec.groups:
        raise ShapeError(
            f"groups {spec.groups} must divide the input channels ({channels}) "
            f"and the output channels ({spec.channels})"
        )
    k = spec.kernel_size
    if spec.padding == "same":
        if spec.stride != 1:  # as in torch, which cannot pad 'same' for strided convs
            raise ShapeError(f"padding 'same' needs stride 1; got stride {spec.stride}")
        out = spatial
    else:
        pad = 0 if spec.padding == "valid" else spec.padding
        if min(spatial) + 2 * pad < k:
            raise ShapeError(
                f"input {_dims(spatial)} is smaller than kernel {k} (padding {spec.padding})"
            )
        out = tuple((n + 2 * pad - k) // spec.stride + 1 for n in spatial)
    weight, params = _weights(
        (spec.channels, channels // spec.groups, *(k,) * (rank - 1)), spec.bias
    )
    return (spec.channels, *out), weight, params


def _pool(spec: PoolLayer, shape: Shape) -> Shape:
    if len(shape) not in (3, 4):
        raise ShapeError(f"pool needs a [C, H, W] or [C, D, H, W] input; got {_listed(shape)}")
    if spec.global_:
        return shape[:1]
    if min(shape[1:]) < spec.size:
        raise ShapeError(f"input {_dims(shape[1:])} is smaller than pool size {spec.size}")
    return (shape[0], *(n // spec.size for n in shape[1:]))


def _layer_shapes(spec: LayerSpec, shape: Shape) -> tuple[Shape, Shape | None, int]:
    """(out_shape, weight_shape, parameter count) of a layer on an input of `shape`."""
    if spec.type == "dense":
        if len(shape) != 1:
            raise ShapeError(
                f"input {_listed(shape)} is not flat; "
                "add a flatten layer (or a global pool) before it"
            )
        weight, params = _weights((spec.units, shape[0]), spec.bias)
        return (spec.units,), weight, params
    if spec.type in ("conv2d", "conv3d"):
        return _conv(spec, shape)
    if spec.type == "pool":
        return _pool(spec, shape), None, 0
    if spec.type == "flatten":
        return (math.prod(shape),), None, 0
    if spec.type == "batchnorm":
        return shape, None, 2 * shape[0]  # scale and shift per channel
    return shape, None, 0  # activation, dropout


def plan_layers(model: ModelConfig) -> list[LayerPlan]:
    """Every module of the network with its shapes; a ShapeError names a layer that cannot fit."""
    shape = tuple(model.input_shape)
    _check_input(model, shape)
    plans: list[LayerPlan] = []
    numbered: Counter[str] = Counter()
    for index, (fixed_name, spec) in enumerate(_specs(model)):
        key = spec.fn if spec.type == "activation" else spec.type
        if fixed_name is None:
            numbered[key] += 1
        name = fixed_name or f"{key}{numbered[key]}"
        try:
            out_shape, weight_shape, params = _layer_shapes(spec, shape)
        except ShapeError as exc:
            where = f"model.layers.{index}" if model.layers is not None else f"model: layer {index}"
            raise ShapeError(f"{where} ({spec.type}, {name!r}): {exc}") from None
        plan = LayerPlan(index, name, spec.type, shape, out_shape, weight_shape, params=params)
        if spec.type == "activation":
            plan.activation, plan.negative_slope = spec.fn, spec.negative_slope
        elif spec.type in ("conv2d", "conv3d"):
            plan.groups = spec.groups
        plans.append(plan)
        shape = out_shape
    if len(shape) != 1:
        raise ShapeError(
            f"model.layers: the last layer ({plans[-1].name!r}) outputs {_listed(shape)}; "
            "a classifier must end flat: add a global pool or a flatten, then a dense layer"
        )
    total = sum(plan.params for plan in plans)
    if total * 4 > MAX_PARAM_BYTES:
        raise ShapeError(
            f"model: needs {total * 4 / 2**30:,.1f} GiB for {total / 1e9:,.1f} billion parameters; "
            f"the limit is {MAX_PARAM_BYTES // 2**30} GiB"
        )
    _link_activations(plans)
    return plans


def _link_activations(plans: list[LayerPlan]) -> None:
    """Give each weighted layer the activation that follows it (for gain: auto and theory)."""
    for i, plan in enumerate(plans):
        if plan.kind not in WEIGHTED_KINDS:
            continue
        for later in plans[i + 1 :]:
            if later.kind in WEIGHTED_KINDS:
                break
            if later.kind == "activation":
                plan.activation, plan.negative_slope = later.activation, later.negative_slope
                break


def output_size(model: ModelConfig) -> int:
    """How many values (classes) the network outputs."""
    return plan_layers(model)[-1].out_shape[0]


def _module(nn: Any, plan: LayerPlan, spec: LayerSpec) -> torch.nn.Module:
    dims = len(plan.in_shape) - 1  # spatial dims of the input
    if spec.type == "dense":
        return nn.Linear(plan.in_shape[0], spec.units, bias=spec.bias)
    if spec.type in ("conv2d", "conv3d"):
        conv = nn.Conv2d if spec.type == "conv2d" else nn.Conv3d
        return conv(
            plan.in_shape[0],
            spec.channels,
            spec.kernel_size,
            stride=spec.stride,
            padding=spec.padding,
            groups=spec.groups,
            bias=spec.bias,
        )
    if spec.type == "flatten":
        return nn.Flatten()
    if spec.type == "activation":
        if spec.fn == "leaky_relu":
            return nn.LeakyReLU(spec.negative_slope)
        return getattr(nn, _TORCH_ACTIVATIONS[spec.fn])()
    if spec.type == "batchnorm":
        return getattr(nn, f"BatchNorm{max(dims, 1)}d")(plan.in_shape[0])
    if spec.type == "dropout":
        return nn.Dropout(spec.p)
    kind = spec.kind.capitalize()  # pool: Max | Avg
    if spec.global_:
        return nn.Sequential(getattr(nn, f"Adaptive{kind}Pool{dims}d")(1), nn.Flatten())
    return getattr(nn, f"{kind}Pool{dims}d")(spec.size)


def build_model(model: ModelConfig) -> torch.nn.Sequential:
    """The network as an nn.Sequential named like plan_layers; weights keep torch's defaults."""
    from torch import nn  # torch only here: planning (and so loading configs) stays torch-free

    plans = plan_layers(model)
    modules = OrderedDict(
        (plan.name, _module(nn, plan, spec))
        for plan, (_, spec) in zip(plans, _specs(model), strict=True)
    )
    return nn.Sequential(modules)
