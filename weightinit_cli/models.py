"""The torch modules of a planned network.

build_model turns a config's plan (plan.py) into an nn.Sequential whose module names are
the plan's layer names, so that the probe, apply and the metrics find each layer by name.
Weights keep torch's defaults here; apply.py initializes them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .activations import ACTIVATIONS

if TYPE_CHECKING:
    from .parametrization import Parametrization
    from .plan import Layer, NetworkPlan


def _module(nn: Any, layer: Layer, gate: str = "none") -> torch.nn.Module:
    spec = layer.spec
    dims = len(layer.in_shape) - 1  # spatial dims of the input
    if spec.type == "dense":  # on a sequence [T, E], on each position's E features
        return nn.Linear(layer.in_shape[-1], spec.units, bias=spec.bias)
    if spec.type in ("conv2d", "conv3d"):
        conv = nn.Conv2d if spec.type == "conv2d" else nn.Conv3d
        return conv(
            layer.in_shape[0],
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
        return getattr(nn, ACTIVATIONS[spec.fn].torch_module)()
    if spec.type == "batchnorm":
        return getattr(nn, f"BatchNorm{max(dims, 1)}d")(layer.in_shape[0])
    if spec.type == "layernorm":
        # each position of a sequence [T, E] over its E features; over a conv's channels and
        # positions at once: GroupNorm with one group
        if len(layer.in_shape) <= 2:
            return nn.LayerNorm(layer.in_shape[-1])
        return nn.GroupNorm(1, layer.in_shape[0])
    if spec.type in ("embedding", "attention") or (spec.type == "pool" and dims == 1):
        from .transformer import sequence_module  # a sequence [T, E]'s own layers

        return sequence_module(layer)
    if spec.type == "residual":
        branch = _sequential(nn, layer.branch, f"{layer.name}.branch.", gate)
        return Residual(layer, branch, gate)
    if spec.type == "dropout":
        return nn.Dropout(spec.p)
    kind = spec.kind.capitalize()  # pool: Max | Avg
    if spec.global_:
        return nn.Sequential(getattr(nn, f"Adaptive{kind}Pool{dims}d")(1), nn.Flatten())
    return getattr(nn, f"{kind}Pool{dims}d")(spec.size)


def _sequential(
    nn: Any, layers: Sequence[Layer], prefix: str = "", gate: str = "none"
) -> torch.nn.Sequential:
    return nn.Sequential(
        OrderedDict((layer.name.removeprefix(prefix), _module(nn, layer, gate)) for layer in layers)
    )


class Residual(nn.Module):
    """A residual block: skip(x) + gate(branch(x)), with `branch` and `skip` named as the
    plan names them (an identity skip has no parameters). `gate` is what the init scheme
    puts on the branch's output: nothing (an identity), SkipInit's and ReZero's learnable
    scalar, or Fixup's multiplier and bias (gates.py); `Residual.gate` is always there, so
    that whoever measures the branch's contribution hooks one module."""

    def __init__(self, layer: Layer, branch: nn.Module, gate: str = "none") -> None:
        super().__init__()
        from .gates import branch_gate, fixup_branch

        self.branch = fixup_branch(branch) if gate == "fixup" else branch
        self.skip = _module(nn, layer.skip) if layer.skip is not None else nn.Identity()
        self.gate = branch_gate(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.gate(self.branch(x))


class Readout(nn.Linear):
    """µP's readout (mup's MuReadout): a Linear whose input is first multiplied by
    output_mult / width_mult, written as mup writes it so that the floats agree."""

    def __init__(self, linear: nn.Linear, output_mult: float, width_mult: float) -> None:
        super().__init__(
            linear.in_features, linear.out_features, bias=linear.bias is not None,
            device=linear.weight.device, dtype=linear.weight.dtype,
        )  # fmt: skip
        self.output_mult, self.width_mult = output_mult, width_mult

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.output_mult * x / self.width_mult)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, output_mult={self.output_mult}, width_mult={self.width_mult}"
        )


def parametrize_model(model: nn.Module, parametrization: Parametrization) -> None:
    """Make a built network `parametrization`'s: under µP its readout (a Linear at any
    depth of the module tree) becomes a `Readout` and its attention logits are scaled by
    1/d_head; the model keeps the parametrization as `model.parametrization` for
    train.make_optimizer's per-parameter learning rates. Run it before the init: the
    Readout is a new Linear, drawn by the init like the one it replaces."""
    model.parametrization = parametrization
    if parametrization.multiplies_readout:
        parent_name, _, leaf = parametrization.readout.rpartition(".")
        parent = model.get_submodule(parent_name)
        head = getattr(parent, leaf)
        # mup_shapes refused, when the config loaded, a readout that is not a plain Linear
        assert type(head) is nn.Linear, f"{parametrization.readout}: {type(head).__name__}"
        setattr(parent, leaf, Readout(head, parametrization.output_mult,
                                      parametrization.readout_width_mult))  # fmt: skip
    from .transformer import SelfAttention

    for module in model.modules():  # µP's attention logits: 1/d_head (SP's: 1/√d_head)
        if isinstance(module, SelfAttention):
            module.scale = parametrization.attention_scale(module.head_dim)


def build_model(
    plan: NetworkPlan, gate: str = "none", *, parametrization: Parametrization | None = None
) -> torch.nn.Sequential:
    """The planned network as an nn.Sequential named like the plan's layers; `gate`: what
    every residual block's branch output passes through ("none", "scalar" for SkipInit and
    ReZero, "fixup" for Fixup's multiplier and scalar biases; gates.py). Under µP
    (`parametrization`) the readout is a `Readout`, and the model keeps the parametrization
    as `model.parametrization` for train.make_optimizer's per-parameter learning rates."""
    model = _sequential(nn, plan.layers, gate=gate)
    if parametrization is not None:
        parametrize_model(model, parametrization)
    return model
