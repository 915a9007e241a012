"""The order-to-chaos transition of a deep random network, in the mean-field limit.

NumPy only; no printing. With sigma_w^2 = fan_in * Var(W) and sigma_b^2 = Var(b) the same
in every layer, the pre-activation variance follows the length map

    q_{l+1} = sigma_w^2 E_z[phi(sqrt(q_l) z)^2] + sigma_b^2,          z ~ N(0, 1),

to a fixed point q*, and the correlation c of two inputs' pre-activations the
correlation map

    c_{l+1} = (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / q*,
    u1 = sqrt(q*) z1,  u2 = sqrt(q*) (c z1 + sqrt(1 - c^2) z2),

which always has c = 1 as a fixed point, with slope chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2].
chi_1 < 1: nearby inputs converge (ordered phase; gradients vanish); chi_1 > 1: they
decorrelate to a fixed point c* < 1 (chaotic phase; gradients explode). The critical line
chi_1 = 1 is where signals and gradients travel deepest. Depth scales (Schoenholz et al.):

    xi_q = -1 / ln chi_q,   chi_q = sigma_w^2 E[phi''(sqrt(q*) z) phi(sqrt(q*) z) + phi'(...)^2]
    xi_c = -1 / ln chi_c,   chi_c = sigma_w^2 E[phi'(u1) phi'(u2)] at c = c*

chi_q is the slope of the length map at q*, so |q_l - q*| ~ exp(-l / xi_q); chi_c is the
slope of the correlation map at its stable fixed point c* (c* = 1 and chi_c = chi_1 in the
ordered phase), so |c_l - c*| ~ exp(-l / xi_c). xi_c diverges on the critical line.

Where q* = 0 (an odd activation without bias, below the line) or q* = inf (a rectifier
whose signal explodes), chi_1 and chi_q are the q -> 0+ or q -> inf limits; the correlation
map needs a finite q* > 0.

References
- Poole, Lahiri, Raghu, Sohl-Dickstein & Ganguli 2016, Exponential expressivity in deep
  neural networks through transient chaos (NeurIPS): the length and correlation maps.
- Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, Deep information propagation
  (ICLR): chi_q, chi_c, the depth scales xi_q and xi_c, and trainability near the line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from .errors import WinitError
from .theory import (
    ELU_ALPHA,
    SELU_ALPHA,
    SELU_SCALE,
    Array,
    Fn,
    _canonical,
    _derivative,
    _expect,
    _forward,
    _normal_pdf,
    _sigmoid,
)

Phase = Literal["ordered", "critical", "chaotic"]

PHASE_TOLERANCE = 0.02  # |chi_1 - 1| within which a point counts as critical
Q_MAX = 1e12  # a length map still growing here diverges (relu at 2 rounds to ~1e15)
Q_MIN = 1e-200  # a length map still shrinking here collapses to 0
Q_ZERO = 1e-14  # fixed points of phi(0) = 0, bias-free maps below this count as 0
_Q_LIMIT_LOW = 1e-300  # where chi_1 and chi_q take their q -> 0+ limits
_Q_LIMIT_HIGH = 1e200  # ... and their q -> inf limits
_JUMP_TOL = 1e-4  # |chi_1 - 1| beyond which a sign change of chi_1 - 1 is a jump, not a root
_NEUTRAL_RTOL = 1e-14  # |map(q) - q| <= this * q: q is itself a fixed point (relu at 2)


def _second_derivative(key: str, slope: float) -> Fn:
    del slope  # leaky_relu'' is 0 for any slope

    def tanh2(x: Array) -> Array:
        t = np.tanh(x)
        return -2.0 * t * (1.0 - t * t)

    def sigmoid2(x: Array) -> Array:
        s = _sigmoid(x)
        return s * (1.0 - s) * (1.0 - 2.0 * s)

    def silu2(x: Array) -> Array:
        s = _sigmoid(x)
        return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))

    # Almost everywhere; the rectifiers' jumps in phi' sit at 0, where phi = 0, so they add
    # nothing to E[phi'' phi]. At 0 the left branch, as _derivative's conventions.
    table: dict[str, Fn] = {
        "linear": np.zeros_like,
        "relu": np.zeros_like,
        "leaky_relu": np.zeros_like,
        "tanh": tanh2,
        "sigmoid": sigmoid2,
        "selu": lambda x: np.where(x > 0, 0.0, SELU_SCALE * SELU_ALPHA * np.exp(np.minimum(x, 0))),
        "gelu": lambda x: _normal_pdf(x) * (2.0 - x * x),
        "elu": lambda x: np.where(x > 0, 0.0, ELU_ALPHA * np.exp(np.minimum(x, 0.0))),
        "silu": silu2,
    }
    return table[key]


def activation_second_derivative(name: str | None, negative_slope: float = 0.01) -> Fn:
    """The activation's second derivative (almost everywhere) as a NumPy function."""
    f = _second_derivative(_canonical(name), float(negative_slope))
    return lambda x: f(np.asarray(x, dtype=float))


def _length_map(
    key: str, weight_var: float, bias_var: float, slope: float
) -> Callable[[float], float]:
    phi = _forward(key, slope)
    return lambda q: weight_var * _expect(phi, q)[1] + bias_var


def _check_var(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and >= 0; got {value}")
    return v


def _bisect(g: Callable[[float], float], a: float, b: float) -> float:
    """A root of g in [a, b], given g(a) > 0 > g(b) (a < b), to rounding."""
    for _ in range(2000):
        mid = 0.5 * (a + b)
        if not a < mid < b or b - a <= 1e-15 * b:
            break
        gm = g(mid)
        if gm == 0:
            return mid
        if gm > 0:
            a = mid
        else:
            b = mid
    return 0.5 * (a + b)


def fixed_point(
    activation: str | None,
    weight_var: float,
    bias_var: float,
    negative_slope: float = 0.01,
    q0: float = 1.0,
    max_iter: int = 200,
) -> float:
    """q* reached from q0 by q <- sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2; inf or 0 if none."""
    q = _fixed_point(activation, weight_var, bias_var, negative_slope, q0, max_iter)
    return math.inf if q > Q_MAX else q


def _fixed_point(
    activation: str | None,
    weight_var: float,
    bias_var: float,
    negative_slope: float,
    q0: float,
    max_iter: int,
) -> float:
    key = _canonical(activation)
    w2, b2 = _check_var("weight_var", weight_var), _check_var("bias_var", bias_var)
    q = _check_var("q0", q0)
    f = _length_map(key, w2, b2, float(negative_slope))

    def g(x: float) -> float:
        return f(x) - x

    # Iterate: the length map is increasing, so q_l moves monotonically to the nearest
    # fixed point in its direction. Near marginal stability that is slow (tanh at
    # sigma_w^2 = 1 creeps to 0 as 1/(2l)), so finish by bracketing and bisection.
    step = 0.0
    for _ in range(max_iter):
        nxt = f(q)
        if not math.isfinite(nxt) or nxt > Q_MAX:
            return math.inf
        if nxt < Q_MIN:
            return 0.0
        step, q = nxt - q, nxt
        if step == 0 or abs(step) <= 1e-15 * q:
            break
    gq = g(q)
    if gq == 0:
        return q
    neutral = abs(gq) <= _NEUTRAL_RTOL * q
    d = max(abs(step), 1e-15 * q, 1e-300)
    if gq > 0:  # climbing: find b above q with g(b) < 0
        a = q
        while True:
            b = q + d
            if b > Q_MAX:
                return q if neutral else math.inf
            gb = g(b)
            if gb == 0:
                return b
            if gb < 0:
                return _bisect(g, a, b)
            a, d = b, 2 * d
    b = q  # falling: find a below q with g(a) > 0
    while q - d > 0:
        a = q - d
        ga = g(a)
        if ga == 0:
            return a
        if ga > 0:
            return _bisect(g, a, b)
        b, d = a, 2 * d
    if g(0.0) > 0:
        return _bisect(g, 0.0, b)
    # g(0) = 0: phi(0) = 0 and no bias. Either a positive fixed point lies below b or the
    # signal collapses to 0.
    # Below Q_ZERO a root is rounding: E[tanh^2] at sigma_w^2 = 1 comes out a hair above q.
    a = b
    while a > Q_ZERO:
        a, b = a * 1e-3, a
        if g(a) > 0:
            return _bisect(g, a, b)
    return q if neutral else 0.0


def _limit_q(q: float) -> float:
    q = float(q)
    if math.isnan(q) or q < 0:
        raise ValueError(f"the variance q must be >= 0; got {q}")
    return min(max(q, _Q_LIMIT_LOW), _Q_LIMIT_HIGH)


def chi1(
    activation: str | None, weight_var: float, q: float, negative_slope: float = 0.01
) -> float:
    """chi_1 = sigma_w^2 E[phi'(sqrt(q) z)^2]: the correlation map's slope at c = 1."""
    dphi = _derivative(_canonical(activation), float(negative_slope))
    w2 = _check_var("weight_var", weight_var)
    return w2 * _expect(dphi, _limit_q(q))[1]


def chi_q(
    activation: str | None, weight_var: float, q: float, negative_slope: float = 0.01
) -> float:
    """chi_q = sigma_w^2 E[phi'' phi + phi'^2] at variance q: the length map's slope there."""
    key, slope = _canonical(activation), float(negative_slope)
    phi, dphi, ddphi = _forward(key, slope), _derivative(key, slope), _second_derivative(key, slope)
    w2 = _check_var("weight_var", weight_var)
    return w2 * _expect(lambda x: ddphi(x) * phi(x) + dphi(x) ** 2, _limit_q(q))[0]


def depth_scale(chi: float, tol: float = 1e-6) -> float:
    """-1/ln(chi) for a contraction rate chi in [0, 1); inf within tol of 1, nan above."""
    if math.isnan(chi) or chi > 1 + tol:
        return math.nan
    if chi >= 1 - tol:
        return math.inf
    if chi <= 0:
        return 0.0
    return -1.0 / math.log(chi)


@lru_cache(maxsize=1)
def _radial() -> tuple[Array, Array]:
    """Nodes r and weights with sum(w * f(r)) = integral_0^inf f(r) r exp(-r^2/2) dr."""
    # Panels graded towards 0 as in theory._quadrature: at large q, tanh(sqrt(q) r) turns
    # within r ~ 1/sqrt(q).
    edges = np.concatenate([[0.0], 2.0 ** np.arange(-12, 0), np.arange(1.0, 13.0)])
    x, w = np.polynomial.legendre.leggauss(10)
    lo, hi = edges[:-1, None], edges[1:, None]
    r = (lo + (hi - lo) * (x + 1) / 2).ravel()
    weights = ((hi - lo) / 2 * w).ravel() * r * np.exp(-0.5 * r * r)
    r.flags.writeable = False
    weights.flags.writeable = False
    return r, weights


# Sub-panels of each arc between kink rays, graded towards the rays, where tanh-like
# activations of a large-variance signal turn sharply.
_ARC_FRACTIONS = np.array([0.0, 0.01, 0.04, 0.15, 0.4, 0.6, 0.85, 0.96, 0.99])


def _expect2(f: Fn, g: Fn, q: float, c: float) -> float:
    """E[f(u1) g(u2)], u1, u2 ~ N(0, q) with correlation c, by polar quadrature."""
    if not math.isfinite(q) or q < 0:
        raise ValueError(f"the variance q must be finite and >= 0; got {q}")
    if not -1.0 <= c <= 1.0:
        raise ValueError(f"the correlation c must lie in [-1, 1]; got {c}")
    s = math.sqrt(max(1.0 - c * c, 0.0))
    # The kinks u1 = 0 and u2 = 0 are rays from the origin; split the angle there so every
    # panel integrates a smooth function.
    alpha = math.atan2(s, c)
    cuts = np.mod(
        [math.pi / 2, 3 * math.pi / 2, alpha + math.pi / 2, alpha - math.pi / 2], 2 * math.pi
    )
    edges = np.unique(cuts)
    edges = np.append(edges, edges[0] + 2 * math.pi)  # cyclic: arcs between adjacent rays
    edges = np.concatenate(
        [a + (b - a) * _ARC_FRACTIONS for a, b in zip(edges[:-1], edges[1:], strict=True)]
        + [edges[-1:]]
    )
    x, w = np.polynomial.legendre.leggauss(12)
    lo, hi = edges[:-1, None], edges[1:, None]
    theta = (lo + (hi - lo) * (x + 1) / 2).ravel()
    tw = ((hi - lo) / 2 * w).ravel() / (2 * math.pi)
    r, rw = _radial()
    z1 = np.outer(r, np.cos(theta))
    z2 = np.outer(r, np.sin(theta))
    sq = math.sqrt(q)
    with np.errstate(over="ignore", invalid="ignore"):
        vals = f(sq * z1) * g(sq * (c * z1 + s * z2))
        return float(rw @ vals @ tw)


def correlation_map(
    activation: str | None,
    weight_var: float,
    bias_var: float,
    q_star: float,
    c: float,
    negative_slope: float = 0.01,
) -> float:
    """c -> (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / q*, with u1, u2 ~ N(0, q*), corr c."""
    q = float(q_star)
    if not math.isfinite(q) or q <= 0:
        raise ValueError(f"the correlation map needs a finite fixed point q* > 0; got {q_star}")
    phi = _forward(_canonical(activation), float(negative_slope))
    w2, b2 = _check_var("weight_var", weight_var), _check_var("bias_var", bias_var)
    return (w2 * _expect2(phi, phi, q, float(c)) + b2) / q


def correlation_fixed_point(
    activation: str | None,
    weight_var: float,
    bias_var: float,
    q_star: float,
    negative_slope: float = 0.01,
) -> float:
    """c*: the stable fixed point of the correlation map (1 unless chaotic)."""

    def h(c: float) -> float:
        return correlation_map(activation, weight_var, bias_var, q_star, c, negative_slope) - c

    # Below 1, h < 0 in the chaotic phase; h(-1) >= 0 always (Cauchy-Schwarz). Walk down
    # from 1 to a sign change, then bisect.
    t = 1e-8
    if h(1.0 - t) >= 0:
        return 1.0
    while True:
        t = min(2 * t, 2.0)
        ht = h(1.0 - t)
        if ht >= 0 or t >= 2.0:
            break
    if ht < 0:
        return -1.0
    return _bisect(h, 1.0 - t, 1.0 - t / 2)


def chi_c(
    activation: str | None,
    weight_var: float,
    q_star: float,
    c: float,
    negative_slope: float = 0.01,
) -> float:
    """chi_c = sigma_w^2 E[phi'(u1) phi'(u2)]: the correlation map's slope at c."""
    q = float(q_star)
    if not math.isfinite(q) or q <= 0:
        raise ValueError(f"chi_c needs a finite q* > 0; got {q_star}")
    dphi = _derivative(_canonical(activation), float(negative_slope))
    return _check_var("weight_var", weight_var) * _expect2(dphi, dphi, q, float(c))


def phase_of(chi: float, tol: float = PHASE_TOLERANCE) -> Phase:
    """'ordered' for chi_1 < 1 - tol, 'chaotic' for chi_1 > 1 + tol, else 'critical'."""
    if chi < 1 - tol:
        return "ordered"
    if chi > 1 + tol:
        return "chaotic"
    return "critical"


def critical_weight_variance(
    activation: str | None,
    bias_var: float,
    negative_slope: float = 0.01,
    lo: float = 0.1,
    hi: float = 20.0,
) -> float:
    """The sigma_w^2 in [lo, hi] with chi_1(q*(sigma_w^2)) = 1, by bisection on log sigma_w^2."""
    name = _canonical(activation)
    b2 = _check_var("bias_var", bias_var)

    def h(w2: float) -> float:
        return chi1(name, w2, fixed_point(name, w2, b2, negative_slope), negative_slope) - 1.0

    h_lo, h_hi = h(lo), h(hi)
    if h_lo == 0:
        return lo
    if h_hi == 0:
        return hi
    if not (h_lo < 0 < h_hi):
        side = "below" if h_hi < 0 else "above"
        raise WinitError(
            f"{name} with bias variance {b2:g} has no order-to-chaos transition for weight "
            f"variance in [{lo:g}, {hi:g}]: chi_1 stays {side} 1"
        )
    # h jumps where q* does (relu at 2: q* goes from 0 to inf), so bisect to adjacent floats.
    a, b = lo, hi
    for _ in range(200):
        mid = math.sqrt(a * b)
        if not a < mid < b:
            break
        hm = h(mid)
        if hm == 0:
            return mid
        if hm < 0:
            a, h_lo = mid, hm
        else:
            b, h_hi = mid, hm
    if min(-h_lo, h_hi) > _JUMP_TOL:
        qa, qb = (fixed_point(name, w, b2, negative_slope) for w in (a * 0.999, b * 1.001))
        raise WinitError(
            f"{name} with bias variance {b2:g} has no critical point: at weight variance "
            f"{a:.6g} the fixed point q* (from q0 = 1) jumps from {qa:.3g} below to {qb:.3g} "
            f"above it and "
            f"chi_1 from {1 + h_lo:.3g} to {1 + h_hi:.3g}, skipping 1"
        )
    return a if -h_lo <= h_hi else b


@dataclass(frozen=True)
class Criticality:
    """Where an activation's order-to-chaos line lies, and the state at one sigma_w^2."""

    activation: str
    bias_var: float
    critical_weight_var: float  # sigma_w^2 on the line chi_1 = 1 (nan if none in range)
    weight_var: float  # the sigma_w^2 the fields below describe
    q_star: float  # fixed point of the length map (0: collapses, inf: explodes)
    chi1: float  # sigma_w^2 E[phi'(sqrt(q*) z)^2]
    chi_q: float  # slope of the length map at q*
    c_star: float  # stable fixed point of the correlation map (1 unless chaotic)
    depth_scale_q: float  # xi_q: layers for q_l to reach q*
    depth_scale_c: float  # xi_c: layers over which two inputs stay distinguishable
    negative_slope: float = 0.01

    def phase(self, weight_var: float | None = None) -> Phase:
        """The phase at weight_var (default: this record's) from chi_1, with 2 % tolerance."""
        if weight_var is None:
            return phase_of(self.chi1)
        w2 = _check_var("weight_var", weight_var)
        q = fixed_point(self.activation, w2, self.bias_var, self.negative_slope)
        return phase_of(chi1(self.activation, w2, q, self.negative_slope))


def criticality(
    activation: str | None,
    bias_var: float,
    weight_var: float | None = None,
    negative_slope: float = 0.01,
) -> Criticality:
    """The critical sigma_w^2 and q*, chi's and depth scales there (or at weight_var)."""
    name = _canonical(activation)
    b2 = _check_var("bias_var", bias_var)
    try:
        w_crit = critical_weight_variance(name, b2, negative_slope)
    except WinitError:
        if weight_var is None:
            raise
        w_crit = math.nan
    w2 = w_crit if weight_var is None else _check_var("weight_var", weight_var)
    q = fixed_point(name, w2, b2, negative_slope)
    x1 = chi1(name, w2, q, negative_slope)
    xq = chi_q(name, w2, q, negative_slope) if math.isfinite(q) else math.nan
    if weight_var is None or phase_of(x1, 0.0) != "chaotic":
        c_star, xc = 1.0, x1  # ordered, or on the line: c* = 1
    elif 0 < q < math.inf:
        c_star = correlation_fixed_point(name, w2, b2, q, negative_slope)
        xc = chi_c(name, w2, q, c_star, negative_slope)
    else:
        c_star, xc = math.nan, math.nan
    xi_c = math.inf if weight_var is None or c_star == 1.0 and xc >= 1 else depth_scale(xc)
    return Criticality(
        activation=name,
        bias_var=b2,
        critical_weight_var=w_crit,
        weight_var=w2,
        q_star=q,
        chi1=x1,
        chi_q=xq,
        c_star=c_star,
        depth_scale_q=depth_scale(xq),
        depth_scale_c=xi_c,
        negative_slope=float(negative_slope),
    )


def around_the_line(
    activation: str,
    bias_var: float,
    factors: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 2.0),
    negative_slope: float = 0.01,
) -> list[Criticality]:
    """The state at multiples of the critical sigma_w^2: ordered below, chaotic above."""
    line = criticality(activation, bias_var, negative_slope=negative_slope)
    return [
        criticality(activation, bias_var, line.critical_weight_var * f, negative_slope)
        for f in factors
    ]
