"""The init methods from scratch, in NumPy. Never imports torch.

Every function takes a shape in PyTorch's weight layout, (out, in) for Dense and
(out, in/groups, *kernel) for ConvNd, a ``numpy.random.Generator`` and the
method's parameters (names and defaults from methods.py), and returns a float32
array. Samples are drawn in float32 directly, so nothing is converted afterwards.
``out=`` (a writable C-contiguous float32 array of the shape, such as a CPU
parameter's ``.detach().numpy()``) makes it write there instead of a new array;
apply_weight_init uses that to skip a second tensor and the copy.

Speed and reproducibility
-------------------------
An array of more than ``CHUNK`` elements is filled in chunks of ``CHUNK`` elements
(the last one shorter). Each chunk has its own PCG64DXSM generator, seeded by a child of
one ``SeedSequence`` (``SeedSequence.spawn``), and the chunks run on a thread pool:
NumPy releases the GIL while it draws and computes, so they fill in parallel. The
``SeedSequence`` is seeded with four 64-bit words drawn from the caller's ``rng``, so
two calls with one ``rng`` give different tensors, and one seed always gives the same
tensor. The values depend on the ``rng`` state, the shape, the method and ``CHUNK``,
never on the number of threads. Arrays of at most ``CHUNK`` elements are drawn from
``rng`` itself, in one go.

The environment variable ``WINIT_INIT_THREADS`` sets the number of threads (default:
the CPUs this process may run on; 1 fills the chunks one after another, in the
calling thread). The pool is made on first use and remade after a fork.

The samplers, all in float32 and into the output array:

- uniform: 24 random bits per value, ``k * 2**-24`` in [0, 1), as NumPy's and
  torch's float32 uniforms, then scaled to [a, b).
- normal: Box-Muller on pairs of uniforms. The radius ``sqrt(-2 ln u1)`` takes u1
  in (0, 1] from 32 random bits, so the tails reach 6.7 std (the mass beyond is
  2e-11); the angle takes 32 bits too, rounded to float32. (torch's normal_ is
  Box-Muller on 24-bit uniforms, with tails to 5.8 std.)
- truncated normal: the normal, then exact rejection of the values outside [a, b],
  redrawn until inside; a window holding under 30% of the mass is sampled by the
  inverse CDF (Wichura's AS241, in float64) instead, and a window beyond 37 std by
  exact rejection from an exponential proposal (Robert 1995).
- orthogonal: Householder reflections of independent Gaussian vectors, accumulated
  in blocks with matrix products (Stewart 1980). That is the Householder QR of a
  Gaussian matrix without its factorization step, and with the signs of R's diagonal
  made positive the result is Haar-distributed, as torch's orthogonal_.
- sparse: the zero rows of every column by Floyd's sampling without replacement.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .errors import ShapeError, WinitError
from .fans import fan_in_and_fan_out
from .methods import (
    TRUNCATED_NORMAL_STD_CORRECTION,
    canonical_name,
    expected_std,
    resolve_params,
)

Shape = Sequence[int]

__all__ = [
    "CHUNK",
    "THREADS_ENV",
    "constant",
    "delta_orthogonal",
    "he_normal",
    "he_uniform",
    "identity",
    "init",
    "init_threads",
    "lecun_normal",
    "lecun_uniform",
    "lsuv",
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

# Elements per independently seeded chunk. Part of the reproducibility contract:
# another value gives other tensors for the same seed.
CHUNK = 1 << 17
THREADS_ENV = "WINIT_INIT_THREADS"

# Reflectors per block in orthogonal, and the size up to which it computes in float64.
_ORTHO_BLOCK = 128
_ORTHO_FLOAT64_UP_TO = 1 << 20

_F32 = np.float32
# The chunks' bit generator: PCG64 with the stronger DXSM output function, which NumPy
# recommends where many streams run side by side; its raw output is also ~12% faster.
_CHUNK_BIT_GENERATOR = np.random.PCG64DXSM
# Bit generators whose random_raw gives 64 random bits (MT19937's gives 32).
_RAW64 = (np.random.PCG64, np.random.PCG64DXSM, np.random.SFC64, np.random.Philox)

Filler = Callable[[np.random.Generator, np.ndarray], None]


def _shape(shape: Shape) -> tuple[int, ...]:
    return tuple(int(s) for s in shape)


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


# --------------------------------------------------------------------------- threads


def init_threads() -> int:
    """The number of threads that fill a large array: $WINIT_INIT_THREADS, else the CPUs."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw and raw.lower() != "auto":
        try:
            threads = int(raw)
        except ValueError:
            threads = 0
        if threads < 1:
            raise WinitError(f"{THREADS_ENV} must be a whole number of threads >= 1; got {raw!r}")
        return threads
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] | None = None  # (pid, threads) the pool was made for


def _executor(threads: int) -> ThreadPoolExecutor:
    global _pool, _pool_key
    key = (os.getpid(), threads)
    with _pool_lock:
        if _pool_key != key:
            old = _pool if _pool_key is not None and _pool_key[0] == key[0] else None
            _pool = ThreadPoolExecutor(threads, thread_name_prefix="winit-init")
            _pool_key = key
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def _forget_pool() -> None:
    # A forked child inherits the pool object but not its threads.
    global _pool, _pool_key, _pool_lock
    _pool, _pool_key, _pool_lock = None, None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _fill_flat(flat: np.ndarray, rng: np.random.Generator | None, fill: Filler) -> None:
    """Run `fill` over a contiguous 1-D float32 array: directly, or chunk by chunk."""
    rng = _rng(rng)
    n = flat.size
    if n <= CHUNK:
        if n:
            fill(rng, flat)
        return
    words = rng.integers(0, 1 << 64, size=4, dtype=np.uint64)
    seeds = np.random.SeedSequence([int(w) for w in words]).spawn(-(-n // CHUNK))

    def run(i: int) -> None:
        gen = np.random.Generator(_CHUNK_BIT_GENERATOR(seeds[i]))
        fill(gen, flat[i * CHUNK : (i + 1) * CHUNK])

    threads = init_threads()
    if threads == 1:
        for i in range(len(seeds)):
            run(i)
    else:
        for _ in _executor(threads).map(run, range(len(seeds))):
            pass


def _output(shape: Shape, out: np.ndarray | None) -> np.ndarray:
    """`out` checked against `shape`, or a new float32 array of that shape."""
    shape = _shape(shape)
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if not (
        isinstance(out, np.ndarray)
        and out.dtype == np.float32
        and out.shape == shape
        and out.flags.c_contiguous
        and out.flags.writeable
    ):
        got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(
            f"out must be a writable C-contiguous float32 array of shape {shape}; got {got}"
        )
    return out


def _filled(
    shape: Shape, rng: np.random.Generator | None, fill: Filler, out: np.ndarray | None = None
) -> np.ndarray:
    out = _output(shape, out)
    _fill_flat(out.reshape(-1), rng, fill)
    return out


# --------------------------------------------------------------------------- samplers


def _raw_u32(gen: np.random.Generator, n: int) -> np.ndarray:
    """n uniformly random uint32 words (a fresh, writable array)."""
    if isinstance(gen.bit_generator, _RAW64):
        return gen.bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n]
    return gen.integers(0, 1 << 32, size=n, dtype=np.uint32)


def _unit_steps(bits: np.ndarray, step: np.float32, out: np.ndarray) -> None:
    """out = (bits >> 8) * step: uniform on {0, step, ..., (2**24 - 1) * step}."""
    np.right_shift(bits, 8, out=bits)
    np.multiply(bits.view(np.int32), step, out=out, dtype=np.float32)


def _uniform_filler(low: float, high: float) -> Filler:
    # k * (w * 2**-24) is exactly the float32 product u * w for u = k * 2**-24.
    step = _F32((high - low) * 2.0**-24)
    low32 = _F32(low)

    def fill(gen: np.random.Generator, seg: np.ndarray) -> None:
        _unit_steps(_raw_u32(gen, seg.size), step, seg)
        if low32:
            np.add(seg, low32, out=seg)

    def fill_symmetric(gen: np.random.Generator, seg: np.ndarray) -> None:
        # An arithmetic shift gives k - 2**23 directly: the same values as u * w + low
        # (rounded once instead of twice), one pass fewer.
        bits = _raw_u32(gen, seg.size).view(np.int32)
        np.right_shift(bits, 8, out=bits)
        np.multiply(bits, step, out=seg, dtype=np.float32)

    return fill_symmetric if low == -high and low else fill


_ANGLE_STEP = _F32(2 * math.pi * 2.0**-32)


def _normal_fill(gen: np.random.Generator, seg: np.ndarray, std: float, mean: float) -> None:
    """N(mean, std²) into a contiguous float32 array, by Box-Muller."""
    n = seg.size
    pairs = (n + 1) // 2
    bits = _raw_u32(gen, 2 * pairs)
    radius = seg[:pairs]
    # u1 = k * 2**-32 + 2**-33 lies in (0, 1]; ln u1 >= -22.9, so the radius <= 6.77.
    np.multiply(bits[:pairs], _F32(2.0**-32), out=radius, dtype=np.float32)
    np.add(radius, _F32(2.0**-33), out=radius)
    np.log(radius, out=radius)
    scale = -2.0 * std * std
    if 1e-30 < -scale < 1e30:  # std² folds into the factor -2 before the square root
        np.multiply(radius, _F32(scale), out=radius)
        np.sqrt(radius, out=radius)
    else:
        np.multiply(radius, _F32(-2.0), out=radius)
        np.sqrt(radius, out=radius)
        np.multiply(radius, _F32(std), out=radius)
    angle = np.empty(pairs, dtype=np.float32)  # 32 signed bits -> [-pi, pi]
    np.multiply(bits[pairs:].view(np.int32), _ANGLE_STEP, out=angle, dtype=np.float32)
    rest = seg[pairs:]
    np.sin(angle[: rest.size], out=rest)
    np.multiply(rest, radius[: rest.size], out=rest)
    np.cos(angle, out=angle)
    np.multiply(radius, angle, out=radius)
    if mean:
        np.add(seg, _F32(mean), out=seg)


def _normal_filler(std: float, mean: float = 0.0) -> Filler:
    def fill(gen: np.random.Generator, seg: np.ndarray) -> None:
        _normal_fill(gen, seg, std, mean)

    return fill


def _uniform(shape: Shape, low: float, high: float, rng, out=None) -> np.ndarray:
    return _filled(shape, rng, _uniform_filler(low, high), out)


def _normal(shape: Shape, std: float, rng, mean: float = 0.0, out=None) -> np.ndarray:
    return _filled(shape, rng, _normal_filler(std, mean), out)


# --------------------------------------------------------------------------- truncated normal

_SQRT_HALF = math.sqrt(0.5)


def _phi(x: float) -> float:
    """The standard normal CDF, accurate in the lower tail."""
    return 0.5 * math.erfc(-x * _SQRT_HALF)


def _window_mass(alpha: float, beta: float) -> float:
    """P(alpha <= Z <= beta) for Z ~ N(0, 1), without cancellation in either tail."""
    if alpha >= 0:
        return _phi(-alpha) - _phi(-beta)
    if beta <= 0:
        return _phi(beta) - _phi(alpha)
    return 1.0 - _phi(-beta) - _phi(alpha)


def _truncated_normal_filler(mean: float, std: float, a: float, b: float) -> Filler:
    """N(mean, std²) restricted to [a, b], by whichever exact method is cheap for the window."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    if not (math.isfinite(alpha) and math.isfinite(beta)):
        # std is so small against the window that all the mass sits at one end of it.
        nearest = _F32(min(max(mean, a), b))
        return lambda gen, seg: seg.fill(nearest)
    if _window_mass(alpha, beta) >= 0.3:
        return _rejection_filler(mean, std, a, b)
    # Sample the mirror image when the window lies mostly above the mean, so that the
    # CDF values below are lower-tail probabilities, which keep their precision.
    sign = -1.0 if alpha + beta > 0 else 1.0
    lo, hi = (-beta, -alpha) if sign < 0 else (alpha, beta)
    if hi < -37.0:  # the CDF underflows
        return _far_tail_filler(mean, std, a, b, sign, -hi, -lo)
    return _inverse_cdf_filler(mean, std, a, b, sign, _phi(lo), _phi(hi), lo, hi)


def _rejection_filler(mean: float, std: float, a: float, b: float) -> Filler:
    a32, b32 = _F32(a), _F32(b)

    def fill(gen: np.random.Generator, seg: np.ndarray) -> None:
        _normal_fill(gen, seg, std, mean)
        redo = np.flatnonzero((seg < a32) | (seg > b32))
        while redo.size:
            fresh = np.empty(redo.size, dtype=np.float32)
            _normal_fill(gen, fresh, std, mean)
            seg[redo] = fresh
            redo = redo[(fresh < a32) | (fresh > b32)]

    return fill


def _inverse_cdf_filler(mean, std, a, b, sign, p_lo, p_hi, lo, hi) -> Filler:
    def fill(gen: np.random.Generator, seg: np.ndarray) -> None:
        u = gen.random(seg.size)
        u *= p_hi - p_lo
        u += p_lo
        x = _ndtri(u)
        np.clip(x, lo, hi, out=x)
        _store(seg, mean + (sign * std) * x, a, b)

    return fill


def _far_tail_filler(mean, std, a, b, sign, c, d) -> Filler:
    """Z ~ N(0, 1) on [c, d], c >= 37, by rejection from c + Exp(c) truncated to d."""
    span = -math.expm1(-c * (d - c))  # P(Exp(c) <= d - c)

    def fill(gen: np.random.Generator, seg: np.ndarray) -> None:
        z = np.empty(seg.size)
        todo = np.arange(seg.size)
        while todo.size:
            u = gen.random(todo.size)
            t = -np.log1p(-u * span) / c
            keep = gen.random(todo.size) <= np.exp(-0.5 * t * t)
            z[todo[keep]] = c + t[keep]
            todo = todo[~keep]
        np.clip(z, c, d, out=z)
        _store(seg, mean - (sign * std) * z, a, b)

    return fill


def _store(seg: np.ndarray, values: np.ndarray, a: float, b: float) -> None:
    np.clip(values, a, b, out=values)
    seg[...] = values  # rounding is monotonic: within [float32(a), float32(b)], as torch


# Wichura's AS241 (PPND16), as in CPython's statistics.NormalDist.inv_cdf.
_AS241_CENTRAL = (
    (
        3.387132872796366608,
        133.14166789178437745,
        1971.5909503065514427,
        13731.693765509461125,
        45921.953931549871457,
        67265.770927008700853,
        33430.575583588128105,
        2509.0809287301226727,
    ),
    (
        1.0,
        42.313330701600911252,
        687.1870074920579083,
        5394.1960214247511077,
        21213.794301586595867,
        39307.89580009271061,
        28729.085735721942674,
        5226.495278852545925,
    ),
)
_AS241_NEAR = (
    (
        1.42343711074968357734,
        4.6303378461565452959,
        5.7694972214606914055,
        3.64784832476320460504,
        1.27045825245236838258,
        0.24178072517745061177,
        0.0227238449892691845833,
        7.7454501427834140764e-4,
    ),
    (
        1.0,
        2.05319162663775882187,
        1.6763848301838038494,
        0.68976733498510000455,
        0.14810397642748007459,
        0.0151986665636164571966,
        5.475938084995344946e-4,
        1.05075007164441684324e-9,
    ),
)
_AS241_FAR = (
    (
        6.6579046435011037772,
        5.4637849111641143699,
        1.7848265399172913358,
        0.29656057182850489123,
        0.026532189526576123093,
        0.0012426609473880784386,
        2.71155556874348757815e-5,
        2.01033439929228813265e-7,
    ),
    (
        1.0,
        0.59983220655588793769,
        0.13692988092273580531,
        0.0148753612908506148525,
        7.868691311456132591e-4,
        1.8463183175100546818e-5,
        1.4215117583164458887e-7,
        2.04426310338993978564e-15,
    ),
)


def _rational(coefficients: tuple[tuple[float, ...], tuple[float, ...]], r: np.ndarray):
    num, den = (np.full_like(r, c[-1]) for c in coefficients)
    for cn, cd in zip(coefficients[0][-2::-1], coefficients[1][-2::-1], strict=True):
        num *= r
        num += cn
        den *= r
        den += cd
    return num / den


def _ndtri(p: np.ndarray) -> np.ndarray:
    """The standard normal quantile of each p in (0, 1), to about 1e-16 relative (AS241)."""
    q = p - 0.5
    x = np.empty_like(p)
    central = np.abs(q) <= 0.425
    qc = q[central]
    x[central] = qc * _rational(_AS241_CENTRAL, 0.180625 - qc * qc)
    tail = ~central
    qt = q[tail]
    r = np.sqrt(-np.log(np.where(qt < 0, p[tail], 0.5 - qt)))
    near = r <= 5.0
    value = np.empty_like(r)
    value[near] = _rational(_AS241_NEAR, r[near] - 1.6)
    value[~near] = _rational(_AS241_FAR, r[~near] - 5.0)
    x[tail] = np.copysign(value, qt)
    return x


# --------------------------------------------------------------------------- methods


def _constant(shape: Shape, value: float, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return np.full(_shape(shape), value, dtype=np.float32)
    out = _output(shape, out)
    out.fill(value)
    return out


def zeros(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
) -> np.ndarray:
    """W = 0."""
    resolve_params("zeros", params)
    return _constant(shape, 0.0, out)


def ones(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
) -> np.ndarray:
    """W = 1."""
    resolve_params("ones", params)
    return _constant(shape, 1.0, out)


def constant(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
) -> np.ndarray:
    """W = value."""
    p = resolve_params("constant", params)
    return _constant(shape, p["value"], out)


def normal(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
) -> np.ndarray:
    """N(mean, std²)."""
    p = resolve_params("normal", params)
    return _normal(shape, p["std"], rng, p["mean"], out)


def uniform(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
) -> np.ndarray:
    """U(a, b)."""
    p = resolve_params("uniform", params)
    return _uniform(shape, p["a"], p["b"], rng, out=out)


def _truncated_normal(shape: Shape, mean: float, std: float, a: float, b: float, rng, out=None):
    return _filled(shape, rng, _truncated_normal_filler(mean, std, a, b), out)


def trunc_normal(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
):
    """N(mean, std²) cut to the absolute interval [a, b] (torch semantics)."""
    p = resolve_params("trunc_normal", params)
    return _truncated_normal(shape, p["mean"], p["std"], p["a"], p["b"], rng, out)


def xavier_uniform(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
):
    """U(±gain·√(6/(fan_in+fan_out)))."""
    bound = math.sqrt(3.0) * expected_std("xavier_uniform", shape, params)
    return _uniform(shape, -bound, bound, rng, out=out)


def xavier_normal(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
):
    """N(0, gain²·2/(fan_in+fan_out))."""
    return _normal(shape, expected_std("xavier_normal", shape, params), rng, out=out)


def he_uniform(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
):
    """U(±gain·√(3/fan)), gain from the nonlinearity as torch's kaiming_uniform_."""
    bound = math.sqrt(3.0) * expected_std("he_uniform", shape, params)
    return _uniform(shape, -bound, bound, rng, out=out)


def he_normal(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
):
    """N(0, gain²/fan), gain from the nonlinearity as torch's kaiming_normal_."""
    return _normal(shape, expected_std("he_normal", shape, params), rng, out=out)


def lecun_uniform(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
):
    """U(±gain·√(3/fan_in))."""
    bound = math.sqrt(3.0) * expected_std("lecun_uniform", shape, params)
    return _uniform(shape, -bound, bound, rng, out=out)


def lecun_normal(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
):
    """N(0, gain²/fan_in)."""
    return _normal(shape, expected_std("lecun_normal", shape, params), rng, out=out)


def variance_scaling(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
):
    """std = gain·√(scale/fan), sampled normal, truncated normal (Keras-corrected) or uniform."""
    p = resolve_params("variance_scaling", params)
    std = expected_std("variance_scaling", shape, p)
    if p["distribution"] == "uniform":
        bound = math.sqrt(3.0) * std
        return _uniform(shape, -bound, bound, rng, out=out)
    if p["distribution"] == "normal":
        return _normal(shape, std, rng, out=out)
    wide = std / TRUNCATED_NORMAL_STD_CORRECTION
    return _truncated_normal(shape, 0.0, wide, -2 * wide, 2 * wide, rng, out)


def orthogonal(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
):
    """gain·Q, Q from the QR of a N(0, 1) matrix with R's diagonal made positive.

    Flattened to (out, rest) as torch does; rows are orthonormal when out <= rest,
    columns otherwise. The sign fix makes Q Haar-distributed (Mezzadri 2007).
    """
    p = resolve_params("orthogonal", params)
    shape = _shape(shape)
    if len(shape) < 2:
        raise ShapeError(f"orthogonal needs a weight of at least 2 dimensions; got shape {shape}")
    out = _output(shape, out)
    rows = shape[0]
    cols = math.prod(shape[1:])
    flat = out.reshape(rows, cols)
    # Q is (m, n) with m >= n; for a wide weight it is the transpose, written in place.
    q = flat if rows >= cols else flat.T
    if q.size <= _ORTHO_FLOAT64_UP_TO:
        work = np.empty(q.shape)
        _haar_columns(work, _rng(rng), p["gain"])
        q[...] = work
    else:
        _haar_columns(q, _rng(rng), p["gain"])
    return out


def delta_orthogonal(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
):
    """gain·Q at the kernel centre and 0 elsewhere, Q an orthogonal (out, in) matrix
    (Xiao et al. 2018); a 2-D weight is plain orthogonal."""
    p = resolve_params("delta_orthogonal", params)
    shape = _shape(shape)
    if len(shape) < 2:
        raise ShapeError(
            f"delta_orthogonal needs a weight of at least 2 dimensions; got shape {shape}"
        )
    if len(shape) == 2:
        return orthogonal(shape, rng=rng, out=out, gain=p["gain"])
    centre = orthogonal(shape[:2], rng=rng, gain=p["gain"])
    out = _constant(shape, 0.0, out)
    out[(slice(None), slice(None), *(k // 2 for k in shape[2:]))] = centre
    return out


def lsuv(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
):
    """LSUV's starting point, orthogonal with `gain`; apply_weight_init rescales it with data."""
    p = resolve_params("lsuv", params)
    return orthogonal(shape, rng=rng, out=out, gain=p["gain"])


def _haar_columns(q: np.ndarray, rng: np.random.Generator, gain: float) -> None:
    """Fill q (m, n), m >= n, with gain times n orthonormal columns, Haar-distributed.

    Q = H_0 ... H_{n-1} [I; 0] D, where H_k reflects a N(0, I_{m-k}) vector x_k onto
    beta_k e_1 (beta_k = -sign(x_k[0]) |x_k|) in rows k.. and D = diag(sign(beta_k)).
    That is what the Householder QR of an (m, n) Gaussian matrix computes, beta_k
    being R's diagonal (by rotation invariance the vector each step reflects is a
    fresh Gaussian), with the sign fix that makes Q Haar. The reflectors are applied
    from the last block to the first, as LAPACK's orgqr, each block of b reflectors
    as I - V T V^T with T^-1 = triu(V^T V) with its diagonal halved (the UT transform
    of Joffrain et al. 2006), so the work is matrix products.
    """
    m, n = q.shape
    dtype = q.dtype
    q[...] = 0
    q[np.arange(n), np.arange(n)] = 1
    signs = np.ones(n)
    scratch_buf = np.empty(m * n, dtype=dtype) if n > _ORTHO_BLOCK else None
    for j0 in reversed(range(0, n, _ORTHO_BLOCK)):
        j1 = min(j0 + _ORTHO_BLOCK, n)
        b = j1 - j0
        draws = np.empty((m - j0) * b, dtype=np.float32)
        _fill_flat(draws, rng, _normal_filler(1.0))
        v = draws.reshape(m - j0, b).astype(np.float64)
        top = v[:b]
        top[np.triu_indices(b, 1)] = 0.0  # column c holds x_{j0+c} in rows c..
        norm = np.sqrt(np.einsum("ij,ij->j", v, v))
        alpha = top.diagonal().copy()
        signs[j0:j1] = np.where(norm > 0, -np.copysign(1.0, alpha), 1.0)
        top[np.arange(b), np.arange(b)] = alpha + np.copysign(norm, alpha)  # x - beta e_1
        v = v.astype(dtype, copy=False)
        v64 = v.astype(np.float64, copy=False)
        gram = v64.T @ v64  # one operand twice: NumPy uses syrk
        t_inv = np.triu(gram)
        diag = np.diagonal(gram) / 2
        t_inv[np.arange(b), np.arange(b)] = np.where(diag > 0, diag, 1.0)
        t = np.linalg.inv(t_inv).astype(dtype)
        if j1 < n:
            # Rows j0..j1 of the trailing columns are still zero.
            w = t @ (v[b:].T @ q[j1:, j1:])
            prod = np.matmul(v, w, out=scratch_buf[: (m - j0) * (n - j1)].reshape(m - j0, n - j1))
            np.subtract(q[j0:, j1:], prod, out=q[j0:, j1:])
        # The block's own columns were [I; 0].
        np.matmul(v, -(t @ v[:b].T), out=q[j0:, j0:j1])
        q[np.arange(j0, j1), np.arange(j0, j1)] += 1
    np.multiply(q, (signs * gain).astype(dtype), out=q)


def identity(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    groups: int = 1,
    out: np.ndarray | None = None,
    **params: Any,
) -> np.ndarray:
    """eye for a 2-D weight; dirac (1 at the kernel centre) for a conv weight."""
    resolve_params("identity", params)
    shape = _shape(shape)
    if len(shape) not in (2, 3, 4, 5):
        raise ShapeError(f"identity needs a 2-D to 5-D weight; got shape {shape}")
    if len(shape) > 2 and shape[0] % groups:
        raise ShapeError(f"identity: {shape[0]} output channels do not split into {groups} groups")
    out = _constant(shape, 0.0, out)
    if len(shape) == 2:
        np.fill_diagonal(out, 1.0)
        return out
    per_group = shape[0] // groups
    centre = tuple(k // 2 for k in shape[2:])
    diag = np.arange(min(per_group, shape[1]))
    for g in range(groups):
        out[(g * per_group + diag, diag, *centre)] = 1.0
    return out


def sparse(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
):
    """Each column: ceil(sparsity·rows) zeros at random rows, N(0, std²) elsewhere."""
    p = resolve_params("sparse", params)
    shape = _shape(shape)
    if len(shape) != 2:
        raise ShapeError(f"sparse applies to Dense (2-D) weights only; got shape {shape}")
    rows, cols = shape
    rng = _rng(rng)
    out = _normal(shape, p["std"], rng, out=out)
    num_zeros = math.ceil(p["sparsity"] * rows)
    if num_zeros:
        np.putmask(out, _column_subsets(rows, cols, num_zeros, rng), _F32(0))
    return out


def _column_subsets(rows: int, cols: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """A (rows, cols) mask with k True at uniformly random rows of every column.

    Floyd's algorithm, one step for all columns at once: for j = rows-k .. rows-1 draw
    t uniform in 0..j and take t, or j when t is taken already. For k > rows/2 it picks
    the rows - k rows to leave out.
    """
    pick = min(k, rows - k)
    mask = np.zeros((rows, cols), dtype=bool)
    col = np.arange(cols)
    for j in range(rows - pick, rows):
        t = rng.integers(0, j + 1, size=cols)
        t[mask[t, col]] = j
        mask[t, col] = True
    if pick < k:
        np.logical_not(mask, out=mask)
    return mask


def torch_default(
    shape: Shape,
    *,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
    **params: Any,
):
    """nn.Linear / nn.ConvNd's own weight init: kaiming_uniform with a=√5, i.e. U(±1/√fan_in)."""
    resolve_params("torch_default", params)
    fan_in, _ = fan_in_and_fan_out(shape)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return _uniform(shape, -bound, bound, rng, out=out)


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
    out: np.ndarray | None = None,
    **params: Any,
) -> np.ndarray:
    """Any method by name or alias.

    ``out``: a writable C-contiguous float32 array of ``shape`` to write the weights
    into (a parameter's memory, say) instead of a new array; it is returned.
    """
    name = canonical_name(method)
    if name == "identity":
        return identity(shape, rng=rng, groups=groups, out=out, **params)
    return globals()[name](shape, rng=rng, out=out, **params)
