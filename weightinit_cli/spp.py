"""Signal propagation plots (Brock, De & Smith 2021, Characterizing signal propagation to
close the performance gap in unnormalized ResNets).

For each conv layer, at its output after the activation: the average over channels of
the squared channel mean, and the average channel variance, over a batch. A healthy
net keeps both in range with depth; a mean that grows while the variance shrinks says
the channels are collapsing onto one direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .apply import following_activations

CONV_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class SppLayer:
    index: int  # 1-based among the conv layers
    name: str
    channel_squared_mean: float
    channel_variance: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@torch.no_grad()
def signal_propagation(model: nn.Module, x: torch.Tensor) -> list[SppLayer]:
    """Average channel squared mean and variance at each conv layer's activated output."""
    modules = dict(model.named_modules())
    activations = following_activations(model)
    convs = [name for name, m in modules.items() if isinstance(m, CONV_LAYERS)]
    measured: dict[str, tuple[float, float]] = {}

    def record(conv: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            channels = output.detach().double().transpose(0, 1).reshape(output.shape[1], -1)
            var, mean = torch.var_mean(channels, dim=1, correction=0)
            measured[conv] = (mean.square().mean().item(), var.mean().item())

        return hook

    handles = []
    for conv in convs:
        watched = activations[conv].module or conv
        handles.append(modules[watched].register_forward_hook(record(conv)))
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return [SppLayer(i, name, *measured[name]) for i, name in enumerate(convs, start=1)]
