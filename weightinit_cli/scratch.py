"""The init methods from scratch, in NumPy. Never imports torch.

Every function takes a shape in PyTorch's weight layout, (out, in) for Dense and
(out, in/groups, *kernel) for ConvNd, a ``numpy.random.Generator`` and the
method's parameters (names and defaults from methods.py), and returns a float32
array. Samples are drawn in float32 directly, so nothing is converted afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import ShapeError
from .fans import fan_in_and_fan_out
from .methods import (
    TRUNCATED_NORMAL_STD_CORRECTION,
    canonical_name,
    expected_std,
    resolve_params,
)

Shape = Sequence[int]

__all__ = [
    "constant",
    "he_normal",
    "he_uniform",
    "identity",
    "init",
    "lecun_normal",
    "lecun_uniform",
    "normal",
    "ones",
    "orthogonal",
    "sparse",
    "torch_default",
    "torch_default_bias",
    "trunc_normal",
    "uniform",
    "variance_scaling",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]


def _shape(shape: Shape) -> tuple[int, ...]:
    return tuple(int(s) for s in shape)


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


def _normal(shape: Shape, std: float, rng: np.random.Generator | None, mean: float = 0.0):
    out = _rng(rng).standard_normal(_shape(shape), dtype=np.float32)
    out *= np.float32(std)
    if mean:
        out += np.float32(mean)
    return out


def _uniform(shape: Shape, low: float, high: float, rng: np.random.Generator | None):
    out = _rng(rng).random(_shape(shape), dtype=np.float32)
    out *= np.float32(high - low)
    out += np.float32(low)
    return out


def zeros(shape: Shape, *, rng: np.random.Generator | None = None, **params: Any) -> np.ndarray:
    """W = 0."""
    resolve_params("zeros", params)
    return np.zeros(_shape(shape), dtype=np.float32)


def ones(shape: Shape, *, rng: np.random.Generator | None = None, **params: Any) -> np.ndarray:
    """W = 1."""
    resolve_params("ones", params)
    return np.ones(_shape(shape), dtype=np.float32)


def constant(shape: Shape, *, rng: np.random.Generator | None = None, **params: Any) -> np.ndarray:
    """W = value."""
    p = resolve_params("constant", params)
    return np.full(_shape(shape), p["value"], dtype=np.float32)


def normal(shape: Shape, *, rng: np.random.Generator | None = None, **params: Any) -> np.ndarray:
    """N(mean, std²)."""
    p = resolve_params("normal", params)
    return _normal(shape, p["std"], rng, p["mean"])


def uniform(shape: Shape, *, rng: np.random.Generator | None = None, **params: Any) -> np.ndarray:
    """U(a, b)."""
    p = resolve_params("uniform", params)
    return _uniform(shape, p["a"], p["b"], rng)


def _truncated_normal(shape: Shape, mean: float, std: float, a: float, b: float, rng):
    """N(mean, std²) restricted to [a, b] by resampling the values outside."""
    rng = _rng(rng)
    # Resampling only the rejects keeps the cost near one draw when [a, b] holds most mass;
    # for a narrow window fall back to inverse-CDF sampling, which never loops.
    lo_cdf = 0.5 * (1 + math.erf((a - mean) / (std * math.sqrt(2))))
    hi_cdf = 0.5 * (1 + math.erf((b - mean) / (std * math.sqrt(2))))
    if hi_cdf - lo_cdf < 0.3:
        return _inverse_cdf_truncated(shape, mean, std, lo_cdf, hi_cdf, rng)
    out = _normal(shape, std, rng, mean)
    flat = out.reshape(-1)
    outside = np.flatnonzero((flat < a) | (flat > b))
    while outside.size:
        redraw = rng.standard_normal(outside.size, dtype=np.float32) * np.float32(std)
        redraw += np.float32(mean)
        flat[outside] = redraw
        outside = outside[(redraw < a) | (redraw > b)]
    return out


def _inverse_cdf_truncated(shape, mean, std, lo_cdf, hi_cdf, rng):
    from statistics import NormalDist

    u = rng.uniform(lo_cdf, hi_cdf, size=_shape(shape))
    inv = np.vectorize(NormalDist(mean, std).inv_cdf, otypes=[np.float64])
    return inv(np.clip(u, 1e-300, 1 - 1e-16)).astype(np.float32)


def trunc_normal(shape: Shape, *, rng: np.random.Generator | None = None, **params: Any):
    """N(mean, std²) cut to the absolute interval [a, b] (torch semantics)."""
    p = resolve_params("trunc_normal", params)
    return _truncated_normal(shape, p["mean"], p["std"], p["a"], p["b"], rng)


def xavier_uniform(shape: Shape, *, rng: np.random.Generator | None = None, **params: Any):
    """U(±gain·√(6/(fan_in+fan_out)))."""
    bound = math.sqrt(3.0) * expected_std("xavier_uniform", shape, params)
    return _uniform(shape, -bound, bound, rng)


def xavier_normal(shape: Shape, *, rng: np.random.Generator | None = None, **params: Any):
    """N(0, gain²·2/(fan_in+fan_out))."""
    return _normal(shape, expected_std("xavier_normal", shape, params), rng)


def he_uniform(shape: Shape, *, rng: np.random.Generator | None = None, **params: Any):
    """U(±gain·√(3/fan)), gain from the nonlinearity as torch's kaiming_uniform_."""
    bound = math.sqrt(3.0) * expected_std("he_uniform", shape, params)
    return _uniform(shape, -bound, bound, rng)


def he_normal(shape: Shape, *, rng: np.random.Generator | None = None, **params: Any):
    """N(0, gain²/fan), gain from the nonlinearity as torch's kaiming_normal_."""
    return _normal(shape, expected_std("he_normal", shape, params), rng)


def lecun_uniform(shape: Shape, *, rng: np.random.Generator | None = None, **params: Any):
    """U(±gain·√(3/fan_in))."""
    bound = math.sqrt(3.0) * expected_std("lecun_uniform", shape, params)
    return _uniform(shape, -bound, bound, rng)


def lecun_normal(shape: Shape, *, rng: np.random.Generator | None = None, **params: Any):
    """N(0, gain²/fan_in)."""
    return _normal(shape, expected_std("lecun_normal", shape, params), rng)


def variance_scaling(shape: Shape, *, rng: np.random.Generator | None = None, **params: Any):
    """std = gain·√(scale/fan), sampled normal, truncated normal (Keras-corrected) or uniform."""
    p = resolve_params("variance_scaling", params)
    std = expected_std("variance_scaling", shape, p)
    if p["distribution"] == "uniform":
        bound = math.sqrt(3.0) * std
        return _uniform(shape, -bound, bound, rng)
    if p["distribution"] == "normal":
        return _normal(shape, std, rng)
    wide = std / TRUNCATED_NORMAL_STD_CORRECTION
    return _truncated_normal(shape, 0.0, wide, -2 * wide, 2 * wide, rng)


def orthogonal(shape: Shape, *, rng: np.random.Generator | None = None, **params: Any):
    """gain·Q, Q from the QR of a N(0, 1) matrix with R's diagonal made positive.

    Flattened to (out, rest) as torch does; rows are orthonormal when out <= rest,
    columns otherwise. The sign fix makes Q Haar-distributed (Mezzadri 2007).
    """
    p = resolve_params("orthogonal", params)
    shape = _shape(shape)
    if len(shape) < 2:
        raise ShapeError(f"orthogonal needs a weight of at least 2 dimensions; got shape {shape}")
    rows = shape[0]
    cols = math.prod(shape[1:])
    flat = _rng(rng).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    q *= p["gain"]
    return q.reshape(shape).astype(np.float32)


def identity(
    shape: Shape, *, rng: np.random.Generator | None = None, groups: int = 1, **params: Any
) -> np.ndarray:
    """eye for a 2-D weight; dirac (1 at the kernel centre) for a conv weight."""
    resolve_params("identity", params)
    shape = _shape(shape)
    out = np.zeros(shape, dtype=np.float32)
    if len(shape) == 2:
        np.fill_diagonal(out, 1.0)
        return out
    if len(shape) not in (3, 4, 5):
        raise ShapeError(f"identity needs a 2-D to 5-D weight; got shape {shape}")
    if shape[0] % groups:
        raise ShapeError(f"identity: {shape[0]} output channels do not split into {groups} groups")
    per_group = shape[0] // groups
    centre = tuple(k // 2 for k in shape[2:])
    diag = np.arange(min(per_group, shape[1]))
    for g in range(groups):
        out[(g * per_group + diag, diag, *centre)] = 1.0
    return out


def sparse(shape: Shape, *, rng: np.random.Generator | None = None, **params: Any):
    """Each column: ceil(sparsity·rows) zeros at random rows, N(0, std²) elsewhere."""
    p = resolve_params("sparse", params)
    shape = _shape(shape)
    if len(shape) != 2:
        raise ShapeError(f"sparse applies to Dense (2-D) weights only; got shape {shape}")
    rows, cols = shape
    rng = _rng(rng)
    out = _normal(shape, p["std"], rng)
    num_zeros = math.ceil(p["sparsity"] * rows)
    if num_zeros:
        zero_rows = rng.random((rows, cols)).argsort(axis=0)[:num_zeros]
        out[zero_rows, np.arange(cols)] = 0.0
    return out


def torch_default(shape: Shape, *, rng: np.random.Generator | None = None, **params: Any):
    """nn.Linear / nn.ConvNd's own weight init: kaiming_uniform with a=√5, i.e. U(±1/√fan_in)."""
    resolve_params("torch_default", params)
    fan_in, _ = fan_in_and_fan_out(shape)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return _uniform(shape, -bound, bound, rng)


def torch_default_bias(
    weight_shape: Shape, bias_size: int, *, rng: np.random.Generator | None = None
) -> np.ndarray:
    """nn.Linear / nn.ConvNd's own bias init: U(±1/√fan_in) of the weight."""
    fan_in, _ = fan_in_and_fan_out(weight_shape)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return _uniform((bias_size,), -bound, bound, rng)


def init(
    method: str,
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    groups: int = 1,
    **params: Any,
) -> np.ndarray:
    """Any method by name or alias."""
    name = canonical_name(method)
    if name == "identity":
        return identity(shape, rng=rng, groups=groups, **params)
    return globals()[name](shape, rng=rng, **params)
