"""The layers a config's network is written in (`model.layers`, and the stacks spelt out),
and the field types and error helpers every config section shares. Checked by pydantic;
no torch.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from .activations import ACTIVATIONS
from .datasets import DATASETS
from .limits import FLOAT32_MAX, excerpt

# Limits that keep a typo (an extra zero or three) from becoming an out-of-memory crash.
MAX_SIZE = 1_000_000
MAX_DEPTH = 10_000
MAX_KERNEL = 1_000
MAX_SAMPLES = 100_000_000

ActivationName = Literal[tuple(ACTIVATIONS)]  # type: ignore[valid-type]
DatasetName = Literal[tuple(DATASETS)]  # type: ignore[valid-type]

Size = Annotated[int, Field(ge=1, le=MAX_SIZE)]
Kernel = Annotated[int, Field(ge=1, le=MAX_KERNEL)]


def within_float32(value: float) -> float:
    """A number torch can hold: larger ones become inf there, and a crash or NaN later."""
    if abs(value) > FLOAT32_MAX:
        # a float has a short form; an int past float range only its digit count
        small = isinstance(value, float) or abs(value) < 1e300
        got = f"{value:g}" if small else f"a number of {len(str(value))} digits"
        raise invalid(
            f"must be within ±{FLOAT32_MAX:.4g}, the range of float32, which torch computes "
            f"in; got {got}"
        )
    return value


Float32 = Annotated[float, AfterValidator(within_float32)]


def invalid(message: str) -> PydanticCustomError:
    """A validation error whose message pydantic prints as given, after the field path."""
    return PydanticCustomError("winit", "{reason}", {"reason": message})


def located(message: str, blame: str = "") -> PydanticCustomError:
    """A validation error whose message already starts with the path it is about.

    `blame`: the space-separated fields a --set must touch to be named as the cause
    (for errors raised above the fields they are about); default: where it is raised.
    """
    return PydanticCustomError("located", "{reason}", {"reason": message, "blame": blame})


def choice_or_number(choices: tuple[str, ...], number: type | tuple[type, ...]) -> BeforeValidator:
    """One readable error for a `Literal[...] | number` field instead of one per union member."""
    expected = ", ".join(choices) + f" or a {'whole ' if number is int else ''}number >= 0"

    def check(value: Any) -> Any:
        if isinstance(value, str) and value in choices:
            return value
        is_number = isinstance(value, number) and not isinstance(value, bool)
        # an int past float's range would overflow isfinite: it is past float32's anyway
        if is_number and abs(value) > FLOAT32_MAX:
            return within_float32(value)
        if is_number and math.isfinite(value) and value >= 0:
            return within_float32(value)
        raise invalid(f"must be {expected}; got {excerpt(value)}")

    return BeforeValidator(check)


class Section(BaseModel):
    # strict: a YAML "30" or `true` is not silently taken for a number.
    model_config = ConfigDict(
        extra="forbid", strict=True, allow_inf_nan=False, use_attribute_docstrings=True
    )


class DenseLayer(Section):
    type: Literal["dense"]
    units: Size
    """output features"""
    bias: bool = True


class ConvLayer(Section):
    type: Literal["conv2d", "conv3d"]
    channels: Size
    """output channels"""
    kernel_size: Kernel = 3
    stride: Kernel = 1
    padding: Annotated[
        Literal["same", "valid"] | Annotated[int, Field(ge=0)],
        choice_or_number(("same", "valid"), int),
    ] = "same"
    """same | valid | zeros added on each side"""
    groups: Size = 1
    bias: bool = True


class FlattenLayer(Section):
    type: Literal["flatten"]


class ActivationLayer(Section):
    type: Literal["activation"]
    fn: ActivationName
    negative_slope: Float32 = 0.01
    """slope for x < 0 (leaky_relu only)"""


class BatchNormLayer(Section):
    type: Literal["batchnorm"]


class DropoutLayer(Section):
    type: Literal["dropout"]
    p: float = Field(0.5, ge=0, lt=1)
    """probability of zeroing a unit"""


class PoolLayer(Section):
    type: Literal["pool"]
    kind: Literal["max", "avg", "first"] = "max"
    """max | avg; first: a sequence's first position (a class-token readout)"""
    size: Kernel = 2
    """window and stride"""
    global_: bool = Field(False, alias="global")
    """pool over all spatial positions (a sequence's: all of them, always); the output is
    flat (one value per channel or feature)"""


class LayerNormLayer(Section):
    type: Literal["layernorm"]
    """normalizes each example over its features (for conv layers: over channels and space;
    in a sequence: each position over its features)"""


class EmbeddingLayer(Section):
    type: Literal["embedding"]
    vocab_size: Size
    """the token ids it reads: 0 .. vocab_size - 1 (the input [T] is T of them)"""
    width: Size
    """features per token; a learned position embedding of that width is added"""


class AttentionLayer(Section):
    type: Literal["attention"]
    heads: Size = 4
    """heads, each on width / heads of the features; it outputs their values side by side
    (the output projection is the dense layer after it)"""
    bias: bool = True
    """biases of the query, key and value projections"""


class ResidualLayer(Section):
    type: Literal["residual"]
    branch: list[LayerSpec] = Field(min_length=1)
    """F of x + F(x): any layers, residual ones too"""
    skip: Annotated[DenseLayer | ConvLayer, Field(discriminator="type")] | None = None
    """a projection of x, where the branch changes its shape (default: x itself)"""


_LayerUnion = (
    DenseLayer
    | ConvLayer
    | FlattenLayer
    | ActivationLayer
    | BatchNormLayer
    | LayerNormLayer
    | DropoutLayer
    | PoolLayer
    | EmbeddingLayer
    | AttentionLayer
    | ResidualLayer
)
LayerSpec = Annotated[_LayerUnion, Field(discriminator="type")]
ResidualLayer.model_rebuild()
LAYER_TYPES: tuple[str, ...] = tuple(
    tag for cls in get_args(_LayerUnion) for tag in get_args(cls.model_fields["type"].annotation)
)

# The fields only a transformer stack reads, and those only the residual stacks of dense and
# conv layers read (a transformer's blocks are its own).
TRANSFORMER_FIELDS = ("heads", "mlp_ratio", "norm_position", "vocab_size")
RESIDUAL_STACK_FIELDS = ("block", "norm", "residual", "branch_depth")


def transformer_fields_fit(model: Any) -> None:
    """A transformer's own fields with a transformer stack only, the residual stacks' fields
    never with it, and heads that divide its width (`model`: a config.ModelConfig)."""
    if model.module is not None:
        return  # the check of a module's fields names them
    given = model.model_fields_set
    if model.type != "transformer":
        own = [f for f in TRANSFORMER_FIELDS if f in given]
        if own:
            raise located(
                f"model.{own[0]}: shapes a transformer stack; it needs model.type: transformer"
            )
        return
    other = [f for f in RESIDUAL_STACK_FIELDS if f in given]
    if other:
        raise located(
            f"model.{other[0]}: shapes the residual stacks of dense and conv layers; a "
            "transformer's blocks are its own (model.norm_position places their norms)"
        )
    if model.layers is not None:
        return
    if model.width % model.heads:
        raise located(
            f"model.heads: {model.heads} must divide model.width {model.width} (each head "
            "attends on width / heads of the features)",
            blame="model.heads model.width",
        )
    if model.vocab_size is None and len(model.input_shape) == 1:  # else the shape is named
        raise located(
            "model.vocab_size: a transformer needs one: how many token ids it reads "
            "(a token dataset, data.name pointer, fills it in)"
        )


def transformer_layers(model: Any) -> list[tuple[str | None, LayerSpec]]:
    """A transformer stack spelt out (`model`: a config.ModelConfig of type transformer): an
    embedding, depth blocks of an attention and an MLP residual block each, and a readout of
    the first token into the head. The attention's output projection and the MLP's last
    layer end their branches, where branch scaling and Fixup act."""
    width, norm = model.width, LayerNormLayer(type="layernorm")

    def dense(units: int) -> DenseLayer:
        return DenseLayer(type="dense", units=units, bias=model.bias)

    def residual(*branch: Any) -> tuple[None, ResidualLayer]:
        return None, ResidualLayer(type="residual", branch=list(branch))

    act = ActivationLayer(
        type="activation", fn=model.activation, negative_slope=model.negative_slope
    )
    mlp: list[Any] = [dense(model.mlp_ratio * width)]
    mlp += [act] if model.activation != "linear" else []
    mlp.append(dense(width))
    attention = AttentionLayer(type="attention", heads=model.heads, bias=model.bias)
    embedding = EmbeddingLayer(type="embedding", vocab_size=model.vocab_size, width=width)
    specs: list[tuple[str | None, Any]] = [("embedding", embedding)]
    if model.norm_position == "pre":  # x + F(LN(x)), and a last LN before the readout
        block = [residual(norm, attention, dense(width)), residual(norm, *mlp)]
        specs += [*block * model.depth, ("norm", norm)]
    else:  # LN(x + F(x))
        block = [residual(attention, dense(width)), (None, norm), residual(*mlp), (None, norm)]
        specs += block * model.depth
    readout = PoolLayer(type="pool", kind="first")
    return [*specs, ("readout", readout), ("head", dense(model.num_classes))]
