"""Layer-sequential unit-variance init (Mishkin & Matas 2016, All you need is a good init).

After an orthonormal pre-init, go through the weighted layers in forward order and,
on one batch of the run's data, divide each layer's weights by the std of its output
until that output's variance is 1 within `tol` (at most `max_iters` times). Earlier
layers are final before a later one is measured, so each sees its real input.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LsuvLayer:
    """What LSUV did to one layer: how often it rescaled, and the variance it left."""

    name: str
    iterations: int
    variance: float


def _output_variance(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> float:
    seen: list[float] = []

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        seen.append(output.detach().double().var().item())
        raise _Enough  # the rest of the forward pass cannot change this layer's output

    handle = layer.register_forward_hook(hook)
    try:
        model(x)
    except _Enough:
        pass
    finally:
        handle.remove()
    return seen[0]


class _Enough(Exception):
    """Stops a forward pass once the layer being measured has produced its output."""


@torch.no_grad()
def rescale_layers(
    model: nn.Module,
    layers: list[tuple[str, nn.Module]],
    x: torch.Tensor,
    *,
    tol: float = 0.1,
    max_iters: int = 10,
) -> list[LsuvLayer]:
    """Rescale each layer's weight until Var(output) is 1 within tol; report per layer.
    The same for both backends: a float32 multiply in place."""
    was_training = model.training
    model.eval()
    records = []
    try:
        for name, layer in layers:
            iterations, variance = 0, _output_variance(model, layer, x)
            while abs(variance - 1.0) > tol and iterations < max_iters and variance > 0:
                scale = 1.0 / variance**0.5
                layer.weight.mul_(scale)
                iterations += 1
                variance = _output_variance(model, layer, x)
            records.append(LsuvLayer(name, iterations, variance))
    finally:
        model.train(was_training)
    return records
