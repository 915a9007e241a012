"""apply_weight_init: walk a model's modules and initialize every Linear and conv layer.

Which activation follows a layer (for ``gain="auto"``) is read from the module
order: the first activation module after the layer, looking past dropout,
normalization, pooling and flatten modules, and stopping at the next weighted
layer. When the next module is something else (a custom module, or the model
applies its activation functionally in ``forward``) winit cannot tell and
assumes linear (gain 1); the record says so in ``activation_source``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from . import scratch, torch_init
from .errors import WinitError
from .fans import calculate_gain, fan_in_and_fan_out
from .methods import (
    canonical_name,
    check_weight_shape,
    expected_std,
    get_method,
    he_gain,
    resolve_params,
)

WEIGHTED_LAYERS = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu",
    nn.LeakyReLU: "leaky_relu",
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
    nn.SELU: "selu",
    nn.GELU: "gelu",
    nn.ELU: "elu",
    nn.SiLU: "silu",
    nn.Identity: "linear",
}
# Modules that leave the choice of gain to whatever comes after them.
TRANSPARENT = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.Flatten,
    nn.Unflatten,
    nn.modules.batchnorm._BatchNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
)


@dataclass
class AppliedInit:
    """What apply_weight_init did to one layer."""

    name: str
    kind: str
    shape: tuple[int, ...]
    fan_in: int
    fan_out: int
    method: str
    params: dict[str, Any]
    gain: float | None
    target_std: float
    bias: str | None
    activation: str
    activation_source: str  # "module" | "assumed"
    bias_var: float = 0.0  # variance of the bias init (theory's σ_b²)
    lsuv_iterations: int | None = None  # lsuv: rescalings this layer needed
    lsuv_variance: float | None = None  # lsuv: the output variance it ended with

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass
class InitReport:
    """Per-layer records of what was applied, and the modules left untouched."""

    layers: list[AppliedInit] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[AppliedInit]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> AppliedInit:
        return self.layers[index]


@dataclass(frozen=True)
class FollowingActivation:
    """The activation after a weighted layer, as read from the module order."""

    fn: str  # relu, tanh, ..., or "linear"
    negative_slope: float
    module: str | None  # its module name; None when there is no activation module
    source: str  # "module": read from the model; "assumed": winit could not tell


def following_activations(model: nn.Module) -> dict[str, FollowingActivation]:
    """For each weighted layer's module name: the activation that follows it."""
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    found: dict[str, FollowingActivation] = {}
    for i, (name, module) in enumerate(leaves):
        if not isinstance(module, WEIGHTED_LAYERS):
            continue
        found[name] = FollowingActivation("linear", 0.0, None, "module")
        for next_name, nxt in leaves[i + 1 :]:
            if type(nxt) in ACTIVATIONS:
                slope = nxt.negative_slope if isinstance(nxt, nn.LeakyReLU) else 0.0
                found[name] = FollowingActivation(
                    ACTIVATIONS[type(nxt)], slope, next_name, "module"
                )
                break
            if isinstance(nxt, WEIGHTED_LAYERS):
                break
            if not isinstance(nxt, TRANSPARENT):
                found[name] = FollowingActivation("linear", 0.0, None, "assumed")
                break
    return found


def _layer_params(
    method: str, params: dict[str, Any], gain: float | str | None, act: FollowingActivation
) -> dict[str, Any]:
    """The method's parameters for one layer, with the gain choice folded in."""
    layer_params = dict(params)
    if gain is None:
        return layer_params
    if gain == "auto":
        if method in ("he_uniform", "he_normal"):
            layer_params.update(nonlinearity=act.fn, a=act.negative_slope)
        elif get_method(method).takes_gain:
            slope = act.negative_slope if act.fn == "leaky_relu" else None
            layer_params["gain"] = calculate_gain(act.fn, slope)
        return layer_params
    layer_params["gain"] = float(gain)
    return layer_params


def _gain_used(method: str, params: dict[str, Any]) -> float | None:
    if not get_method(method).takes_gain:
        return None
    resolved = resolve_params(method, params)
    return he_gain(resolved) if method in ("he_uniform", "he_normal") else resolved["gain"]


def apply_weight_init(
    model: nn.Module,
    method: str = "he_normal",
    backend: str = "scratch",
    gain: float | str | None = None,
    seed: int | None = None,
    bias: str | None = None,
    data: torch.Tensor | None = None,
    **params: Any,
) -> InitReport:
    """Initialize every Linear, ConvNd and ConvTransposeNd weight (and bias) of `model`.

    gain: None keeps the method's own default (as torch.nn.init has it); "auto"
    uses calculate_gain of the activation that follows each layer; a number sets it.
    bias: "zeros" or "torch_default" (U(±1/√fan_in)); None means torch_default for
    method="torch_default" and zeros otherwise; variance_scaling's bias_var > 0 draws
    biases N(0, bias_var) instead.
    data: a batch of inputs, for data-dependent methods (lsuv).
    """
    method = canonical_name(method)
    if backend not in ("scratch", "torch"):
        raise WinitError(f"backend must be 'scratch' or 'torch'; got {backend!r}")
    if isinstance(gain, str) and gain not in ("auto", "default"):
        raise WinitError(f"gain must be a number, 'auto' or 'default'; got {gain!r}")
    gain = None if gain == "default" else gain
    if gain not in (None, "auto") and not get_method(method).takes_gain:
        raise WinitError(f"{method} does not take a gain")
    bias = bias or ("torch_default" if method == "torch_default" else "zeros")
    if bias not in ("zeros", "torch_default"):
        raise WinitError(f"bias must be 'zeros' or 'torch_default'; got {bias!r}")
    resolve_params(method, params)
    if get_method(method).data_dependent and data is None:
        raise WinitError(f"{method} is data-dependent: pass a batch of inputs as data=")

    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    activations = following_activations(model)
    report = InitReport()
    for name, module in model.named_modules():
        if isinstance(module, WEIGHTED_LAYERS):
            report.layers.append(
                _init_layer(
                    name,
                    module,
                    method,
                    backend,
                    gain,
                    bias,
                    params,
                    activations[name],
                    rng,
                    generator,
                )
            )
        elif not list(module.children()) and any(True for _ in module.parameters(recurse=False)):
            report.skipped.append(name)
    if get_method(method).data_dependent:
        _lsuv(model, report, data, backend)
    return report


def _lsuv(model: nn.Module, report: InitReport, data: torch.Tensor, backend: str) -> None:
    """Rescale the orthogonal pre-init layer by layer to unit output variance."""
    from .lsuv import rescale_layers

    modules = dict(model.named_modules())
    first = report.layers[0].params if report.layers else {}
    steps = rescale_layers(
        model,
        [(r.name, modules[r.name]) for r in report.layers],
        data,
        backend=backend,
        tol=first.get("tol", 0.1),
        max_iters=int(first.get("max_iters", 10)),
    )
    for record, step in zip(report.layers, steps, strict=True):
        record.lsuv_iterations = step.iterations
        record.lsuv_variance = step.variance
        # The std it aimed for is the std it found.
        weight = modules[record.name].weight.detach()
        record.target_std = weight.float().std(correction=0).item()


def _scratch_into(
    weight: torch.Tensor,
    method: str,
    shape: tuple[int, ...],
    rng: np.random.Generator,
    groups: int,
    params: dict[str, Any],
) -> None:
    """The scratch weights, written straight into a CPU float32 contiguous parameter.

    That saves a second tensor and the copy; any other parameter (another dtype or
    device, channels_last) gets a copy of a new array. Same values either way.
    """
    target = weight.detach()
    if target.device.type == "cpu" and target.dtype == torch.float32 and target.is_contiguous():
        scratch.init(method, shape, rng=rng, groups=groups, out=target.numpy(), **params)
        # Writes through NumPy bypass autograd's in-place tracking; record one.
        torch.autograd.graph.increment_version(weight)
    else:
        weight.copy_(
            torch.from_numpy(scratch.init(method, shape, rng=rng, groups=groups, **params))
        )


def _init_layer(
    name: str,
    module: nn.Module,
    method: str,
    backend: str,
    gain: float | str | None,
    bias: str,
    params: dict[str, Any],
    activation: FollowingActivation,
    rng: np.random.Generator,
    generator: torch.Generator | None,
) -> AppliedInit:
    weight = module.weight
    shape = tuple(weight.shape)
    groups = getattr(module, "groups", 1)
    check_weight_shape(method, name, shape, groups)
    layer_params = _layer_params(method, params, gain, activation)
    resolved = resolve_params(method, layer_params)
    # lsuv starts from an orthogonal init; apply_weight_init rescales it with data after.
    draw, draw_params = (
        ("orthogonal", {"gain": resolved["gain"]}) if method == "lsuv" else (method, layer_params)
    )
    fan_in, fan_out = fan_in_and_fan_out(shape)
    bias_var = resolved.get("bias_var", 0.0)
    if bias_var:
        bias = "normal"
    with torch.no_grad():
        if backend == "scratch":
            _scratch_into(weight, draw, shape, rng, groups, draw_params)
        else:
            weight.copy_(
                torch_init.init(draw, shape, generator=generator, groups=groups, **draw_params)
            )
        if module.bias is not None:
            if bias == "normal":
                _normal_bias(module.bias, bias_var, backend, rng, generator)
            elif bias == "zeros":
                module.bias.zero_()
            elif backend == "scratch":
                module.bias.copy_(
                    torch.from_numpy(
                        scratch.torch_default_bias(shape, module.bias.numel(), rng=rng)
                    )
                )
            else:
                cpu_bias = torch.empty(module.bias.shape)
                torch_init.torch_default_bias_(cpu_bias, shape, generator=generator)
                module.bias.copy_(cpu_bias)
    if bias == "torch_default":
        bias_var = 1.0 / (3 * fan_in) if fan_in else 0.0
    return AppliedInit(
        name=name,
        kind=type(module).__name__,
        shape=shape,
        fan_in=fan_in,
        fan_out=fan_out,
        method=method,
        params=resolved,
        gain=_gain_used(method, layer_params),
        target_std=expected_std(method, shape, layer_params, groups=groups),
        bias=bias if module.bias is not None else None,
        activation=activation.fn,
        activation_source=activation.source,
        bias_var=bias_var if module.bias is not None else 0.0,
    )


def _normal_bias(
    bias: torch.Tensor,
    variance: float,
    backend: str,
    rng: np.random.Generator,
    generator: torch.Generator | None,
) -> None:
    """Biases N(0, variance), drawn by the backend's own random numbers."""
    std = variance**0.5
    if backend == "scratch":
        values = rng.standard_normal(bias.numel(), dtype=np.float32) * np.float32(std)
        bias.copy_(torch.from_numpy(values).view_as(bias))
    else:
        cpu_bias = torch.empty(bias.shape)
        torch.nn.init.normal_(cpu_bias, 0.0, std, generator=generator)
        bias.copy_(cpu_bias)
