"""Per-layer statistics of a model: its weights, and, from one forward and one backward
pass with hooks, its activations and gradients.

Hooks reduce every tensor to a few numbers the moment it exists; the probe keeps
no activation or gradient tensor after its layer is done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from .apply import WEIGHTED_LAYERS, following_activations
from .fans import fan_in_and_fan_out

# Saturation thresholds: where tanh and sigmoid have lost almost all their slope.
SATURATION = {
    "tanh": lambda a: a.abs() > 0.99,
    "sigmoid": lambda a: (a < 0.01) | (a > 0.99),
}


@dataclass
class Summary:
    """mean, std, min and max of a tensor (std over all its elements, ddof=0)."""

    mean: float
    std: float
    min: float
    max: float

    @classmethod
    @torch.no_grad()
    def of(cls, tensor: torch.Tensor) -> Summary:
        t = tensor.detach().float()
        std, mean = torch.std_mean(t, correction=0)
        return cls(mean.item(), std.item(), t.min().item(), t.max().item())

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class GradSummary:
    """mean, std and L2 norm of a gradient."""

    mean: float
    std: float
    norm: float

    @classmethod
    @torch.no_grad()
    def of(cls, tensor: torch.Tensor | None) -> GradSummary:
        if tensor is None:
            return cls(0.0, 0.0, 0.0)
        t = tensor.detach().float()
        std, mean = torch.std_mean(t, correction=0)
        return cls(mean.item(), std.item(), torch.linalg.vector_norm(t).item())

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class WeightStats:
    name: str
    kind: str
    shape: tuple[int, ...]
    weight: Summary


def weight_stats(model: nn.Module) -> list[WeightStats]:
    """mean/std/min/max of the weight of every Linear and conv layer, in module order."""
    return [
        WeightStats(name, type(m).__name__, tuple(m.weight.shape), Summary.of(m.weight))
        for name, m in model.named_modules()
        if isinstance(m, WEIGHTED_LAYERS)
    ]


@dataclass
class LayerStats:
    """Everything measured for one weighted layer."""

    index: int  # 1-based depth among the weighted layers
    name: str
    kind: str
    shape: tuple[int, ...]
    fan_in: int
    fan_out: int
    activation_fn: str
    weight: Summary
    preactivation: Summary
    activation: Summary  # after the activation function; equals preactivation if none
    grad: GradSummary  # of the weight
    activation_grad: GradSummary  # of the layer's output (the pre-activation)
    dead_fraction: float  # units whose activation is exactly 0 for the whole batch
    saturated_fraction: float | None  # tanh |a| > 0.99, sigmoid outside [0.01, 0.99]
    symmetric_weights: bool  # every unit (output row) has the same weights
    symmetric_grads: bool  # every unit has the same weight gradient
    expected_weight_std: float | None = None
    predicted_preactivation_std: float | None = None
    predicted_activation_std: float | None = None

    @property
    def symmetric(self) -> bool:
        return self.symmetric_weights or self.symmetric_grads


@dataclass
class ProbeResult:
    loss: float
    layers: list[LayerStats] = field(default_factory=list)
    input_second_moments: list[float] = field(default_factory=list)  # E[x²] into each layer


def _rows_identical(t: torch.Tensor) -> bool:
    rows = t.detach().reshape(t.shape[0], -1)
    return rows.shape[0] > 1 and bool((rows == rows[:1]).all())


def _dead_fraction(activation: torch.Tensor) -> float:
    """Fraction of units (features, or channels of a conv) that are 0 on every example."""
    per_unit = activation.detach().transpose(0, 1).reshape(activation.shape[1], -1)
    return (per_unit == 0).all(dim=1).float().mean().item()


def probe(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> ProbeResult:
    """One forward and one backward pass of `model` on (x, y), measuring every weighted layer."""
    loss_fn = loss_fn or nn.functional.cross_entropy
    activations = following_activations(model)
    modules = dict(model.named_modules())
    weighted = [n for n, m in modules.items() if isinstance(m, WEIGHTED_LAYERS)]
    pre: dict[str, Summary] = {}
    moments: dict[str, float] = {}
    post: dict[str, tuple[Summary, float, float | None]] = {}
    out_grad: dict[str, GradSummary] = {}
    handles = []

    def on_output(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            moments[name] = inputs[0].detach().float().square().mean().item()
            pre[name] = Summary.of(output)
            if output.requires_grad:
                output.register_hook(lambda g: out_grad.__setitem__(name, GradSummary.of(g)))
            if activations[name].module is None:
                post[name] = (pre[name], _dead_fraction(output), None)

        return hook

    def on_activation(name: str, fn: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            saturated = SATURATION.get(fn)
            fraction = saturated(output.detach()).float().mean().item() if saturated else None
            post[name] = (Summary.of(output), _dead_fraction(output), fraction)

        return hook

    for name in weighted:
        handles.append(modules[name].register_forward_hook(on_output(name)))
        act = activations[name]
        if act.module is not None:
            hook = on_activation(name, act.fn)
            handles.append(modules[act.module].register_forward_hook(hook))
    try:
        model.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
    finally:
        for handle in handles:
            handle.remove()

    result = ProbeResult(loss=loss.item(), input_second_moments=[moments[n] for n in weighted])
    for index, name in enumerate(weighted, start=1):
        module = modules[name]
        shape = tuple(module.weight.shape)
        fan_in, fan_out = fan_in_and_fan_out(shape)
        activation, dead, saturated = post[name]
        grad = module.weight.grad
        result.layers.append(
            LayerStats(
                index=index,
                name=name,
                kind=type(module).__name__,
                shape=shape,
                fan_in=fan_in,
                fan_out=fan_out,
                activation_fn=activations[name].fn,
                weight=Summary.of(module.weight),
                preactivation=pre[name],
                activation=activation,
                grad=GradSummary.of(grad),
                activation_grad=out_grad.get(name, GradSummary(0.0, 0.0, 0.0)),
                dead_fraction=dead,
                saturated_fraction=saturated,
                symmetric_weights=_rows_identical(module.weight),
                symmetric_grads=grad is not None and _rows_identical(grad),
            )
        )
    return result


@torch.no_grad()
def first_nonfinite_layer(model: nn.Module, x: torch.Tensor) -> str | None:
    """The first module (in forward order) whose output holds an inf or NaN, for input x."""
    found: list[str] = []

    def watch(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if not found and isinstance(output, torch.Tensor) and not output.isfinite().all():
                found.append(name)

        return hook

    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    handles = [m.register_forward_hook(watch(n)) for n, m in leaves]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return found[0] if found else None
