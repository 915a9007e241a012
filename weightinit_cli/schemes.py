"""Which weighted layers the residual schemes scale, read off the network plan (no torch):
the blocks, each branch's own weighted layers, and Fixup's factors (Zhang et al. 2019).
gates.py holds the modules the schemes add; apply.py multiplies the draws.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .plan import Layer, NetworkPlan


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
