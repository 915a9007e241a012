"""apply_weight_init: initialize every Linear and conv layer of any nn.Module.

An init is applied by a network plan (plan.py): a config's plan for the networks winit
builds, or, for any other module, `plan_module`'s walk of its leaf modules. The plan says
which activation follows each weighted layer (for `gain="auto"`): the first activation
module after it, looking past dropout, normalization, pooling and flatten modules, and
stopping at the next weighted layer. When the next module is something else (a custom
module, or the model applies its activation functionally in `forward`) winit cannot
tell and assumes linear (gain 1); the record says so in `activation_source`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from . import scratch, torch_init
from .activations import ACTIVATIONS
from .errors import WinitError
from .initspec import InitSpec
from .plan import Layer, NetworkPlan, linked

WEIGHTED_LAYERS = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
ACTIVATION_MODULES: dict[type[nn.Module], str] = {
    getattr(nn, a.torch_module): a.name for a in ACTIVATIONS.values()
}
# Modules that leave the choice of gain to whatever comes after them, by plan kind.
TRANSPARENT_MODULES: dict[type[nn.Module], str] = {
    nn.Dropout: "dropout",
    nn.Dropout1d: "dropout",
    nn.Dropout2d: "dropout",
    nn.Dropout3d: "dropout",
    nn.Flatten: "flatten",
    nn.Unflatten: "flatten",
    nn.modules.batchnorm._BatchNorm: "batchnorm",
    nn.LayerNorm: "norm",
    nn.GroupNorm: "norm",
    nn.modules.pooling._MaxPoolNd: "pool",
    nn.modules.pooling._AvgPoolNd: "pool",
    nn.modules.pooling._AdaptiveAvgPoolNd: "pool",
    nn.modules.pooling._AdaptiveMaxPoolNd: "pool",
}


@dataclass
class AppliedInit:
    """What was applied to one layer."""

    name: str
    kind: str
    shape: tuple[int, ...]
    fan_in: int
    fan_out: int
    spec: InitSpec  # the layer's own: `gain: auto` folded in
    target_std: float
    bias: str | None
    activation: str
    activation_source: str  # "module" | "assumed"
    bias_var: float = 0.0  # variance of the bias init (theory's σ_b²)
    lsuv_iterations: int | None = None  # lsuv: rescalings this layer needed
    lsuv_variance: float | None = None  # lsuv: the output variance it ended with

    @property
    def method(self) -> str:
        return self.spec.method

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.spec.params)

    @property
    def gain(self) -> float | None:
        return self.spec.gain


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


def leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules with no children, named, in registration order."""
    return [(n, m) for n, m in model.named_modules() if not list(m.children())]


def _kind(module: nn.Module) -> str:
    if isinstance(module, WEIGHTED_LAYERS):
        name = type(module).__name__.lower()  # conv2d, convtranspose2d
        return "dense" if name == "linear" else name.replace("transpose", "_transpose")
    if type(module) in ACTIVATION_MODULES:
        return "activation"
    for cls, kind in TRANSPARENT_MODULES.items():
        if isinstance(module, cls):
            return kind
    return type(module).__name__


def plan_module(model: nn.Module) -> NetworkPlan:
    """The plan of any module, from the order of its leaf modules (shapes are not traced)."""
    layers = []
    for index, (name, module) in enumerate(leaves(model)):
        weighted = isinstance(module, WEIGHTED_LAYERS)
        activation = ACTIVATION_MODULES.get(type(module))
        slope = module.negative_slope if isinstance(module, nn.LeakyReLU) else 0.0
        layers.append(
            Layer(
                index,
                name,
                _kind(module),
                None,
                None,
                weight_shape=tuple(module.weight.shape) if weighted else None,
                groups=getattr(module, "groups", 1),
                params=sum(p.numel() for p in module.parameters(recurse=False)),
                activation=activation,
                negative_slope=slope,
            )
        )
    return NetworkPlan(None, linked(layers))


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
    spec = InitSpec.create(method, params, gain=gain, bias=bias, backend=backend)
    return apply_init(model, spec, plan_module(model), seed=seed, data=data)


def apply_init(
    model: nn.Module,
    spec: InitSpec,
    plan: NetworkPlan,
    *,
    seed: int | None = None,
    data: torch.Tensor | None = None,
) -> InitReport:
    """Initialize the weighted layers of `plan` in `model` with `spec`."""
    if spec.data_dependent and data is None:
        raise WinitError(f"{spec.method} is data-dependent: pass a batch of inputs as data=")
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    modules = dict(model.named_modules())
    report = InitReport()
    for layer in plan.weighted:
        layer_spec = spec.for_layer(layer.activation or "linear", layer.negative_slope)
        report.layers.append(_init_layer(layer, modules[layer.name], layer_spec, rng, generator))
    report.skipped = [
        name
        for name, module in leaves(model)
        if not isinstance(module, WEIGHTED_LAYERS)
        and any(True for _ in module.parameters(recurse=False))
    ]
    if spec.data_dependent:
        _lsuv(model, modules, report, data, spec)
    return report


def _lsuv(
    model: nn.Module,
    modules: dict[str, nn.Module],
    report: InitReport,
    data: torch.Tensor,
    spec: InitSpec,
) -> None:
    """Rescale the orthogonal pre-init layer by layer to unit output variance."""
    from .lsuv import rescale_layers

    steps = rescale_layers(
        model,
        [(r.name, modules[r.name]) for r in report.layers],
        data,
        tol=spec.params["tol"],
        max_iters=int(spec.params["max_iters"]),
    )
    for record, step in zip(report.layers, steps, strict=True):
        record.lsuv_iterations = step.iterations
        record.lsuv_variance = step.variance
        # The std it aimed for is the std it found.
        weight = modules[record.name].weight.detach()
        record.target_std = weight.float().std(correction=0).item()


@torch.no_grad()
def _init_layer(
    layer: Layer,
    module: nn.Module,
    spec: InitSpec,
    rng: np.random.Generator,
    generator: torch.Generator | None,
) -> AppliedInit:
    shape, groups = tuple(module.weight.shape), getattr(module, "groups", 1)
    spec.check_shape(shape, groups, layer.name)  # first, for an error that names the layer
    # lsuv draws its orthogonal pre-init here, and is rescaled with data after
    if spec.backend == "scratch":
        values = torch.from_numpy(scratch.sample(spec, shape, rng, groups))
    else:
        values = torch_init.fill_(torch.empty(shape), spec, generator=generator, groups=groups)
    module.weight.copy_(values)
    fan_in, fan_out = layer.fans
    bias, bias_var = None, 0.0
    if module.bias is not None:
        bias, bias_var = spec.bias_init, spec.bias_variance(fan_in)
        module.bias.copy_(
            _bias_values(module.bias, bias, bias_var, shape, spec.backend, rng, generator)
        )
    return AppliedInit(
        name=layer.name,
        kind=type(module).__name__,
        shape=shape,
        fan_in=fan_in,
        fan_out=fan_out,
        spec=spec,
        target_std=spec.target_std(shape, groups),
        bias=bias,
        activation=layer.activation or "linear",
        activation_source=layer.activation_source,
        bias_var=bias_var,
    )


def _bias_values(
    bias: torch.Tensor,
    kind: str,
    variance: float,
    weight_shape: tuple[int, ...],
    backend: str,
    rng: np.random.Generator,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """The bias init: zeros, torch's default U(±1/√fan_in), or N(0, variance); drawn by the
    backend's own random numbers."""
    if kind == "zeros":
        return torch.zeros_like(bias)
    if backend == "scratch":
        if kind == "normal":
            values = rng.standard_normal(bias.numel(), dtype=np.float32) * np.float32(variance**0.5)
        else:
            values = scratch.torch_default_bias(weight_shape, bias.numel(), rng=rng)
        return torch.from_numpy(values).view_as(bias)
    cpu = torch.empty(bias.shape)
    if kind == "normal":
        return torch.nn.init.normal_(cpu, 0.0, variance**0.5, generator=generator)
    return torch_init.torch_default_bias_(cpu, weight_shape, generator=generator)
