"""The same init methods through ``torch.nn.init``, read from the same InitSpec.

``fill_(tensor, spec, generator=...)`` initializes a tensor in place from an InitSpec
(initspec.py: the method and all of its parameters, checked and defaulted once);
``init(method, shape, generator=..., **params)`` and one function per method
(``he_normal(shape, generator=g, mode="fan_out")``) return a new float32 CPU tensor, as
``scratch.<method>`` returns a NumPy array.

Where torch has the method it is called as is (xavier_*, kaiming_*, orthogonal_, eye_,
dirac_, trunc_normal_, ...). Where it has no direct form (lecun with a gain, he with an
explicit gain or a gelu/elu/silu gain, variance_scaling) the spec's target std is drawn
with torch's normal_ / uniform_ / trunc_normal_. sparse re-implements torch's sparse_
so that the generator also places the zeros.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.nn import init as nn_init

from .fans import VARIANCE_PRESERVING_GAINS, fan_in_and_fan_out
from .initspec import InitSpec
from .methods import TRUNCATED_NORMAL_STD_CORRECTION

Shape = Sequence[int]
Gen = torch.Generator | None

__all__ = [
    "constant",
    "delta_orthogonal",
    "fixup",
    "fill_",
    "he_normal",
    "he_uniform",
    "identity",
    "init",
    "lecun_normal",
    "lecun_uniform",
    "lsuv",
    "normal",
    "ones",
    "orthogonal",
    "rezero",
    "skipinit",
    "sparse",
    "torch_default",
    "torch_default_bias_",
    "trunc_normal",
    "uniform",
    "variance_scaling",
    "xavier_normal",
    "xavier_uniform",
    "zeros",
]


def _std_uniform_(t: torch.Tensor, std: float, g: Gen) -> torch.Tensor:
    """U(±√3·std), which has std `std`."""
    bound = math.sqrt(3.0) * std
    return nn_init.uniform_(t, -bound, bound, generator=g)


def _he_(t: torch.Tensor, spec: InitSpec, g: Gen, uniform: bool) -> torch.Tensor:
    """kaiming_uniform_ / kaiming_normal_, unless the gain is one torch cannot compute: an
    explicit gain, or a gelu/elu/silu nonlinearity (then the spec's std, sampled)."""
    p = spec.params
    if p["gain"] is None and p["nonlinearity"] not in VARIANCE_PRESERVING_GAINS:
        kaiming = nn_init.kaiming_uniform_ if uniform else nn_init.kaiming_normal_
        nonlinearity = "linear" if p["nonlinearity"] == "identity" else p["nonlinearity"]
        return kaiming(t, a=p["a"], mode=p["mode"], nonlinearity=nonlinearity, generator=g)
    std = spec.target_std(t.shape)
    return _std_uniform_(t, std, g) if uniform else nn_init.normal_(t, 0.0, std, generator=g)


def _variance_scaling_(t: torch.Tensor, spec: InitSpec, g: Gen) -> torch.Tensor:
    std = spec.target_std(t.shape)
    distribution = spec.params["distribution"]
    if distribution == "uniform":
        return _std_uniform_(t, std, g)
    if distribution == "normal":
        return nn_init.normal_(t, 0.0, std, generator=g)
    wide = std / TRUNCATED_NORMAL_STD_CORRECTION  # cut at ±2 wide, the std is `std` again
    return nn_init.trunc_normal_(t, 0.0, wide, -2 * wide, 2 * wide, generator=g)


def _sparse_(t: torch.Tensor, sparsity: float, std: float, g: Gen) -> torch.Tensor:
    """torch.nn.init.sparse_'s algorithm, with the generator also used for the zeros.

    torch 2.x's sparse_ draws its zero positions with torch.randperm(rows) from the
    global RNG, ignoring `generator`; a seeded run would then not be reproducible.
    """
    rows, cols = t.shape
    num_zeros = math.ceil(sparsity * rows)
    nn_init.normal_(t, 0.0, std, generator=g)
    for col in range(cols):
        t[torch.randperm(rows, generator=g)[:num_zeros], col] = 0
    return t


def _delta_orthogonal_(t: torch.Tensor, gain: float, g: Gen) -> torch.Tensor:
    if t.dim() == 2:
        return nn_init.orthogonal_(t, gain=gain, generator=g)
    centre = nn_init.orthogonal_(t.new_empty(t.shape[:2]), gain=gain, generator=g)
    t.zero_()
    t[(slice(None), slice(None), *(k // 2 for k in t.shape[2:]))] = centre
    return t


@torch.no_grad()
def fill_(
    tensor: torch.Tensor, spec: InitSpec, *, generator: Gen = None, groups: int = 1
) -> torch.Tensor:
    """Initialize `tensor` in place as `spec` says; returns it.

    Reads spec.method and spec.params only (lsuv: its orthogonal starting point, which
    apply.py rescales with data). `groups` matters for identity only (dirac_ per group).
    """
    spec = spec.initial()
    spec.check_shape(tensor.shape, groups)
    if tensor.numel() == 0:
        return tensor
    name, p, g, t = spec.method, spec.params, generator, tensor
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
        return _he_(t, spec, g, uniform=name == "he_uniform")
    if name in ("lecun_uniform", "lecun_normal"):
        kaiming = nn_init.kaiming_uniform_ if name == "lecun_uniform" else nn_init.kaiming_normal_
        kaiming(t, mode="fan_in", nonlinearity="linear", generator=g)
        return t.mul_(p["gain"]) if p["gain"] != 1.0 else t
    if name == "variance_scaling":
        return _variance_scaling_(t, spec, g)
    if name == "orthogonal":
        return nn_init.orthogonal_(t, gain=p["gain"], generator=g)
    if name == "delta_orthogonal":
        return _delta_orthogonal_(t, p["gain"], g)
    if name == "identity":
        return nn_init.eye_(t) if t.dim() == 2 else nn_init.dirac_(t, groups=groups)
    if name == "sparse":
        return _sparse_(t, p["sparsity"], p["std"], g)
    if name == "torch_default":
        return nn_init.kaiming_uniform_(t, a=math.sqrt(5), generator=g)
    raise AssertionError(f"torch backend misses {name}")  # every catalogue entry is handled


@torch.no_grad()
def torch_default_bias_(
    bias: torch.Tensor, weight_shape: Shape, *, generator: Gen = None
) -> torch.Tensor:
    """nn.Linear / nn.ConvNd's own bias init, in place: U(±1/√fan_in) of the weight."""
    fan_in, _ = fan_in_and_fan_out(weight_shape)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return nn_init.uniform_(bias, -bound, bound, generator=generator)


def init(
    method: str, shape: Shape, *, generator: Gen = None, groups: int = 1, **params: Any
) -> torch.Tensor:
    """A new float32 CPU tensor of `shape`, initialized with a method by name or alias."""
    tensor = torch.empty(tuple(int(s) for s in shape), dtype=torch.float32)
    return fill_(tensor, InitSpec.create(method, params), generator=generator, groups=groups)


# --------------------------------------------------------------------------- one per method
# Each is init(name, ...); `params` go to the spec whole, so a parameter the method does
# not take (groups, say, for any method but identity) is a WinitError, not ignored.


def _by_name(method: str, shape: Shape, generator: Gen, params: dict[str, Any]) -> torch.Tensor:
    tensor = torch.empty(tuple(int(s) for s in shape), dtype=torch.float32)
    return fill_(tensor, InitSpec.create(method, params), generator=generator)


def zeros(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """W = 0."""
    return _by_name("zeros", shape, generator, params)


def ones(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """W = 1."""
    return _by_name("ones", shape, generator, params)


def constant(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """W = value."""
    return _by_name("constant", shape, generator, params)


def normal(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """N(mean, std²): normal_."""
    return _by_name("normal", shape, generator, params)


def uniform(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """U(a, b): uniform_."""
    return _by_name("uniform", shape, generator, params)


def trunc_normal(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """N(mean, std²) cut to the absolute interval [a, b]: trunc_normal_."""
    return _by_name("trunc_normal", shape, generator, params)


def xavier_uniform(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """U(±gain·√(6/(fan_in+fan_out))): xavier_uniform_."""
    return _by_name("xavier_uniform", shape, generator, params)


def xavier_normal(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """N(0, gain²·2/(fan_in+fan_out)): xavier_normal_."""
    return _by_name("xavier_normal", shape, generator, params)


def he_uniform(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """U(±gain·√(3/fan)): kaiming_uniform_."""
    return _by_name("he_uniform", shape, generator, params)


def he_normal(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """N(0, gain²/fan): kaiming_normal_."""
    return _by_name("he_normal", shape, generator, params)


def lecun_uniform(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """U(±gain·√(3/fan_in)): kaiming_uniform_(nonlinearity='linear'), times gain."""
    return _by_name("lecun_uniform", shape, generator, params)


def lecun_normal(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """N(0, gain²/fan_in): kaiming_normal_(nonlinearity='linear'), times gain."""
    return _by_name("lecun_normal", shape, generator, params)


def variance_scaling(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """std = gain·√(scale/fan): normal_, uniform_ or trunc_normal_ (Keras-corrected)."""
    return _by_name("variance_scaling", shape, generator, params)


def orthogonal(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """gain·Q, Q Haar-orthogonal: orthogonal_."""
    return _by_name("orthogonal", shape, generator, params)


def delta_orthogonal(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """orthogonal_ (out × in) at the kernel centre, 0 elsewhere; 2-D: orthogonal_."""
    return _by_name("delta_orthogonal", shape, generator, params)


def lsuv(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """LSUV's starting point: orthogonal_ with its `gain` (apply.py rescales it with data)."""
    return _by_name("lsuv", shape, generator, params)


def identity(
    shape: Shape, *, generator: Gen = None, groups: int = 1, **params: Any
) -> torch.Tensor:
    """eye_ for a 2-D weight, dirac_(groups) for a conv weight."""
    return init("identity", shape, generator=generator, groups=groups, **params)


def sparse(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """N(0, std²), ceil(sparsity·rows) zeros per column: sparse_, seeded zeros."""
    return _by_name("sparse", shape, generator, params)


def torch_default(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """nn.Linear / nn.ConvNd's own weight init: kaiming_uniform_(a=√5) = U(±1/√fan_in)."""
    return _by_name("torch_default", shape, generator, params)


def fixup(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """Fixup's weight draw: he_normal's. The scheme itself (per-layer factors, gates) needs
    the network: apply_weight_init on a residual net winit builds."""
    return _by_name("fixup", shape, generator, params)


def skipinit(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """SkipInit's weight draw: he_normal's. The scheme itself (per-layer factors, gates) needs
    the network: apply_weight_init on a residual net winit builds."""
    return _by_name("skipinit", shape, generator, params)


def rezero(shape: Shape, *, generator: Gen = None, **params: Any) -> torch.Tensor:
    """ReZero's weight draw: he_normal's. The scheme itself (per-layer factors, gates) needs
    the network: apply_weight_init on a residual net winit builds."""
    return _by_name("rezero", shape, generator, params)
