"""The order-to-chaos transition.

With one σ_w², σ_b² in every layer, q reaches a fixed point q*, and the
correlation c of two inputs follows c -> (σ_w² E[φ(u1) φ(u2)] + σ_b²)/q*, whose fixed
point c = 1 has slope χ_1 = σ_w² E[φ'(√q* z)²]: below 1 inputs converge (ordered,
gradients vanish), above 1 they decorrelate to c* < 1 (chaotic, gradients explode), and
on the critical line χ_1 = 1 signals travel deepest. Depth scales: ξ_q = -1/ln χ_q (χ_q
the length map's slope at q*) and ξ_c = -1/ln χ_c (χ_c the correlation map's slope at
c*), which diverges on the line. Where q* = 0 or inf, χ_1 and χ_q are the limits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..activations import expect, expect2, get_activation, sloped
from ..errors import WinitError

Phase = Literal["ordered", "critical", "chaotic"]

PHASE_TOLERANCE = 0.02  # |chi_1 - 1| within which a point counts as critical
Q_MAX = 1e12  # a length map still growing here diverges (relu at 2 rounds to ~1e15)
Q_MIN = 1e-200  # a length map still shrinking here collapses to 0
Q_ZERO = 1e-14  # fixed points of phi(0) = 0, bias-free maps below this count as 0
_Q_LIMIT_LOW = 1e-300  # where chi_1 and chi_q take their q -> 0+ limits
_Q_LIMIT_HIGH = 1e200  # ... and their q -> inf limits
_JUMP_TOL = 1e-4  # |chi_1 - 1| beyond which a sign change of chi_1 - 1 is a jump, not a root
_NEUTRAL_RTOL = 1e-14  # |map(q) - q| <= this * q: q is itself a fixed point (relu at 2)


def _length_map(
    key: str, weight_var: float, bias_var: float, slope: float
) -> Callable[[float], float]:
    phi = sloped(get_activation(key).value, slope)
    return lambda q: weight_var * expect(phi, q)[1] + bias_var


def _check_var(name: str, value: float) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and >= 0; got {value}")
    return v


def _check_fixed_point(needed_by: str, q_star: float) -> float:
    q = float(q_star)
    if not math.isfinite(q) or q <= 0:
        raise ValueError(f"{needed_by} needs a finite fixed point q* > 0; got {q_star}")
    return q


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
    key = get_activation(activation).name
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
    dphi = sloped(get_activation(activation).derivative, negative_slope)
    w2 = _check_var("weight_var", weight_var)
    return w2 * expect(dphi, _limit_q(q))[1]


def chi_q(
    activation: str | None, weight_var: float, q: float, negative_slope: float = 0.01
) -> float:
    """chi_q = sigma_w^2 E[phi'' phi + phi'^2] at variance q: the length map's slope there."""
    act = get_activation(activation)
    phi, dphi = sloped(act.value, negative_slope), sloped(act.derivative, negative_slope)
    ddphi = sloped(act.second_derivative, negative_slope)
    w2 = _check_var("weight_var", weight_var)
    return w2 * expect(lambda x: ddphi(x) * phi(x) + dphi(x) ** 2, _limit_q(q))[0]


def depth_scale(chi: float, tol: float = 1e-6) -> float:
    """-1/ln(chi) for a contraction rate chi in [0, 1); inf within tol of 1, nan above."""
    if math.isnan(chi) or chi > 1 + tol:
        return math.nan
    if chi >= 1 - tol:
        return math.inf
    if chi <= 0:
        return 0.0
    return -1.0 / math.log(chi)


def correlation_map(
    activation: str | None,
    weight_var: float,
    bias_var: float,
    q_star: float,
    c: float,
    negative_slope: float = 0.01,
) -> float:
    """c -> (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / q*, with u1, u2 ~ N(0, q*), corr c."""
    q = _check_fixed_point("the correlation map", q_star)
    phi = sloped(get_activation(activation).value, negative_slope)
    w2, b2 = _check_var("weight_var", weight_var), _check_var("bias_var", bias_var)
    return (w2 * expect2(phi, phi, q, float(c)) + b2) / q


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
    q = _check_fixed_point("chi_c", q_star)
    dphi = sloped(get_activation(activation).derivative, negative_slope)
    return _check_var("weight_var", weight_var) * expect2(dphi, dphi, q, float(c))


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
    name = get_activation(activation).name
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

    def phase(self) -> Phase:
        """The phase at this record's σ_w², from χ_1 with 2% tolerance."""
        return phase_of(self.chi1)


def criticality(
    activation: str | None,
    bias_var: float,
    weight_var: float | None = None,
    negative_slope: float = 0.01,
    *,
    critical_weight_var: float | None = None,
) -> Criticality:
    """The critical sigma_w^2 and q*, chi's and depth scales there (or at weight_var).
    `critical_weight_var`: the line, where it is known already (it takes a bisection)."""
    name = get_activation(activation).name
    b2 = _check_var("bias_var", bias_var)
    if critical_weight_var is not None:
        w_crit = float(critical_weight_var)
    else:
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
    line: Criticality | None = None,
) -> list[Criticality]:
    """The state at multiples of the critical sigma_w^2 (of `line`, where it is known):
    ordered below, chaotic above."""
    if line is None:
        line = criticality(activation, bias_var, negative_slope=negative_slope)
    w_crit = line.critical_weight_var
    return [
        criticality(activation, bias_var, w_crit * f, negative_slope, critical_weight_var=w_crit)
        for f in factors
    ]
