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
each branch it grows by about one per block (linearly: Brock et al. 2021). The branch is
measured where it joins the stream, after its gate: α·F(x), 0 at init under SkipInit and
ReZero, so that their stream keeps its input's value, as Fixup's does with its zero last
layers. What the
recursion does not model (a dropout, a pool, an activation after an activation, a norm
in eval mode) makes the prediction None. A self-attention's output is the expectation
over its value weights given the attention pattern and tokens measured in the same pass
(attention_mixing): what it mixes depends on how alike the tokens are, which no second
moment says.
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
    gates: Mapping[str, float] | None = None,
    mixing: Mapping[str, float] | None = None,
) -> float | None:
    """E[F(x)²] of a branch's layers for an input of second moment `moment` (taken as a
    zero-mean Gaussian); `weight_vars`: per weighted layer, (σ_w², σ_b²), and per attention
    layer its value projection's; `mixing`: per attention layer, ρ̄ (attention_mixing)."""
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
        elif layer.kind == "attention":
            if mixing is None or layer.name not in mixing or layer.name not in weight_vars:
                return None
            w2, b2 = weight_vars[layer.name]
            moment, gaussian = w2 * mixing[layer.name] + b2, True
        elif layer.kind == "residual":
            inner = predict_block(layer, moment, weight_vars, training, gates, mixing)
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
    gates: Mapping[str, float] | None = None,
    mixing: Mapping[str, float] | None = None,
) -> tuple[float, float] | None:
    """(E[(α·F(x))²], E[out²]) of a residual block for an input of second moment `moment`;
    `gates`: per block, the scalar α its branch output is multiplied by (SkipInit, ReZero,
    Fixup's multiplier; 1 where absent)."""
    branch = predict_branch(block.branch, moment, weight_vars, training, gates, mixing)
    if branch is None:
        return None
    branch *= (gates or {}).get(block.name, 1.0) ** 2
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
    gates = {
        layer.name: gate.scale.detach().item()
        for layer in residual
        if (gate := getattr(modules[layer.name], "gate", None)) is not None
        and hasattr(gate, "scale")
    }
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

    mixing: dict[str, float] = {}

    def on_attention(name: str):
        def hook(module: Any, inputs: tuple, output: torch.Tensor) -> None:
            mixing.setdefault(name, attention_mixing(module, inputs[0]))

        return hook

    handles = []
    for layer in plan.all_layers:
        if layer.kind == "attention" and hasattr(modules[layer.name], "query"):
            handles.append(modules[layer.name].register_forward_hook(on_attention(layer.name)))
    for layer in residual:
        handles.append(modules[layer.name].register_forward_hook(on_block(layer.name)))
        # what the branch adds to the stream: after its gate (α·F for SkipInit, ReZero)
        added = modules[f"{layer.name}.gate"]
        handles.append(added.register_forward_hook(on_branch(layer.name)))
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
        predicted = predict_block(layer, stream_in, weight_vars, model.training, gates, mixing)
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


def attention_mixing(module: Any, u: torch.Tensor) -> float:
    """ρ̄ of a self-attention (transformer.SelfAttention) on its input u [B, T, E]: the mean
    over examples, heads and queries t of a_tᵀ G a_t, with a_t the attention weights of
    query t and G = u uᵀ / E the tokens' Gram matrix. Over the value weights (variance
    σ_w²/E each, zero mean), E[o²] of the heads' output is σ_w²·ρ̄ + σ_b²: 1/T for
    uniform attention over orthogonal tokens, 1 for identical tokens or attention on one."""
    import torch

    b, t, e = u.shape
    heads = module.heads

    def split(projection: Any) -> torch.Tensor:
        return projection(u).view(b, t, heads, e // heads).transpose(1, 2)

    q, k = split(module.query), split(module.key)
    weights = torch.softmax(q @ k.transpose(-1, -2) / (e // heads) ** 0.5, dim=-1)
    gram = (u @ u.transpose(-1, -2) / e).unsqueeze(1)  # [B, 1, T, T]
    return torch.einsum("bhts,bhsr,bhtr->", weights, gram, weights).item() / (b * heads * t)
