"""apply_weight_init: initialize every parameter of any nn.Module, and say how.

An init is applied by a network plan (plan.py): a config's plan for the networks winit
builds, or, for any other module, `plan_module`'s walk of its leaf modules. The plan's
weighted layers (Linear, ConvNd, ConvTransposeNd) get the method, each with the
activation that follows it (for `gain="auto"`): the first activation module after it,
looking past dropout, normalization, pooling and flatten modules, and stopping at the
next weighted layer. When the next module is something else (a custom module, or the
model applies its activation functionally in `forward`) winit cannot tell and assumes
linear (gain 1); the record says so in `activation_source`. Each gets an AppliedInit in
`InitReport.layers`, in plan order: the probe and the theory zip them with their
measurements.

Every other parameter then gets its module type's rule (parameters.py), drawn after the
plan's layers from the same seed: Linear and conv layers outside the plan the method with
a linear activation; MultiheadAttention's packed q/k/v and the gates of RNN, LSTM and GRU
weights the method per projection or gate, with its own fans; embeddings N(0, 1);
normalization layers weight 1, bias 0; anything winit does not know is left as it is and
recorded as skipped. `InitReport.parameters` records every `model.named_parameters()`
entry once, in that order (a tied tensor once, under its first name), with the rule, the
fans, the std aimed for and the std measured.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .activations import ACTIVATIONS
from .errors import WinitError
from .initspec import InitSpec
from .parameters import WEIGHTED_LAYERS, Draws, ParameterRecord, bias_detail
from .parameters import in_order as _in_order
from .parameters import init_unplanned as _init_unplanned
from .plan import Layer, NetworkPlan, linked

__all__ = [
    "ACTIVATION_MODULES",
    "WEIGHTED_LAYERS",
    "AppliedInit",
    "InitReport",
    "ParameterRecord",
    "apply_init",
    "apply_weight_init",
    "leaves",
    "plan_module",
]

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
    scale: float = 1.0  # what the draw was multiplied by (branch_scale, fixup)
    scaled_by: str = ""  # "branch" (init.branch_scale) | "fixup"; "" where not scaled

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
    """What was applied: per weighted layer of the plan (`layers`, in plan order) and per
    parameter tensor of the model (`parameters`, in named_parameters order)."""

    layers: list[AppliedInit] = field(default_factory=list)
    parameters: list[ParameterRecord] = field(default_factory=list)

    @property
    def skipped(self) -> list[str]:
        """The names of the parameters left as they were."""
        return [p.name for p in self.parameters if p.rule == "skipped"]

    def __iter__(self) -> Iterator[AppliedInit]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> AppliedInit:
        return self.layers[index]


def leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules with no children, named, in registration order."""
    return [(n, m) for n, m in model.named_modules() if not list(m.children())]


def kind_of(module: nn.Module) -> str:
    """What a module is, as a plan names it: dense, conv2d, activation, norm, ... or its class."""
    if isinstance(module, WEIGHTED_LAYERS):
        name = type(module).__name__.lower()  # conv2d, convtranspose2d
        return "dense" if name == "linear" else name.replace("transpose", "_transpose")
    if type(module) in ACTIVATION_MODULES:
        return "activation"
    for cls, kind in TRANSPARENT_MODULES.items():
        if isinstance(module, cls):
            return kind
    return type(module).__name__


def _has_weights(module: nn.Module) -> bool:
    weight = module.weight
    return not nn.parameter.is_lazy(weight) and weight.numel() > 0


def plan_module(model: nn.Module) -> NetworkPlan:
    """The plan of any module, from the order of its leaf modules (shapes are not traced)."""
    layers = []
    for index, (name, module) in enumerate(leaves(model)):
        # a lazy layer (not yet materialized) or an empty one has no weights to draw: the
        # parameter rules record it
        weighted = isinstance(module, WEIGHTED_LAYERS) and _has_weights(module)
        activation = ACTIVATION_MODULES.get(type(module))
        slope = module.negative_slope if isinstance(module, nn.LeakyReLU) else 0.0
        layers.append(
            Layer(
                index,
                name,
                kind_of(module),
                None,
                None,
                weight_shape=tuple(module.weight.shape) if weighted else None,
                groups=getattr(module, "groups", 1),
                params=sum(
                    p.numel()
                    for p in module.parameters(recurse=False)
                    if not nn.parameter.is_lazy(p)
                ),
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
    """Initialize every parameter of `model`: its Linear, ConvNd and ConvTransposeNd
    layers by the method, and the rest by the rules of parameters.py.

    gain: None keeps the method's own default (as torch.nn.init has it); "auto"
    uses calculate_gain of the activation that follows each layer; a number sets it.
    bias: "zeros" or "torch_default" (U(±1/√fan_in)); None means torch_default for
    method="torch_default" and zeros otherwise; variance_scaling's bias_var > 0 draws
    biases N(0, bias_var) instead.
    data: a batch of inputs, for data-dependent methods (lsuv).
    The report's `layers` are the Linear and conv layers, its `parameters` every tensor.
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
    branch_scale: float = 1.0,
) -> InitReport:
    """Initialize the weighted layers of `plan` in `model` with `spec`, then every other
    parameter by its module's rule (parameters.py), and record them all. `branch_scale`
    multiplies the weight of the last weighted layer of each residual branch (its output
    projection), after the method has drawn it: 1/√L, or GPT-2's 1/√(2L).

    lsuv (data-dependent) rescales the plan's layers only; the other weights the method
    makes (Linear and conv layers outside the plan, q/k/v projections, RNN gates) keep its
    orthogonal start, and biases, norms and embeddings their rules, as for any method.
    """
    if spec.data_dependent and data is None:
        raise WinitError(f"{spec.method} is data-dependent: pass a batch of inputs as data=")
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    draws = Draws(spec, rng, generator)
    modules = dict(model.named_modules())
    report = InitReport()
    for layer in plan.weighted:
        layer_spec = spec.for_layer(layer.activation or "linear", layer.negative_slope)
        report.layers.append(_init_layer(layer, modules[layer.name], layer_spec, draws))
    planned = {
        id(p)
        for r in report.layers
        for p in (_own(modules[r.name], "weight"), _own(modules[r.name], "bias"))
        if p is not None
    }
    records = _init_unplanned(model, draws, planned)
    if spec.data_dependent:
        _lsuv(model, modules, report, data, spec)
    factors = _scheme_factors(spec, plan, branch_scale)
    if factors:
        _scale_layers(modules, report, factors, "fixup" if spec.method == "fixup" else "branch")
    records.update(_layer_records(model, modules, report.layers))
    report.parameters = _in_order(model, records)
    return report


def _scheme_factors(spec: InitSpec, plan: NetworkPlan, branch_scale: float) -> dict[str, float]:
    """What each weighted layer's draw is multiplied by, by name: Fixup's factors, or
    `branch_scale` on the last weighted layer of every residual branch (its own layers,
    not a nested block's: the branch's output projection)."""
    from .schemes import fixup_factors, own_weighted, residual_blocks

    if spec.method == "fixup":
        return fixup_factors(plan)
    if branch_scale == 1.0:
        return {}
    return {
        own_weighted(block)[-1].name: branch_scale
        for block in residual_blocks(plan)
        if own_weighted(block)
    }


@torch.no_grad()
def _scale_layers(
    modules: dict[str, nn.Module], report: InitReport, factors: dict[str, float], why: str
) -> None:
    """Multiply the named layers' weights by their factor, their records' targets with
    them; a layer set to 0 has its bias set to 0 too (Fixup's zero branch ends and head)."""
    for record in report.layers:
        factor = factors.get(record.name)
        if factor is None:
            continue
        module = modules[record.name]
        module.weight.mul_(factor)
        if factor == 0.0 and module.bias is not None:
            module.bias.zero_()
            record.bias_var = 0.0
        record.scale, record.target_std, record.scaled_by = (
            factor,
            record.target_std * factor,
            why,
        )


def _own(module: nn.Module, name: str) -> nn.Parameter | None:
    """The module's own parameter `name` (None where it has none, or computes it)."""
    return module._parameters.get(name)


def _layer_records(
    model: nn.Module, modules: dict[str, nn.Module], layers: list[AppliedInit]
) -> dict[int, ParameterRecord]:
    """The parameter records of the plan's layers, by tensor id (a tensor two layers
    share: the record of the later, whose draw it holds)."""
    names = {id(p): n for n, p in model.named_parameters()}
    records: dict[int, ParameterRecord] = {}
    for r in layers:
        module = modules[r.name]
        weight, bias = _own(module, "weight"), _own(module, "bias")
        if weight is not None and id(weight) in names:
            detail = r.method
            if r.scaled_by:
                why = "branch_scale" if r.scaled_by == "branch" else "fixup"
                detail = f"{r.spec.drawn_as} × {r.scale:.4g} ({why})"
            records[id(weight)] = ParameterRecord(
                names[id(weight)], r.shape, r.fan_in, r.fan_out, "method", detail, 1, r.target_std
            )
        if bias is not None and id(bias) in names:
            records[id(bias)] = ParameterRecord(
                names[id(bias)],
                tuple(bias.shape),
                r.fan_in,
                None,
                "method",
                bias_detail(r.spec),
                1,
                r.bias_var**0.5,
            )
    return records


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
def _init_layer(layer: Layer, module: nn.Module, spec: InitSpec, draws: Draws) -> AppliedInit:
    shape, groups = tuple(module.weight.shape), getattr(module, "groups", 1)
    spec.check_shape(shape, groups, layer.name)  # first, for an error that names the layer
    # lsuv draws its orthogonal pre-init here, and is rescaled with data after
    module.weight.copy_(draws.weight(spec, shape, groups))
    fan_in, fan_out = layer.fans
    bias, bias_var = None, 0.0
    if module.bias is not None:
        bias, bias_var = spec.bias_init, spec.bias_variance(fan_in)
        module.bias.copy_(draws.bias(module.bias.numel(), shape).view_as(module.bias))
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
