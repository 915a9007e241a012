"""Signal propagation plots (Brock, De & Smith 2021, Characterizing signal propagation to
close the performance gap in unnormalized ResNets).

For each conv layer, at its output after the activation: the average over channels of
the squared channel mean, and the average channel variance, over a batch. A healthy
net keeps both in range with depth; a mean that grows while the variance shrinks says
the channels are collapsing onto one direction.

A net with residual blocks gets the plot of the paper instead (timm `utils/model.py`:
avg_sq_ch_mean, avg_ch_var, avg_ch_var_residual): per top-level block, at its output
(the stream), the same two statistics and the average channel variance of what the block
adds to the stream, the output of its `gate` (the branch's output through SkipInit's
scalar or Fixup's multiplier; an identity for a plain block). A channel is dim 1 of a
conv activation, a unit of a dense one, the last dim of a [T, E] sequence.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from .plan import Layer, NetworkPlan


@dataclass
class SppLayer:
    index: int  # 1-based among the conv layers
    name: str
    channel_squared_mean: float
    channel_variance: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class SppBlock(SppLayer):
    """One residual block (index: 1-based among the top-level blocks): the stream it
    outputs, and what its branch adds to it."""

    residual_variance: float  # average channel variance of gate(branch(x))


def channel_statistics(t: torch.Tensor, channel_dim: int = 1) -> tuple[float, float]:
    """(average over channels of the squared channel mean, average channel variance) of
    a batch, each channel's taken over the batch and every other position."""
    channels = t.detach().double().movedim(channel_dim, 0)
    var, mean = torch.var_mean(channels.reshape(channels.shape[0], -1), dim=1, correction=0)
    return mean.square().mean().item(), var.mean().item()


@torch.no_grad()
def signal_propagation(model: nn.Module, x: torch.Tensor, plan: NetworkPlan) -> list[SppLayer]:
    """Average channel squared mean and variance at each conv layer's activated output; on
    a net with residual blocks, at each top-level block's output, with its branch's
    variance (`residual_blocks`)."""
    if any(layer.kind == "residual" for layer in plan.layers):
        return list(residual_blocks(model, x, plan))
    modules = dict(model.named_modules())
    convs = [layer for layer in plan.weighted if layer.kind in ("conv2d", "conv3d")]
    measured: dict[str, tuple[float, float]] = {}

    def record(conv: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            measured[conv] = channel_statistics(output)

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


def _channel_dim(layer: Layer) -> int:
    """A [T, E] sequence's channels are its last dim; a conv's or a dense layer's, dim 1."""
    return -1 if layer.out_shape is not None and len(layer.out_shape) == 2 else 1


@torch.no_grad()
def residual_blocks(model: nn.Module, x: torch.Tensor, plan: NetworkPlan) -> list[SppBlock]:
    """Brock et al.'s plot: per top-level residual block, the average channel squared mean
    and variance of its output and the average channel variance of its branch's
    contribution (the output of `<block>.gate`, or of `<block>.branch` where a block has
    no gate), in one forward pass on `x` that leaves the model as it was."""
    modules = dict(model.named_modules())
    blocks = [layer for layer in plan.layers if layer.kind == "residual"]
    measured: dict[str, tuple[float, ...]] = {}

    def record(key: str, channel_dim: int):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            measured[key] = channel_statistics(output, channel_dim)

        return hook

    handles = []
    for block in blocks:
        dim = _channel_dim(block)
        added = f"{block.name}.gate" if f"{block.name}.gate" in modules else f"{block.name}.branch"
        handles.append(modules[block.name].register_forward_hook(record(block.name, dim)))
        handles.append(modules[added].register_forward_hook(record(f"{block.name}/added", dim)))
    try:
        with _batch_statistics(model):
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return [
        SppBlock(i, block.name, *measured[block.name], measured[f"{block.name}/added"][1])
        for i, block in enumerate(blocks, start=1)
    ]


DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


@contextmanager
def _batch_statistics(model: nn.Module) -> Iterator[None]:
    """The model in training mode with its dropouts off, and its buffers (BatchNorm's
    running statistics) put back afterwards. A BatchNorm normalizes by the batch's
    statistics, as in the paper's plots of freshly built nets (timm measures them in their
    initial training mode); in eval mode at init it would be an identity."""
    modes = {module: module.training for module in model.modules()}
    buffers = [(buffer, buffer.detach().clone()) for buffer in model.buffers()]
    model.train()
    for module in model.modules():
        if isinstance(module, DROPOUTS):
            module.eval()
    try:
        yield
    finally:
        for buffer, saved in buffers:
            buffer.copy_(saved)
        for module, training in modes.items():
            module.training = training
