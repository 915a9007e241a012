"""The torch modules of a transformer's own layers: the token and position embedding, and
multi-head self-attention (Vaswani et al. 2017), and the readout of a sequence.

Every weight here is left to apply.py's rules for modules outside the plan
(parameters.py): the embeddings are drawn N(0, 1), so an embedded token is the sum of two
unit-variance vectors (E[x²] = 2 entering the first block); the query, key and value
projections are three nn.Linear(E, E), drawn by the init method with fans (E, E) each.
The attention outputs the heads' values side by side, without an output projection: that
is the planned dense layer after it, the last weighted layer of its residual branch,
where branch scaling (GPT-2's 1/√(2L)) and Fixup act.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional

if TYPE_CHECKING:
    from .plan import Layer


class TokenEmbedding(nn.Module):
    """Token ids [B, T] (float, as every input reaches a model) -> [B, T, width]: a learned
    embedding of each token plus one of its position."""

    def __init__(self, vocab_size: int, length: int, width: int) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, width)
        self.positions = nn.Embedding(length, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tokens(x.long()) + self.positions.weight


class SelfAttention(nn.Module):
    """Multi-head self-attention, [B, T, E] -> [B, T, E]: per head h (of d = E / heads
    features), softmax(scale · Q_h K_hᵀ) V_h, the heads' outputs concatenated. `scale`:
    1/√d where None (Vaswani et al. 2017, SP); µP sets 1/d (Yang et al. 2021, §4 and
    mup's examples/Transformer: once Q and K correlate after an update, Q_h·K_h grows
    like d, not √d)."""

    def __init__(
        self, width: int, heads: int, bias: bool = True, scale: float | None = None
    ) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.scale = scale
        self.query = nn.Linear(width, width, bias=bias)
        self.key = nn.Linear(width, width, bias=bias)
        self.value = nn.Linear(width, width, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, e = x.shape

        def split(projection: nn.Linear) -> torch.Tensor:  # [B, heads, T, E / heads]
            return projection(x).view(b, t, self.heads, e // self.heads).transpose(1, 2)

        out = functional.scaled_dot_product_attention(
            split(self.query), split(self.key), split(self.value), scale=self.scale
        )
        return out.transpose(1, 2).reshape(b, t, e)

    def extra_repr(self) -> str:
        return f"heads={self.heads}, scale={self.scale}"  # None: 1/√head_dim


class SequencePool(nn.Module):
    """A sequence [B, T, E] -> [B, E]: its mean or max over the positions, or its first
    position (a class-token readout)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "first":
            return x[:, 0]
        return x.mean(dim=1) if self.kind == "avg" else x.amax(dim=1)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


def sequence_module(layer: Layer) -> nn.Module:
    """The module of a planned embedding, attention, or pool over a sequence."""
    spec = layer.spec
    assert layer.in_shape is not None and layer.out_shape is not None
    if spec.type == "embedding":
        return TokenEmbedding(spec.vocab_size, *layer.out_shape)
    if spec.type == "attention":
        return SelfAttention(layer.in_shape[-1], spec.heads, spec.bias)
    return SequencePool(spec.kind)
