"""The same init methods through ``torch.nn.init``, with the same names and parameters.

``fill_(tensor, method, generator=..., **params)`` initializes a tensor in place;
``<method>(shape, generator=..., **params)`` returns a new float32 CPU tensor, as
``scratch.<method>`` returns a NumPy array. Where torch has the method it is
called as is (xavier_*, kaiming_*, orthogonal_, sparse_, eye_, dirac_, trunc_normal_);
where torch has no direct form (lecun with a gain, he with an explicit gain or a
gelu/elu/silu gain, variance_scaling) the shared std from methods.py is sampled with
torch's normal_/uniform_/trunc_normal_.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.nn import init as nn_init

from .errors import ShapeError
from .fans import VARIANCE_PRESERVING_GAINS, fan_in_and_fan_out
from .methods import METHODS, TRUNCATED_NORMAL_STD_CORRECTION, canonical_name, expected_std
from .methods import resolve_params as _resolve


def _std_uniform_(t: torch.Tensor, std: float, g: torch.Generator | None) -> torch.Tensor:
    bound = math.sqrt(3.0) * std
    return nn_init.uniform_(t, -bound, bound, generator=g)


def _he_(t: torch.Tensor, p: dict[str, Any], g: torch.Generator | None, uniform: bool):
    if p["gain"] is None and p["nonlinearity"] not in VARIANCE_PRESERVING_GAINS:
        kaiming = nn_init.kaiming_uniform_ if uniform else nn_init.kaiming_normal_
        nonlinearity = "linear" if p["nonlinearity"] == "identity" else p["nonlinearity"]
        return kaiming(t, a=p["a"], mode=p["mode"], nonlinearity=nonlinearity, generator=g)
    std = expected_std("he_uniform", t.shape, p)
    return _std_uniform_(t, std, g) if uniform else nn_init.normal_(t, 0.0, std, generator=g)


def _variance_scaling_(t: torch.Tensor, p: dict[str, Any], g: torch.Generator | None):
    std = expected_std("variance_scaling", t.shape, p)
    if p["distribution"] == "uniform":
        return _std_uniform_(t, std, g)
    if p["distribution"] == "normal":
        return nn_init.normal_(t, 0.0, std, generator=g)
    wide = std / TRUNCATED_NORMAL_STD_CORRECTION
    return nn_init.trunc_normal_(t, 0.0, wide, -2 * wide, 2 * wide, generator=g)


def _sparse_(t: torch.Tensor, sparsity: float, std: float, g: torch.Generator | None):
    """torch.nn.init.sparse_'s algorithm, with the generator also used for the zeros.

    torch 2.x's sparse_ draws its zero positions with torch.randperm(rows) from the
    global RNG, ignoring `generator`; a seeded run would then not be reproducible.
    """
    if t.dim() != 2:
        raise ShapeError(f"sparse applies to Dense (2-D) weights only; got shape {tuple(t.shape)}")
    rows, cols = t.shape
    num_zeros = math.ceil(sparsity * rows)
    nn_init.normal_(t, 0.0, std, generator=g)
    for col in range(cols):
        t[torch.randperm(rows, generator=g)[:num_zeros], col] = 0
    return t


def _torch_default_(t: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return nn_init.kaiming_uniform_(t, a=math.sqrt(5), generator=g)


@torch.no_grad()
def fill_(
    tensor: torch.Tensor,
    method: str,
    *,
    generator: torch.Generator | None = None,
    groups: int = 1,
    **params: Any,
) -> torch.Tensor:
    """Initialize `tensor` in place with a method by name or alias."""
    name = canonical_name(method)
    p = _resolve(name, params)
    g = generator
    t = tensor
    if name == "zeros":
        return nn_init.zeros_(t)
    if name == "ones":
        return nn_init.ones_(t)
    if name == "constant":
        return nn_init.constant_(t, p["value"])
    if name == "normal":
        return nn_init.normal_(t, p["mean"], p["std"], generator=g)
    if name == "uniform":
        return nn_init.uniform_(t, p["a"], p["b"], generator=g)
    if name == "trunc_normal":
        return nn_init.trunc_normal_(t, p["mean"], p["std"], p["a"], p["b"], generator=g)
    if name == "xavier_uniform":
        return nn_init.xavier_uniform_(t, gain=p["gain"], generator=g)
    if name == "xavier_normal":
        return nn_init.xavier_normal_(t, gain=p["gain"], generator=g)
    if name in ("he_uniform", "he_normal"):
        return _he_(t, p, g, uniform=name == "he_uniform")
    if name in ("lecun_uniform", "lecun_normal"):
        kaiming = nn_init.kaiming_uniform_ if name == "lecun_uniform" else nn_init.kaiming_normal_
        kaiming(t, mode="fan_in", nonlinearity="linear", generator=g)
        return t.mul_(p["gain"]) if p["gain"] != 1.0 else t
    if name == "variance_scaling":
        return _variance_scaling_(t, p, g)
    if name in ("orthogonal", "lsuv"):  # lsuv starts orthogonal; apply.py rescales with data
        return nn_init.orthogonal_(t, gain=p["gain"], generator=g)
    if name == "delta_orthogonal":
        if t.dim() == 2:
            return nn_init.orthogonal_(t, gain=p["gain"], generator=g)
        centre = nn_init.orthogonal_(t.new_empty(t.shape[:2]), gain=p["gain"], generator=g)
        t.zero_()
        t[(slice(None), slice(None), *(k // 2 for k in t.shape[2:]))] = centre
        return t
    if name == "identity":
        return nn_init.eye_(t) if t.dim() == 2 else nn_init.dirac_(t, groups=groups)
    if name == "sparse":
        return _sparse_(t, p["sparsity"], p["std"], g)
    if name == "torch_default":
        return _torch_default_(t, g)
    raise AssertionError(f"torch backend misses {name}")  # every catalogue entry is handled


@torch.no_grad()
def torch_default_bias_(
    bias: torch.Tensor, weight_shape: Sequence[int], *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """nn.Linear / nn.ConvNd's own bias init: U(±1/√fan_in) of the weight."""
    fan_in, _ = fan_in_and_fan_out(weight_shape)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return nn_init.uniform_(bias, -bound, bound, generator=generator)


def init(
    method: str,
    shape: Sequence[int],
    *,
    generator: torch.Generator | None = None,
    groups: int = 1,
    **params: Any,
) -> torch.Tensor:
    """A new float32 CPU tensor of `shape` initialized with a method by name or alias."""
    tensor = torch.empty(tuple(int(s) for s in shape), dtype=torch.float32)
    return fill_(tensor, method, generator=generator, groups=groups, **params)


def _method_function(name: str):
    def initializer(
        shape: Sequence[int], *, generator: torch.Generator | None = None, **params: Any
    ) -> torch.Tensor:
        return init(name, shape, generator=generator, **params)

    initializer.__name__ = initializer.__qualname__ = name
    initializer.__doc__ = f"{METHODS[name].formula} (see methods.py), through torch.nn.init."
    return initializer


# One module-level function per method, mirroring scratch.<method>.
globals().update({name: _method_function(name) for name in METHODS})
