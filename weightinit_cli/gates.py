"""The modules the residual init schemes add to a network: the learnable scalars of SkipInit,
ReZero and Fixup.

SkipInit (De & Smith 2020) and ReZero (Bachlechner et al. 2020) put one learnable scalar
α on each residual branch, x + α·F(x), α = 0 at init, so that every block starts as the
identity and the stream keeps its input's variance whatever the depth. Fixup (Zhang et
al. 2019) does it with the weights instead (schemes.py): the last weighted layer of each
branch at 0, the others scaled by L^(-1/(2m-2)) (L blocks of m weighted layers: the scale at
which one SGD step changes the output by O(1)), the classifier at 0, plus a scalar multiplier (1)
on each branch and scalar biases (0) before each weighted layer and activation, which
stand in for what batchnorm's affine parameters did. The modules here keep the branch's
own layers under their plan names, so that the probe and the theory find them.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .activations import ACTIVATIONS
from .parameters import WEIGHTED_LAYERS

ACTIVATION_TYPES = tuple(getattr(nn, a.torch_module) for a in ACTIVATIONS.values())


class BranchGate(nn.Module):
    """scale·F(x) (+ a scalar bias): the gate on a residual branch's output. Its values at
    init are set by the parameter rules (parameters.py): the method's α for SkipInit and
    ReZero, 1 for Fixup's multiplier, 0 for its bias."""

    def __init__(self, bias: bool) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1)) if bias else None

    def winit_rules(self) -> dict[str, tuple[str, str]]:
        """The parameter rules of parameters.py, by own parameter name: (kind, detail)."""
        return {"scale": ("gate", ""), "bias": ("zeros", "gate bias: 0 (fixup)")}

    def forward(self, branch: torch.Tensor) -> torch.Tensor:
        out = branch * self.scale
        return out if self.bias is None else out + self.bias


class FixupBranch(nn.Sequential):
    """A residual branch with Fixup's scalar bias before each weighted layer and each
    activation: `bias_<layer>`, one per such layer (one scalar parameter each: indexing
    one shared vector costs more than the add)."""

    def __init__(self, layers: OrderedDict[str, nn.Module]) -> None:
        super().__init__(layers)
        for name, module in layers.items():
            if _takes_bias(module):
                self.register_parameter(f"bias_{name}", nn.Parameter(torch.zeros(1)))

    def winit_rules(self) -> dict[str, tuple[str, str]]:
        """The parameter rules of parameters.py, by own parameter name: (kind, detail)."""
        rule = ("zeros", "scalar biases: 0 (fixup)")
        return {name: rule for name, _ in self.named_parameters(recurse=False)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name, module in self.named_children():
            bias = self._parameters.get(f"bias_{name}")
            if bias is not None:
                x = x + bias
            x = module(x)
        return x


def _takes_bias(module: nn.Module) -> bool:
    return isinstance(module, WEIGHTED_LAYERS) or type(module) in ACTIVATION_TYPES


def branch_gate(kind: str) -> nn.Module:
    """The gate of kind "none" (an identity), "scalar" (α) or "fixup" (multiplier, bias)."""
    if kind == "none":
        return nn.Identity()
    return BranchGate(bias=kind == "fixup")


def fixup_branch(branch: nn.Sequential) -> FixupBranch:
    """`branch` with Fixup's scalar biases, its layers under the same names."""
    return FixupBranch(OrderedDict(branch.named_children()))
