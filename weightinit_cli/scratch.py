"""The init methods from scratch, in NumPy: each formula in a few lines you can read.

Read this file the way you would read micrograd, to see what each method *is*. It never
imports torch; torch_init.py does the same through torch.nn.init, and the tests check
that the two draw from the same distributions. Speed is not a goal here; being right and
plain is.

A weight is in PyTorch's layout, (out, in) for Dense and (out, in/groups, *kernel) for
ConvNd, so that fan_in = in·prod(kernel) and fan_out = out·prod(kernel) (fans.py), and
every result is a float32 array. ``sample(spec, shape, rng)`` reads an InitSpec
(initspec.py: the method and all of its parameters, checked and defaulted once);
``init(method, shape, **params)`` and the one function per method,
``he_normal(shape, rng=rng, mode="fan_out")``, make that spec for you. ``std`` below is
what ``InitSpec.target_std`` computes, and a uniform U(-r, r) with r = √3·std has that std.

- zeros, ones, constant: W = 0, 1 or value. Every unit of a layer then computes the same
  thing and gets the same gradient, so training never tells them apart.
- normal N(mean, std²) and uniform U(a, b): fixed scales, blind to the layer's size.
- trunc_normal: N(mean, std²) cut to [a, b], as torch's trunc_normal_: a and b are
  absolute values, and the std is not corrected (the result's std is below ``std``).
- xavier_normal / xavier_uniform (Glorot & Bengio 2010): std = gain·√(2/(fan_in+fan_out)),
  the compromise between keeping the variance of the signal going forward (1/fan_in)
  and of the gradient coming back (1/fan_out).
- he_normal / he_uniform (He et al. 2015): std = gain/√fan with gain = √(2/(1+a²)): a
  ReLU zeroes half of what it gets, halving the second moment, and gain² = 2 restores it.
- lecun_normal / lecun_uniform (LeCun et al. 1998): std = gain/√fan_in, unit variance
  through a linear (or SELU) layer.
- variance_scaling (Keras): std = gain·√(scale/fan), the family the three above belong
  to; drawn normal, uniform, or truncated normal the Keras way: N(0, s²) cut at ±2s with
  s = std/0.8796 (0.8796 is the std of N(0, 1) cut at ±2), so the result has std ``std``.
- orthogonal (Saxe et al. 2014): gain·Q, Q from the QR of a Gaussian matrix with its
  signs fixed so that Q is uniform (Haar) over the orthogonal matrices (Mezzadri 2007).
  Every singular value is gain: a deep linear net neither shrinks nor grows any direction.
- delta_orthogonal (Xiao et al. 2018): a conv kernel that is gain·Q, Q an orthogonal
  (out × in) matrix, at its centre tap and 0 elsewhere: at init the layer maps each
  position orthogonally, and conv nets of 10,000 layers train.
- lsuv (Mishkin & Matas 2016): starts orthogonal (drawn here); apply.py then rescales
  each layer with a batch of data until its output has unit variance.
- identity (Le et al. 2015; Zagoruyko & Komodakis 2017): eye for a Dense weight; for a
  conv weight a dirac, a 1 at the kernel centre from input channel i to output channel i
  (in each group), so the layer passes its input through.
- sparse (Martens 2010): N(0, std²), and ceil(sparsity·rows) entries of every column,
  at random rows, set to 0, as torch's sparse_.
- torch_default: what nn.Linear and nn.ConvNd do on their own (kaiming_uniform with
  a = √5): U(±1/√fan_in), and the bias U(±1/√fan_in) too (torch_default_bias).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .fans import fan_in_and_fan_out
from .initspec import InitSpec
from .methods import TRUNCATED_NORMAL_STD_CORRECTION

Shape = Sequence[int]
Rng = np.random.Generator | None

__all__ = [
    "constant",
    "delta_orthogonal",
    "fixup",
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
    "sample",
    "skipinit",
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

# --------------------------------------------------------------------------- the samplers


def _normal(rng: np.random.Generator, shape: tuple[int, ...], mean: float, std: float):
    """N(mean, std²)."""
    return mean + std * rng.standard_normal(shape, dtype=np.float32)


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], low: float, high: float):
    """U(low, high): low + (high - low)·u, u ~ U[0, 1), scaled in float64 (in float32,
    high - low would overflow for bounds near ±3.4e38)."""
    u = rng.random(shape, dtype=np.float32)
    return (low + (high - low) * u.astype(np.float64)).astype(np.float32)


def _truncated_normal(
    rng: np.random.Generator, shape: tuple[int, ...], mean: float, std: float, a: float, b: float
) -> np.ndarray:
    """N(mean, std²) restricted to [a, b], by rejection that stays cheap for every window.

    In standard units z = (x - mean)/std the window is [α, β] = [(a - mean)/std,
    (b - mean)/std]; mirror it (z -> -z) so that β >= -α, i.e. it leans right of 0.
    Draw a proposal for every entry, keep those accepted and redraw the rest, with the
    proposal that suits the window (Robert 1995):

    - it holds 0 and reaches 1 (α <= 0, β >= 1): z ~ N(0, 1), kept if it falls in [α, β];
      the window holds at least P(0 <= z <= 1) = 34% of the mass.
    - it holds 0 but is narrow (α <= 0, β < 1): z ~ U(α, β), kept with probability
      exp(-z²/2), the density over its peak, >= exp(-1/2).
    - it lies right of 0 and is narrow (α > 0, β² - α² <= 2): z ~ U(α, β), kept with
      probability exp((α² - z²)/2), the density over its value at α, >= 1/e.
    - it lies right of 0 and is wide: z = α + Exp(λ) with λ = (α + √(α² + 4))/2 (the rate
      that fits the tail best), kept with probability exp(-(z - λ)²/2), which keeps over
      3/4 of the proposals on [α, ∞), and if z <= β, which keeps over 1 - 1/e of those.

    So whatever the window, std 1e7 on [-2, 2] as well as std 1 on [10, 11], a proposal
    is kept with probability above a third, and the redraws die out geometrically.
    """
    alpha, beta = (a - mean) / std, (b - mean) / std
    if not (math.isfinite(alpha) and math.isfinite(beta)):
        # std is so small against the window that, in float32, every draw is the point
        # of [a, b] nearest the mean.
        return np.full(shape, min(max(mean, a), b), dtype=np.float32)
    flip = alpha + beta < 0
    if flip:
        alpha, beta = -beta, -alpha
    z = np.empty(math.prod(shape))
    todo = np.arange(z.size)  # the entries still to draw
    while todo.size:
        proposal, keep = _propose(rng, todo.size, alpha, beta)
        z[todo[keep]] = proposal[keep]
        todo = todo[~keep]
    if flip:
        z = -z
    # In exact arithmetic x is in [a, b]; the clip only catches rounding.
    x = np.clip(mean + std * z, a, b)
    return x.reshape(shape).astype(np.float32)


def _propose(rng: np.random.Generator, k: int, alpha: float, beta: float):
    """k proposals for N(0, 1) on [alpha, beta] (beta >= -alpha), and which are kept."""
    if alpha <= 0 and beta >= 1:
        z = rng.standard_normal(k)
        return z, (alpha <= z) & (z <= beta)
    if alpha <= 0:
        z = rng.uniform(alpha, beta, k)
        return z, rng.random(k) < np.exp(-(z**2) / 2)
    if (beta - alpha) * (beta + alpha) <= 2:
        z = rng.uniform(alpha, beta, k)
        return z, rng.random(k) < np.exp((alpha - z) * (alpha + z) / 2)
    rate = alpha / 2 + math.hypot(alpha / 2, 1)  # (α + √(α² + 4))/2 without overflow
    z = alpha + rng.exponential(1 / rate, k)
    return z, (z <= beta) & (rng.random(k) < np.exp(-((z - rate) ** 2) / 2))


def _orthogonal(rng: np.random.Generator, shape: tuple[int, ...], gain: float) -> np.ndarray:
    """gain·Q, as torch.nn.init.orthogonal_: the weight flattened to (rows, rest), the QR
    of a Gaussian matrix (of its transpose when rows < rest, so that Q is tall), Q times
    sign(diag R) (which makes it Haar; a sign of 0, of probability 0, counts as +1)."""
    rows, cols = shape[0], math.prod(shape[1:])
    gaussian = rng.standard_normal((rows, cols))  # float64
    if rows < cols:
        gaussian = gaussian.T
    q, r = np.linalg.qr(gaussian)
    q *= np.where(np.diag(r) < 0, -1.0, 1.0)
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(np.float32)


def _delta_orthogonal(rng: np.random.Generator, shape: tuple[int, ...], gain: float):
    """gain·Q (out × in, orthogonal) at the kernel's centre tap, 0 at the others."""
    if len(shape) == 2:
        return _orthogonal(rng, shape, gain)
    w = np.zeros(shape, dtype=np.float32)
    centre = tuple(k // 2 for k in shape[2:])
    w[(slice(None), slice(None), *centre)] = _orthogonal(rng, shape[:2], gain)
    return w


def _identity(shape: tuple[int, ...], groups: int) -> np.ndarray:
    """eye (2-D), or dirac (3-5-D): in each group, input channel i to output channel i."""
    if len(shape) == 2:
        return np.eye(shape[0], shape[1], dtype=np.float32)
    w = np.zeros(shape, dtype=np.float32)
    per_group = shape[0] // groups
    centre = tuple(k // 2 for k in shape[2:])
    for g in range(groups):
        for i in range(min(per_group, shape[1])):
            w[(g * per_group + i, i, *centre)] = 1.0
    return w


def _sparse(rng: np.random.Generator, shape: tuple[int, ...], sparsity: float, std: float):
    """N(0, std²), and in every column the first ceil(sparsity·rows) rows of a random
    permutation of the rows set to 0."""
    rows, cols = shape
    w = _normal(rng, shape, 0.0, std)
    num_zeros = math.ceil(sparsity * rows)
    for col in range(cols):
        w[rng.permutation(rows)[:num_zeros], col] = 0.0
    return w


# --------------------------------------------------------------------------- InitSpec -> array


def _draw(spec: InitSpec, shape: tuple[int, ...], rng: np.random.Generator, groups: int):
    """The method's formula: one branch per method."""
    name, p = spec.method, spec.params
    if name == "zeros":
        return np.zeros(shape, dtype=np.float32)
    if name == "ones":
        return np.ones(shape, dtype=np.float32)
    if name == "constant":
        return np.full(shape, p["value"], dtype=np.float32)
    if name == "normal":
        return _normal(rng, shape, p["mean"], p["std"])
    if name == "uniform":
        return _uniform(rng, shape, p["a"], p["b"])
    if name == "trunc_normal":
        return _truncated_normal(rng, shape, p["mean"], p["std"], p["a"], p["b"])
    if name in ("xavier_normal", "he_normal", "lecun_normal"):
        return _normal(rng, shape, 0.0, spec.target_std(shape))
    if name in ("xavier_uniform", "he_uniform", "lecun_uniform"):
        bound = math.sqrt(3.0) * spec.target_std(shape)
        return _uniform(rng, shape, -bound, bound)
    if name == "variance_scaling":
        std = spec.target_std(shape)
        if p["distribution"] == "normal":
            return _normal(rng, shape, 0.0, std)
        if p["distribution"] == "uniform":
            return _uniform(rng, shape, -math.sqrt(3.0) * std, math.sqrt(3.0) * std)
        wide = std / TRUNCATED_NORMAL_STD_CORRECTION  # cut at ±2 wide: std `std` again
        return _truncated_normal(rng, shape, 0.0, wide, -2 * wide, 2 * wide)
    if name == "orthogonal":
        return _orthogonal(rng, shape, p["gain"])
    if name == "delta_orthogonal":
        return _delta_orthogonal(rng, shape, p["gain"])
    if name == "identity":
        return _identity(shape, groups)
    if name == "sparse":
        return _sparse(rng, shape, p["sparsity"], p["std"])
    if name == "torch_default":
        fan_in, _ = fan_in_and_fan_out(shape)
        bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
        return _uniform(rng, shape, -bound, bound)
    raise AssertionError(f"scratch misses {name}")  # every catalogue entry is handled


def sample(spec: InitSpec, shape: Shape, rng: Rng = None, groups: int = 1) -> np.ndarray:
    """A float32 weight of `shape` (PyTorch layout) drawn as `spec` says.

    Reads spec.method and spec.params only (lsuv: its orthogonal starting point, with
    its gain). `groups` matters for identity only (a dirac per group). Without `rng`
    the draw is from fresh OS entropy; one rng state always gives the same weight.
    """
    shape = tuple(int(s) for s in shape)
    rng = rng if rng is not None else np.random.default_rng()
    spec = spec.initial()
    spec.check_shape(shape, groups)
    if 0 in shape:  # nothing to draw (and no fan to divide by)
        return np.zeros(shape, dtype=np.float32)
    return np.ascontiguousarray(_draw(spec, shape, rng, groups), dtype=np.float32)


def init(
    method: str, shape: Shape, *, rng: Rng = None, groups: int = 1, **params: Any
) -> np.ndarray:
    """Any method by name or alias, with its parameters (a WinitError if they are bad)."""
    return sample(InitSpec.create(method, params), shape, rng, groups)


def torch_default_bias(weight_shape: Shape, bias_size: int, *, rng: Rng = None) -> np.ndarray:
    """nn.Linear / nn.ConvNd's own bias init: U(±1/√fan_in) of the weight, float32."""
    fan_in, _ = fan_in_and_fan_out(weight_shape)
    bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
    rng = rng if rng is not None else np.random.default_rng()
    return _uniform(rng, (int(bias_size),), -bound, bound)


# --------------------------------------------------------------------------- one per method
# Each is init(name, ...); `params` go to the spec whole, so a parameter the method does
# not take (groups, say, for any method but identity) is a WinitError, not ignored.


def _by_name(method: str, shape: Shape, rng: Rng, params: dict[str, Any]) -> np.ndarray:
    return sample(InitSpec.create(method, params), shape, rng)


def zeros(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """W = 0."""
    return _by_name("zeros", shape, rng, params)


def ones(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """W = 1."""
    return _by_name("ones", shape, rng, params)


def constant(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """W = value."""
    return _by_name("constant", shape, rng, params)


def normal(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """N(mean, std²)."""
    return _by_name("normal", shape, rng, params)


def uniform(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """U(a, b)."""
    return _by_name("uniform", shape, rng, params)


def trunc_normal(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """N(mean, std²) cut to the absolute interval [a, b] (torch semantics)."""
    return _by_name("trunc_normal", shape, rng, params)


def xavier_uniform(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """U(±gain·√(6/(fan_in+fan_out))) (Glorot & Bengio 2010)."""
    return _by_name("xavier_uniform", shape, rng, params)


def xavier_normal(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """N(0, gain²·2/(fan_in+fan_out)) (Glorot & Bengio 2010)."""
    return _by_name("xavier_normal", shape, rng, params)


def he_uniform(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """U(±gain·√(3/fan)), gain from the nonlinearity as torch's kaiming_uniform_."""
    return _by_name("he_uniform", shape, rng, params)


def he_normal(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """N(0, gain²/fan), gain from the nonlinearity as torch's kaiming_normal_."""
    return _by_name("he_normal", shape, rng, params)


def lecun_uniform(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """U(±gain·√(3/fan_in)) (LeCun et al. 1998)."""
    return _by_name("lecun_uniform", shape, rng, params)


def lecun_normal(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """N(0, gain²/fan_in) (LeCun et al. 1998)."""
    return _by_name("lecun_normal", shape, rng, params)


def variance_scaling(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """std = gain·√(scale/fan), drawn normal, uniform or truncated normal (Keras-corrected)."""
    return _by_name("variance_scaling", shape, rng, params)


def orthogonal(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """gain·Q, Q Haar-orthogonal, the weight flattened to (out, rest) (Saxe et al. 2014)."""
    return _by_name("orthogonal", shape, rng, params)


def delta_orthogonal(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """gain·Q at the kernel centre and 0 elsewhere (Xiao et al. 2018); 2-D: orthogonal."""
    return _by_name("delta_orthogonal", shape, rng, params)


def lsuv(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """LSUV's starting point: orthogonal with its `gain` (apply.py rescales it with data)."""
    return _by_name("lsuv", shape, rng, params)


def identity(shape: Shape, *, rng: Rng = None, groups: int = 1, **params: Any) -> np.ndarray:
    """eye for a 2-D weight; dirac (1 at the kernel centre, per group) for a conv weight."""
    return init("identity", shape, rng=rng, groups=groups, **params)


def sparse(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """N(0, std²), ceil(sparsity·rows) zeros at random rows of each column (Martens 2010)."""
    return _by_name("sparse", shape, rng, params)


def torch_default(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """nn.Linear / nn.ConvNd's own weight init: U(±1/√fan_in)."""
    return _by_name("torch_default", shape, rng, params)


def fixup(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """Fixup's weight draw: he_normal's. The scheme itself (per-layer factors, gates) needs
    the network: apply_weight_init on a residual net winit builds."""
    return _by_name("fixup", shape, rng, params)


def skipinit(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """SkipInit's weight draw: he_normal's. The scheme itself (per-layer factors, gates) needs
    the network: apply_weight_init on a residual net winit builds."""
    return _by_name("skipinit", shape, rng, params)


def rezero(shape: Shape, *, rng: Rng = None, **params: Any) -> np.ndarray:
    """ReZero's weight draw: he_normal's. The scheme itself (per-layer factors, gates) needs
    the network: apply_weight_init on a residual net winit builds."""
    return _by_name("rezero", shape, rng, params)
