"""Histograms of a layer's tensors (weights, activations, gradients) as plain data, in the
form TensorBoard's histogram dashboard reads (its HistogramProto: min, max, count, sum, sum
of squares, and the buckets' right edges and counts).

Nothing here writes or prints; the trackers render these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

BINS = 30  # buckets per histogram, between the tensor's min and max


@dataclass(frozen=True)
class Histogram:
    min: float
    max: float
    num: int
    sum: float
    sum_squares: float
    limits: list[float]  # each bucket's right edge
    counts: list[float]


@dataclass(frozen=True)
class LayerHistograms:
    """One weighted layer at one moment; None where there is nothing to take (no gradient
    yet, an activation not seen)."""

    name: str
    weight: Histogram
    activation: Histogram | None
    grad: Histogram | None


def histogram(tensor: Any, bins: int = BINS) -> Histogram:
    """The histogram of every value of `tensor` (float64 sums; non-finite values are
    counted in num and dropped from the buckets and sums). In torch, on the threads that
    train: NumPy's BLAS threads would wake beside them and slow every step after."""
    import torch

    flat = tensor.detach().reshape(-1).to("cpu", torch.float32)
    num = flat.numel()
    if num == 0:
        return Histogram(0.0, 0.0, num, 0.0, 0.0, [0.0], [0.0])
    low, high = (float(v) for v in torch.aminmax(flat))
    if not (math.isfinite(low) and math.isfinite(high)):  # NaN and inf show in the extremes
        flat = flat[torch.isfinite(flat)]
        if flat.numel() == 0:
            return Histogram(0.0, 0.0, num, 0.0, 0.0, [0.0], [0.0])
        low, high = (float(v) for v in torch.aminmax(flat))
    wide = flat.double()
    if low == high:  # one value: one bucket ending at it
        counts, limits = [float(flat.numel())], [high]
    else:
        counts = torch.histc(flat, bins, low, high).tolist()  # equal buckets, the last closed
        limits = [low + (high - low) * (i + 1) / bins for i in range(bins)]
    return Histogram(
        min=low,
        max=high,
        num=num,
        sum=float(wide.sum()),
        sum_squares=float(wide @ wide),
        limits=limits,
        counts=counts,
    )


def watch_activations(model: Any, plan: Any) -> tuple[dict[str, Histogram], list[Any]]:
    """Forward hooks that take the histogram of each weighted layer's activated output (its
    own output where no activation follows) at the next forward pass: the dict they fill,
    and the handles to remove."""
    modules = dict(model.named_modules())
    seen: dict[str, Histogram] = {}

    def hook_for(name: str):
        def hook(module: Any, inputs: tuple, output: Any) -> None:
            if name not in seen:  # a module called twice is taken at its first call
                seen[name] = histogram(output)

        return hook

    handles = []
    for layer in plan.weighted:
        watched = layer.activation_layer or layer.name
        if watched in modules:
            handles.append(modules[watched].register_forward_hook(hook_for(layer.name)))
    return seen, handles


def layer_histograms(
    names: list[str], weights: list[Any], activations: dict[str, Histogram]
) -> list[LayerHistograms]:
    """Each layer's weight, gradient (where there is one) and activation histograms."""
    return [
        LayerHistograms(
            name,
            histogram(weight),
            activations.get(name),
            histogram(weight.grad) if weight.grad is not None else None,
        )
        for name, weight in zip(names, weights, strict=True)
    ]
