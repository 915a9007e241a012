"""Per-layer statistics of a model: its weights now, and (in one forward/backward
pass with hooks) its activations and gradients."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .apply import WEIGHTED_LAYERS


@dataclass
class Summary:
    """mean, std, min and max of a tensor (std over all its elements, ddof=0)."""

    mean: float
    std: float
    min: float
    max: float

    @classmethod
    @torch.no_grad()
    def of(cls, tensor: torch.Tensor) -> Summary:
        t = tensor.detach().float()
        std, mean = torch.std_mean(t, correction=0)
        return cls(mean.item(), std.item(), t.min().item(), t.max().item())

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class WeightStats:
    name: str
    kind: str
    shape: tuple[int, ...]
    weight: Summary


def weight_stats(model: nn.Module) -> list[WeightStats]:
    """mean/std/min/max of the weight of every Linear and conv layer, in module order."""
    return [
        WeightStats(name, type(m).__name__, tuple(m.weight.shape), Summary.of(m.weight))
        for name, m in model.named_modules()
        if isinstance(m, WEIGHTED_LAYERS)
    ]
