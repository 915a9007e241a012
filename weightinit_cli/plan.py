"""The network plan: every layer of a network, its shapes, weights and fans, made once.

Pure Python: no torch, no NumPy. A config's network is planned once, while the config is
validated (`ModelConfig.plan`), and the plan travels with the config: models.py builds
the torch modules from it, apply.py and the probe find the weighted layers in it and the
activation that follows each, the theory reads its fans and how layers connect, the
metrics columns take its names and a sweep its cost. A plan can also describe a module
winit did not build (apply.plan_module walks any nn.Module): its layers then have no
config `spec`, and shapes only where they were traced.

A plan is its layers in forward order, each named as its module is (a dotted path once
modules nest). Whoever reads a plan goes by `weighted` and each layer's `activation`,
`activation_layer` and `chained` fields, never by list position or neighbours, so that a
residual block (a branch and a skip, which the next issue adds as a layer holding layers
of its own) changes what a plan holds, not how it is read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from .errors import ShapeError
from .fans import fan_in_and_fan_out

Shape = tuple[int, ...]

MAX_PARAM_BYTES = 4 * 2**30  # float32 parameters; refused before anything is allocated
# layers the activation after a weighted layer is looked for past (they keep the choice of
# gain to whatever follows them)
TRANSPARENT = ("flatten", "batchnorm", "layernorm", "dropout", "pool", "norm")
# layers that hand a weighted layer's activation on to the next weighted layer unchanged
# in second moment: the mean-field prediction carries on through them (elsewhere it
# restarts from the measured input)
CHAINING = ("activation", "flatten")
# input rank -> its form
INPUT_FORMS = {1: "[features]", 3: "[C, H, W]", 4: "[C, D, H, W]"}


@dataclass(frozen=True)
class Layer:
    """One layer (module) of the network."""

    index: int  # position in forward order
    name: str  # the module's name in the model
    kind: str  # dense | conv2d | conv3d | flatten | activation | batchnorm | dropout | pool |
    # layernorm | embedding | attention | residual (a sequence [T, E] is a rank-2 shape)
    in_shape: Shape | None  # without the batch dimension; None where unknown
    out_shape: Shape | None
    spec: Any = None  # the config layer it was planned from; None for a module winit did not build
    weight_shape: Shape | None = None  # PyTorch layout; None for a layer without weights
    groups: int = 1
    params: int = 0
    # weighted layers: the activation after it (None: none before the next weighted layer)
    # and the layer that applies it; activation layers: their own function
    activation: str | None = None
    negative_slope: float = 0.0
    activation_layer: str | None = None
    activation_source: str = "module"  # "assumed" where an unknown module hides it
    # weighted layers: the kinds of the TRANSPARENT layers between it and its activation
    # (theory predicts the activation only through flattens: a norm or a dropout changes it)
    through: tuple[str, ...] = ()
    # conv layers: the mean fraction of the kernel's taps that fall inside the input (the
    # rest read zero padding): the fan-in an output sees, on average, is fan_in times this
    taps_inside: float = 1.0
    # weighted layers: whether only activations and flattens stand between the previous
    # weighted layer and this one, so that theory carries its prediction on
    chained: bool = False
    # a residual block (kind "residual"): its branch F, in order, and the projection of its
    # skip (None: the skip is x itself); it outputs skip(x) + F(x)
    branch: tuple[Layer, ...] = ()
    skip: Layer | None = None

    @property
    def weighted(self) -> bool:
        return self.weight_shape is not None

    @property
    def fans(self) -> tuple[int, int]:
        """(fan_in, fan_out) of the weight, as torch computes them."""
        assert self.weight_shape is not None, f"{self.name} has no weight"
        return fan_in_and_fan_out(self.weight_shape)


@dataclass(frozen=True)
class NetworkPlan:
    input_shape: Shape | None
    layers: tuple[Layer, ...]
    # a module winit did not build: what it outputs and how many parameters it holds in
    # all (its layers are the modules a traced forward called, which may not hold them all)
    output_shape: Shape | None = None
    total_parameters: int | None = None

    @cached_property
    def all_layers(self) -> tuple[Layer, ...]:
        """Every layer, those inside residual blocks too (a block, then its branch, then its
        skip projection), in forward order."""
        return tuple(flat_layers(self.layers))

    @cached_property
    def weighted(self) -> tuple[Layer, ...]:
        """The layers with a weight (Dense and conv), in forward order."""
        return tuple(layer for layer in self.all_layers if layer.weighted)

    @property
    def outputs(self) -> int:
        """How many values (classes) the network outputs."""
        shape = self.output_shape or self.layers[-1].out_shape
        assert shape is not None, "the output shape was not traced"
        return shape[0]

    @property
    def parameters(self) -> int:
        if self.total_parameters is not None:
            return self.total_parameters
        return sum(layer.params for layer in self.layers)

    @cached_property
    def values_per_example(self) -> tuple[int, int]:
        """(the values every layer outputs together, the most one layer outputs) per example:
        what a batch's activations take."""
        sizes = [_values(layer) for layer in self.all_layers if layer.out_shape]
        return sum(sizes), max(sizes, default=0)

    def has(self, *kinds: str) -> bool:
        return any(layer.kind in kinds for layer in self.all_layers)


def _values(layer: Layer) -> int:
    """The values a layer keeps per example: its output, and an attention layer's query, key
    and value too, and each head's T x T scores and their softmax (which backward keeps)."""
    assert layer.out_shape is not None
    values = math.prod(layer.out_shape)
    if layer.kind == "attention" and layer.spec is not None:
        length = layer.out_shape[0]
        values += 3 * values + 2 * layer.spec.heads * length * length
    return values


def flat_layers(layers: Iterable[Layer]) -> Iterator[Layer]:
    """`layers` with the branch and skip of each residual block after it, recursively."""
    for layer in layers:
        yield layer
        yield from flat_layers(layer.branch)
        if layer.skip is not None:
            yield layer.skip


def _dims(shape: Shape) -> str:
    return "x".join(map(str, shape))


def _listed(shape: Shape) -> str:
    return f"[{', '.join(map(str, shape))}]"


def _with_bias(weight: Shape, bias: bool) -> tuple[Shape, int]:
    """A weight shape and the parameter count of it plus its bias."""
    return weight, math.prod(weight) + (weight[0] if bias else 0)


def _conv(spec: Any, shape: Shape) -> tuple[Shape, Shape, int]:
    rank = 3 if spec.type == "conv2d" else 4
    if len(shape) != rank:
        hint = " (flat: put conv layers before flatten and dense)" if len(shape) == 1 else ""
        raise ShapeError(
            f"{spec.type} needs a {INPUT_FORMS[rank]} input; got {_listed(shape)}{hint}"
        )
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
    weight, params = _with_bias(
        (spec.channels, channels // spec.groups, *(k,) * (rank - 1)), spec.bias
    )
    return (spec.channels, *out), weight, params


def taps_inside(
    spatial: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
) -> float:
    """The mean fraction of a zero-padded conv's kernel taps that read the input rather than
    the padding, over its output positions (per dimension, multiplied)."""
    fraction = 1.0
    for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation, strict=True):
        outputs = (n + 2 * p - d * (k - 1) - 1) // s + 1
        if outputs < 1:
            return 1.0
        inside = sum(1 for o in range(outputs) for j in range(k) if 0 <= o * s - p + j * d < n)
        fraction *= inside / (outputs * k)
    return fraction


def _pool(spec: Any, shape: Shape) -> Shape:
    if len(shape) == 2:  # a sequence: over its positions, to one value per feature
        if not spec.global_ and spec.kind != "first":
            raise ShapeError(
                f"a sequence {_listed(shape)} is pooled over all its positions: give it "
                "global: true (or kind: first, its first position)"
            )
        return shape[1:]
    if spec.kind == "first":
        raise ShapeError(
            f"kind first reads a sequence's first position; the input {_listed(shape)} is not "
            "a sequence [T, E] (one comes from an embedding)"
        )
    if len(shape) not in (3, 4):
        raise ShapeError(f"pool needs a [C, H, W] or [C, D, H, W] input; got {_listed(shape)}")
    if spec.global_:
        return shape[:1]
    if min(shape[1:]) < spec.size:
        raise ShapeError(f"input {_dims(shape[1:])} is smaller than pool size {spec.size}")
    return (shape[0], *(n // spec.size for n in shape[1:]))


def _sequence(spec: Any, shape: Shape) -> tuple[Shape, int]:
    """(out_shape, parameter count) of an embedding (token ids [T] -> [T, width], a row per
    token id and per position) or an attention layer ([T, E] -> [T, E]; its query, key and
    value projections are each a Linear(E, E))."""
    if spec.type == "embedding":
        if len(shape) != 1:
            raise ShapeError(f"embedding reads token ids, an input [T]; got {_listed(shape)}")
        return (shape[0], spec.width), (spec.vocab_size + shape[0]) * spec.width
    if len(shape) != 2:
        raise ShapeError(
            f"attention needs a sequence [T, E] (an embedding makes one); got {_listed(shape)}"
        )
    e = shape[1]
    if e % spec.heads:
        raise ShapeError(f"heads {spec.heads} must divide the width {e} of its input")
    return shape, 3 * (e * e + (e if spec.bias else 0))


def _shapes(spec: Any, shape: Shape) -> tuple[Shape, Shape | None, int]:
    """(out_shape, weight_shape, parameter count) of a layer on an input of `shape`."""
    if spec.type == "dense":  # on a sequence [T, E]: on each position's features
        if len(shape) not in (1, 2):
            raise ShapeError(
                f"input {_listed(shape)} is not flat; "
                "add a flatten layer (or a global pool) before it"
            )
        weight, params = _with_bias((spec.units, shape[-1]), spec.bias)
        return (*shape[:-1], spec.units), weight, params
    if spec.type in ("embedding", "attention"):
        out_shape, params = _sequence(spec, shape)
        return out_shape, None, params
    if spec.type in ("conv2d", "conv3d"):
        return _conv(spec, shape)
    if spec.type == "pool":
        return _pool(spec, shape), None, 0
    if spec.type == "flatten":
        return (math.prod(shape),), None, 0
    if spec.type == "batchnorm":
        if len(shape) == 2:
            raise ShapeError(
                f"batchnorm normalizes channels over the batch; on a sequence {_listed(shape)} "
                "use layernorm, which normalizes each position"
            )
        return shape, None, 2 * shape[0]  # scale and shift per channel
    if spec.type == "layernorm":  # per feature; per channel over a conv's [C, ...]
        return shape, None, 2 * (shape[1] if len(shape) == 2 else shape[0])
    return shape, None, 0  # activation, dropout


def plan_network(
    input_shape: Sequence[int],
    specs: Iterable[tuple[str | None, Any]],
    where: Callable[[int], str],
) -> NetworkPlan:
    """The plan of a network of config layers: `specs` are (a fixed name or None, a layer
    spec with a `type` and that type's fields); unnamed layers are numbered per type
    (dense1, relu1, ...). A ShapeError names the first layer that cannot fit, located by
    `where(index)`."""
    shape = tuple(input_shape)
    if len(shape) not in INPUT_FORMS:
        raise ShapeError(
            f"model.input_shape: needs {', '.join(list(INPUT_FORMS.values())[:-1])} or "
            f"{INPUT_FORMS[4]}; got {list(shape)}"
        )
    layers, shape = _plan_list(specs, shape, where, "")
    if len(shape) != 1:
        raise ShapeError(
            f"model.layers: the last layer ({layers[-1].name!r}) outputs {_listed(shape)}; "
            "a classifier must end flat: add a global pool or a flatten, then a dense layer"
        )
    plan = NetworkPlan(tuple(input_shape), linked(layers))
    total = plan.parameters
    if total * 4 > MAX_PARAM_BYTES:
        raise ShapeError(
            f"model: needs {total * 4 / 2**30:,.1f} GiB for {total / 1e9:,.1f} billion parameters; "
            f"the limit is {MAX_PARAM_BYTES // 2**30} GiB"
        )
    return plan


def _plan_list(
    specs: Iterable[tuple[str | None, Any]], shape: Shape, where: Callable[[int], str], prefix: str
) -> tuple[list[Layer], Shape]:
    """The layers of `specs` on an input of `shape`, named `prefix` + their name, and the
    shape they output."""
    layers: list[Layer] = []
    numbered: dict[str, int] = {}
    for index, (fixed_name, spec) in enumerate(specs):
        key = spec.fn if spec.type == "activation" else spec.type
        if fixed_name is None:
            numbered[key] = numbered.get(key, 0) + 1
        name = prefix + (fixed_name or f"{key}{numbered[key]}")
        if spec.type == "embedding" and (prefix or index):
            raise ShapeError(
                f"{where(index)} (embedding, {name.rpartition('.')[2]!r}): reads the token ids "
                "the network is given, so it must be the first layer"
            )
        if spec.type == "residual":
            layer = _residual(index, name, spec, shape, where(index))
        else:
            layer = _layer(index, name, spec, shape, where(index))
        layers.append(layer)
        shape = layer.out_shape
    return layers, shape


def _layer(index: int, name: str, spec: Any, shape: Shape, where: str) -> Layer:
    """One config layer on an input of `shape`."""
    try:
        out_shape, weight_shape, params = _shapes(spec, shape)
    except ShapeError as exc:
        raise ShapeError(f"{where} ({spec.type}, {name.rpartition('.')[2]!r}): {exc}") from None
    layer = Layer(index, name, spec.type, shape, out_shape, spec, weight_shape, params=params)
    if spec.type == "activation":
        return replace(layer, activation=spec.fn, negative_slope=_slope(spec))
    if spec.type in ("conv2d", "conv3d"):
        dims = len(shape) - 1
        pad = {"same": (spec.kernel_size - 1) // 2, "valid": 0}.get(spec.padding, spec.padding)
        k = (spec.kernel_size,) * dims
        inside = taps_inside(shape[1:], k, (spec.stride,) * dims, (pad,) * dims, (1,) * dims)
        return replace(layer, groups=spec.groups, taps_inside=inside)
    return layer


def _residual(index: int, name: str, spec: Any, shape: Shape, where: str) -> Layer:
    """A residual block: its branch planned on the block's input, the skip projection too,
    and the two checked to meet in one shape."""
    branch, out = _plan_list(
        [(None, s) for s in spec.branch], shape, lambda i: f"{where}.branch.{i}", f"{name}.branch."
    )
    skip, skip_out = None, shape
    if spec.skip is not None:
        skip = _layer(-1, f"{name}.skip", spec.skip, shape, f"{where}.skip")
        skip_out = skip.out_shape
    if out != skip_out:
        gives = (
            f"the skip projection gives {_listed(skip_out)}"
            if skip
            else (f"the skip passes its input {_listed(skip_out)} on")
        )
        hint = "" if skip else " (add a skip: projection to that shape)"
        raise ShapeError(
            f"{where} (residual, {name.rpartition('.')[2]!r}): the branch outputs "
            f"{_listed(out)} but {gives}; they must be the same shape to add{hint}"
        )
    params = sum(layer.params for layer in branch) + (skip.params if skip else 0)
    return Layer(
        index, name, "residual", shape, out, spec, params=params, branch=linked(branch), skip=skip
    )


def _slope(spec: Any) -> float:
    return spec.negative_slope if spec.fn == "leaky_relu" else 0.0


def linked(layers: Sequence[Layer]) -> tuple[Layer, ...]:
    """The layers with each weighted one given the activation that follows it (looking past
    TRANSPARENT layers, stopping at the next weighted layer; an unknown layer hides it, and
    then linear is assumed) and whether theory can chain into it from the one before."""
    out = list(layers)
    previous_weighted = False
    between: list[str] = []
    for i, layer in enumerate(out):
        if not layer.weighted:
            between.append(layer.kind)
            continue
        found: dict[str, Any] = {
            "activation": None,
            "activation_layer": None,
            "negative_slope": 0.0,
        }
        through: list[str] = []
        for later in out[i + 1 :]:
            if later.weighted:
                break
            if later.kind == "activation":
                found["through"] = tuple(through)
                found.update(
                    activation=later.activation,
                    activation_layer=later.name,
                    negative_slope=later.negative_slope,
                )
                break
            if later.kind not in TRANSPARENT:
                found["activation_source"] = "assumed"
                break
            through.append(later.kind)
        # Theory applies the one activation recorded on the layer before; a second one
        # in between would go unmodelled, so the prediction restarts from the measurement.
        chained = (
            previous_weighted
            and all(kind in CHAINING for kind in between)
            and between.count("activation") <= 1
        )
        out[i] = replace(layer, chained=chained, **found)
        previous_weighted, between = True, []
    return tuple(out)
