"""The activations winit knows, in one table, and the Gaussian expectations theory takes.

Each entry holds the function, its first and second derivatives (NumPy, float64, matching
torch.nn.functional and torch's autograd), the torch module that applies it, its gain
(fans.calculate_gain), the init a net of it should try, and, for tanh and sigmoid,
where it saturates. The config's `activation` choices, the modules models.py builds and
apply.py recognises, the mean-field theory (meanfield/) and the verdict all read it.

Gaussian expectations E[f(√q z)], z ~ N(0, 1), use Gauss-Legendre quadrature split at
z = 0, where every activation here has its kink, on panels graded towards 0: plain
Gauss-Hermite converges only as 1/n on a kink (101 nodes leave E[relu(z)] 0.8% off),
while this rule is exact to rounding for every activation in the table. Two correlated
Gaussians (`expect2`) use polar quadrature with the angle split at the kink rays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .errors import WinitError
from .fans import calculate_gain
from .limits import excerpt

Array = np.ndarray
Fn = Callable[[Array], Array]
# f(x, negative_slope): the slope matters for leaky_relu only
SlopedFn = Callable[[Array, float], Array]

# torch.nn.SELU (Klambauer et al. 2017) and torch.nn.ELU's default alpha.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
ELU_ALPHA = 1.0

_erf = np.vectorize(math.erf, otypes=[float])


def _sigmoid(x: Array) -> Array:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def normal_cdf(x: Array) -> Array:
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))


def normal_pdf(x: Array) -> Array:
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Activation:
    """One activation: its function and derivatives, f(x, negative_slope) on float64
    arrays; at 0 the derivatives take torch autograd's side (relu' = 0, leaky_relu' =
    slope, elu' = alpha); second derivatives hold almost everywhere."""

    name: str
    torch_module: str  # the torch.nn class that applies it
    suggestion: str  # the init to try in a net of this activation
    value: SlopedFn
    derivative: SlopedFn
    second_derivative: SlopedFn
    # where it has lost almost all its slope (works on NumPy arrays and torch tensors)
    saturated: Callable[[Any], Any] | None = None

    def gain(self, negative_slope: float = 0.01) -> float:
        """calculate_gain of this activation (torch's, or winit's variance-preserving one)."""
        return calculate_gain(self.name, negative_slope if self.name == "leaky_relu" else None)


def _expm1_neg(x: Array) -> Array:
    # expm1 and exp see min(x, 0), so the branch np.where discards never overflows
    return np.expm1(np.minimum(x, 0.0))


def _silu1(x: Array, _: float) -> Array:
    s = _sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


def _silu2(x: Array, _: float) -> Array:
    s = _sigmoid(x)
    return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))


def _tanh2(x: Array, _: float) -> Array:
    t = np.tanh(x)
    return -2.0 * t * (1.0 - t * t)


def _sigmoid2(x: Array, _: float) -> Array:
    s = _sigmoid(x)
    return s * (1.0 - s) * (1.0 - 2.0 * s)


def _zeros(x: Array, _: float) -> Array:
    return np.zeros_like(x)


_TABLE = (
    Activation(
        "linear",
        "Identity",
        "orthogonal or lecun_normal",
        value=lambda x, _: x.copy(),
        derivative=lambda x, _: np.ones_like(x),
        second_derivative=_zeros,
    ),
    Activation(
        "relu",
        "ReLU",
        "he_normal",
        value=lambda x, _: np.maximum(x, 0.0),
        derivative=lambda x, _: (x > 0).astype(float),
        second_derivative=_zeros,
    ),
    Activation(
        "leaky_relu",
        "LeakyReLU",
        "he_normal with gain auto",
        value=lambda x, slope: np.where(x >= 0, x, slope * x),
        derivative=lambda x, slope: np.where(x > 0, 1.0, slope),
        second_derivative=_zeros,
    ),
    Activation(
        "tanh",
        "Tanh",
        "xavier_normal or orthogonal",
        value=lambda x, _: np.tanh(x),
        derivative=lambda x, _: 1.0 - np.tanh(x) ** 2,
        second_derivative=_tanh2,
        saturated=lambda a: abs(a) > 0.99,
    ),
    Activation(
        "sigmoid",
        "Sigmoid",
        "xavier_normal",
        value=lambda x, _: _sigmoid(x),
        derivative=lambda x, _: _sigmoid(x) * (1.0 - _sigmoid(x)),
        second_derivative=_sigmoid2,
        saturated=lambda a: (a < 0.01) | (a > 0.99),
    ),
    Activation(
        "selu",
        "SELU",
        "lecun_normal",
        value=lambda x, _: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * _expm1_neg(x)),
        derivative=lambda x, _: (
            SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0.0)))
        ),
        second_derivative=lambda x, _: np.where(
            x > 0, 0.0, SELU_SCALE * SELU_ALPHA * np.exp(np.minimum(x, 0.0))
        ),
    ),
    Activation(
        "gelu",
        "GELU",
        "he_normal with gain auto",
        value=lambda x, _: x * normal_cdf(x),
        derivative=lambda x, _: normal_cdf(x) + x * normal_pdf(x),
        second_derivative=lambda x, _: normal_pdf(x) * (2.0 - x * x),
    ),
    Activation(
        "elu",
        "ELU",
        "he_normal with gain auto",
        value=lambda x, _: np.where(x > 0, x, ELU_ALPHA * _expm1_neg(x)),
        derivative=lambda x, _: np.where(x > 0, 1.0, ELU_ALPHA * np.exp(np.minimum(x, 0.0))),
        second_derivative=lambda x, _: np.where(x > 0, 0.0, ELU_ALPHA * np.exp(np.minimum(x, 0.0))),
    ),
    Activation(
        "silu",
        "SiLU",
        "he_normal with gain auto",
        value=lambda x, _: x * _sigmoid(x),
        derivative=_silu1,
        second_derivative=_silu2,
    ),
)

ACTIVATIONS: dict[str, Activation] = {a.name: a for a in _TABLE}


def get_activation(name: str | None) -> Activation:
    """The table's entry for `name` (None and "identity" are linear)."""
    key = "linear" if name is None else name.strip().lower()
    key = "linear" if key == "identity" else key
    if key not in ACTIVATIONS:
        raise WinitError(
            f"unknown activation {excerpt(name)}; expected one of {', '.join(ACTIVATIONS)}"
        )
    return ACTIVATIONS[key]


def sloped(f: SlopedFn, negative_slope: float) -> Fn:
    """f as a function of x alone, on float64 arrays."""
    return lambda x: f(np.asarray(x, dtype=float), float(negative_slope))


def _panel_edges() -> Array:
    """[0, 12] in Gauss-Legendre panels, graded towards 0 (2^-12 ... 1/2, then 1 ... 12)."""
    return np.concatenate([[0.0], 2.0 ** np.arange(-12, 0), np.arange(1.0, 13.0)])


@lru_cache(maxsize=1)
def _line_rule() -> tuple[Array, Array]:
    """Nodes z and weights w with sum(w * f(z)) = E[f(z)], z ~ N(0, 1)."""
    edges = _panel_edges()
    x, w = np.polynomial.legendre.leggauss(16)
    lo, hi = edges[:-1, None], edges[1:, None]
    half_z = (lo + (hi - lo) * (x + 1) / 2).ravel()
    half_w = ((hi - lo) / 2 * w).ravel() * normal_pdf(half_z)
    z = np.concatenate([-half_z[::-1], half_z])
    weights = np.concatenate([half_w[::-1], half_w])
    z.flags.writeable = False
    weights.flags.writeable = False
    return z, weights


def expect(f: Fn, q: float) -> tuple[float, float]:
    """(E[f(√q z)], E[f(√q z)²]) for z ~ N(0, 1)."""
    if not math.isfinite(q) or q < 0:
        raise ValueError(f"the variance q must be finite and >= 0; got {q}")
    z, w = _line_rule()
    # A signal near float range overflows to inf here, which is the answer: it exploded.
    with np.errstate(over="ignore", invalid="ignore"):
        y = f(math.sqrt(q) * z)
        return float(w @ y), float(w @ (y * y))


@lru_cache(maxsize=1)
def _radial_rule() -> tuple[Array, Array]:
    """Nodes r and weights with sum(w * f(r)) = integral_0^inf f(r) r exp(-r²/2) dr."""
    # graded towards 0 as the line rule: at large q, tanh(√q r) turns within r ~ 1/√q
    edges = _panel_edges()
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


def expect2(f: Fn, g: Fn, q: float, c: float) -> float:
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
    r, rw = _radial_rule()
    z1 = np.outer(r, np.cos(theta))
    z2 = np.outer(r, np.sin(theta))
    sq = math.sqrt(q)
    with np.errstate(over="ignore", invalid="ignore"):
        vals = f(sq * z1) * g(sq * (c * z1 + s * z2))
        return float(rw @ vals @ tw)


def gaussian_moments(
    name: str | None, q: float, negative_slope: float = 0.01
) -> tuple[float, float]:
    """(E[φ(√q z)], E[φ(√q z)²]) for z ~ N(0, 1)."""
    return expect(sloped(get_activation(name).value, negative_slope), float(q))


def derivative_second_moment(name: str | None, q: float, negative_slope: float = 0.01) -> float:
    """E[φ'(√q z)²] for z ~ N(0, 1)."""
    return expect(sloped(get_activation(name).derivative, negative_slope), float(q))[1]
