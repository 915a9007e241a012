"""Signal propagation plots (Brock, De & Smith 2021, Characterizing signal propagation to
close the performance gap in unnormalized ResNets).

For each conv layer, at its output after the activation: the average over channels of
the squared channel mean, and the average channel variance, over a batch. A healthy
net keeps both in range with depth; a mean that grows while the variance shrinks says
the channels are collapsing onto one direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from .plan import NetworkPlan


@dataclass
class SppLayer:
    index: int  # 1-based among the conv layers
    name: str
    channel_squared_mean: float
    channel_variance: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@torch.no_grad()
def signal_propagation(model: nn.Module, x: torch.Tensor, plan: NetworkPlan) -> list[SppLayer]:
    """Average channel squared mean and variance at each conv layer's activated output."""
    modules = dict(model.named_modules())
    convs = [layer for layer in plan.weighted if layer.kind in ("conv2d", "conv3d")]
    measured: dict[str, tuple[float, float]] = {}

    def record(conv: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            channels = output.detach().double().transpose(0, 1).reshape(output.shape[1], -1)
            var, mean = torch.var_mean(channels, dim=1, correction=0)
            measured[conv] = (mean.square().mean().item(), var.mean().item())

        return hook

    handles = []
    for conv in convs:
        watched = conv.activation_layer or conv.name
        handles.append(modules[watched].register_forward_hook(record(conv.name)))
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return [SppLayer(i, conv.name, *measured[conv.name]) for i, conv in enumerate(convs, start=1)]
