"""The residual stream at init: per residual block, the second moment of the stream that
enters it, of its branch F(x) and of the stream it passes on, x + F(x), measured in one
forward pass beside what theory predicts.

Theory: at init, with zero-mean weights, F(x) and the skip are uncorrelated, so
E[out²] = E[skip(x)²] + E[F(x)²] (He et al. 2016; the starting point of Fixup, Zhang et
al. 2019). E[F(x)²] is the mean-field recursion through the branch, started from the
block's measured input: a weighted layer takes σ_w²·m + σ_b² (σ_w² = fan_in·Var(W), less
the taps that read zero padding), an activation E[φ(√q z)²] of the Gaussian before it, and
a batchnorm or layer norm (weight 1, bias 0 at init) makes it a unit Gaussian. So without
normalization He branches double the stream each block (2^L), and with a norm in front of
each branch it grows by about one per block (linearly: Brock et al. 2021). What the
recursion does not model (a dropout, a pool, an activation after an activation, a norm
in eval mode) makes the prediction None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from .plan import Layer, NetworkPlan


@dataclass
class BlockStats:
    """One residual block at init: second moments (E[x²] over the batch and units)."""

    name: str
    stream_in: float
    branch: float  # E[F(x)²]
    stream_out: float  # E[(skip(x) + F(x))²]
    predicted_branch: float | None = None
    predicted_out: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def predict_branch(
    layers: tuple[Layer, ...],
    moment: float,
    weight_vars: Mapping[str, tuple[float, float]],
    training: bool = True,
) -> float | None:
    """E[F(x)²] of a branch's layers for an input of second moment `moment` (taken as a
    zero-mean Gaussian); `weight_vars`: per weighted layer, (σ_w², σ_b²)."""
    from .activations import gaussian_moments, get_activation

    gaussian = True  # whether the signal is a zero-mean Gaussian of second moment `moment`
    for layer in layers:
        if layer.weighted:
            w2, b2 = weight_vars[layer.name]
            moment, gaussian = w2 * moment + b2, True
        elif layer.kind == "activation":
            if not gaussian:
                return None
            key = get_activation(layer.activation).name
            if key != "linear":
                _, moment = gaussian_moments(key, moment, layer.negative_slope)
                gaussian = False
        elif layer.kind in ("batchnorm", "layernorm"):
            if layer.kind == "batchnorm" and not training:
                return None  # its running statistics: an identity at init, not a norm
            moment, gaussian = 1.0, True
        elif layer.kind == "residual":
            inner = predict_block(layer, moment, weight_vars, training)
            if inner is None:
                return None
            moment, gaussian = inner[1], True
        elif layer.kind != "flatten":
            return None  # dropout, pool: not modelled
    return moment


def predict_block(
    block: Layer,
    moment: float,
    weight_vars: Mapping[str, tuple[float, float]],
    training: bool = True,
) -> tuple[float, float] | None:
    """(E[F(x)²], E[out²]) of a residual block for an input of second moment `moment`."""
    branch = predict_branch(block.branch, moment, weight_vars, training)
    if branch is None:
        return None
    skip = moment
    if block.skip is not None:
        w2, b2 = weight_vars[block.skip.name]
        skip = w2 * moment + b2
    return branch, skip + branch


def blocks(
    model: torch.nn.Module,
    x: torch.Tensor,
    plan: NetworkPlan,
    weight_vars: Mapping[str, tuple[float, float]],
) -> list[BlockStats]:
    """Every residual block of `plan` (nested ones too), measured in one forward pass on
    `x` without gradients, with theory from each block's measured input."""
    import torch

    residual = [layer for layer in plan.all_layers if layer.kind == "residual"]
    modules = dict(model.named_modules())
    seen: dict[str, list[float]] = {}

    def second_moment(t: torch.Tensor) -> float:
        flat = t.detach().float().reshape(-1)
        return torch.dot(flat, flat).item() / max(flat.numel(), 1)

    def on_block(name: str):
        def hook(module: Any, inputs: tuple, output: torch.Tensor) -> None:
            seen.setdefault(name, [second_moment(inputs[0]), 0.0, second_moment(output)])

        return hook

    def on_branch(name: str):
        def hook(module: Any, inputs: tuple, output: torch.Tensor) -> None:
            if name not in seen:  # the branch runs inside its block, before the block's hook
                seen[f"{name}/branch"] = [second_moment(output)]

        return hook

    handles = []
    for layer in residual:
        handles.append(modules[layer.name].register_forward_hook(on_block(layer.name)))
        branch = modules[f"{layer.name}.branch"]
        handles.append(branch.register_forward_hook(on_branch(layer.name)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    out = []
    for layer in residual:
        stream_in, _, stream_out = seen[layer.name]
        branch = seen[f"{layer.name}/branch"][0]
        predicted = predict_block(layer, stream_in, weight_vars, model.training)
        out.append(
            BlockStats(
                layer.name,
                stream_in,
                branch,
                stream_out,
                None if predicted is None else predicted[0],
                None if predicted is None else predicted[1],
            )
        )
    return out
