"""What the residual init schemes add to a network: the learnable scalars of SkipInit,
ReZero and Fixup, and Fixup's scaling of the branch weights.

SkipInit (De & Smith 2020) and ReZero (Bachlechner et al. 2020) put one learnable scalar
α on each residual branch, x + α·F(x), α = 0 at init, so that every block starts as the
identity and the stream keeps its input's variance whatever the depth. Fixup (Zhang et
al. 2019) does it with the weights instead: the last weighted layer of each branch at 0,
the others scaled by L^(-1/(2m-2)) (L blocks of m weighted layers: the scale at which one
SGD step changes the output by O(1)), the classifier at 0, plus a scalar multiplier (1)
on each branch and scalar biases (0) before each weighted layer and activation, which
stand in for what batchnorm's affine parameters did. The modules here keep the branch's
own layers under their plan names, so that the probe and the theory find them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import torch
from torch import nn

from .parameters import WEIGHTED_LAYERS

if TYPE_CHECKING:
    from .plan import Layer, NetworkPlan


class BranchGate(nn.Module):
    """scale·F(x) (+ a scalar bias): the gate on a residual branch's output. Its values at
    init are set by the parameter rules (parameters.py): the method's α for SkipInit and
    ReZero, 1 for Fixup's multiplier, 0 for its bias."""

    def __init__(self, bias: bool) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1)) if bias else None

    def forward(self, branch: torch.Tensor) -> torch.Tensor:
        out = branch * self.scale
        return out if self.bias is None else out + self.bias


class FixupBranch(nn.Sequential):
    """A residual branch with Fixup's scalar bias before each weighted layer and each
    activation (`biases`, one per such layer, in order)."""

    def __init__(self, layers: OrderedDict[str, nn.Module]) -> None:
        super().__init__(layers)
        self.biased = [_takes_bias(module) for module in self]
        self.biases = nn.Parameter(torch.zeros(sum(self.biased)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = 0
        for module, biased in zip(self, self.biased, strict=True):
            if biased:
                x = x + self.biases[index]
                index += 1
            x = module(x)
        return x


def _takes_bias(module: nn.Module) -> bool:
    from .apply import ACTIVATION_MODULES

    return isinstance(module, WEIGHTED_LAYERS) or type(module) in ACTIVATION_MODULES


def branch_gate(kind: str) -> nn.Module:
    """The gate of kind "none" (an identity), "scalar" (α) or "fixup" (multiplier, bias)."""
    if kind == "none":
        return nn.Identity()
    return BranchGate(bias=kind == "fixup")


def fixup_branch(branch: nn.Sequential) -> FixupBranch:
    """`branch` with Fixup's scalar biases, its layers under the same names."""
    return FixupBranch(OrderedDict(branch.named_children()))


def residual_blocks(plan: NetworkPlan) -> list[Layer]:
    """Every residual block of the plan, nested ones too, in forward order."""
    return [layer for layer in plan.all_layers if layer.kind == "residual"]


def own_weighted(block: Layer) -> list[Layer]:
    """The weighted layers of a block's branch itself (not those of a nested block)."""
    return [layer for layer in block.branch if layer.weighted]


def fixup_factors(plan: NetworkPlan) -> dict[str, float]:
    """What Fixup multiplies each weighted layer's He draw by: L^(-1/(2m-2)) for the
    non-last layers of a branch of m, 0 for the last and for the classifier (the last
    weighted layer outside every block); layers not named keep their draw."""
    blocks = residual_blocks(plan)
    depth = len(blocks)
    factors: dict[str, float] = {}
    for block in blocks:
        layers = own_weighted(block)
        if not layers:
            continue
        m = len(layers)
        for layer in layers[:-1]:
            factors[layer.name] = depth ** (-1.0 / (2 * m - 2))
        factors[layers[-1].name] = 0.0
    outside = [layer for layer in plan.layers if layer.weighted]
    if outside:
        factors[outside[-1].name] = 0.0
    return factors
