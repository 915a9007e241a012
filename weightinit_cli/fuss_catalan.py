"""The Fuss-Catalan distribution: the limit law of the squared singular values of a product
of s square Gaussian matrices (Penson & Życzkowski 2011, "Product of Ginibre matrices:
Fuss-Catalan and Raney distributions", Phys. Rev. E 83, 061118).

For J = W_s ... W_1 with n×n i.i.d. centred W_l of variance σ_l²/n, the eigenvalues of
JJᵀ/c, c = Π σ_l², follow it as n → ∞. Its moments are the Fuss-Catalan numbers
FC_s(k) = binom((s+1)k, k) / (sk + 1), its support [0, (s+1)^(s+1) / s^s]; s = 1 is
Marchenko-Pastur at ratio 1, √(4/x − 1) / (2π) on [0, 4].

The density has no elementary form in x, but one in a parameter φ ∈ (0, π/(s+1))
(Haagerup & Möller 2012, "The law of large numbers for the free multiplicative
convolution"; Neuschel 2014, "Plancherel-Rotach formulae for average
characteristic polynomials of products of Ginibre random matrices and the Fuss-Catalan
distribution", Constr. Approx. 40):
    x(φ) = sin((s+1)φ)^(s+1) / (sin φ · sin(sφ)^s),
    ρ(x(φ)) = (1/π) · sin(φ)² · sin(sφ)^(s−1) / sin((s+1)φ)^s,
x falling from the edge at φ → 0 to 0 at φ → π/(s+1); `density` inverts x(φ) by
bisection. tests/test_fuss_catalan.py checks the mass and the first four moments
against FC_s(k) by quadrature, and s = 1 against Marchenko-Pastur.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

BISECTIONS = 64  # halvings of (0, π/(s+1)): φ to float64 resolution


def _checked(s: int) -> int:
    if int(s) != s or s < 1:
        raise ValueError(f"order s: a positive integer; got {s}")
    return int(s)


def edge(s: int) -> float:
    """The upper end of the support, (s+1)^(s+1) / s^s."""
    s = _checked(s)
    return (s + 1) ** (s + 1) / s**s


def moment(s: int, k: int) -> int:
    """FC_s(k) = binom((s+1)k, k) / (sk + 1), the k-th moment."""
    s = _checked(s)
    return math.comb((s + 1) * k, k) // (s * k + 1)


def _x(phi: Any, s: int) -> Any:
    return np.sin((s + 1) * phi) ** (s + 1) / (np.sin(phi) * np.sin(s * phi) ** s)


def _rho(phi: Any, s: int) -> Any:
    return np.sin(phi) ** 2 * np.sin(s * phi) ** (s - 1) / (np.pi * np.sin((s + 1) * phi) ** s)


def density(x: Any, s: int) -> np.ndarray:
    """ρ(x), 0 outside (0, edge(s)); x any array-like."""
    s = _checked(s)
    x = np.asarray(x, dtype=float)
    inside = (x > 0) & (x < edge(s))
    target = np.where(inside, x, 1.0)
    lo, hi = np.zeros_like(target), np.full_like(target, math.pi / (s + 1))
    for _ in range(BISECTIONS):  # x(φ) falls with φ
        mid = 0.5 * (lo + hi)
        above = _x(mid, s) > target
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    phi = 0.5 * (lo + hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = _rho(phi, s)
    return np.where(inside, values, 0.0)


def log_singular_density(u: Any, s: int, scale: float) -> np.ndarray:
    """The density of u = ln σ where σ² = scale · x and x is Fuss-Catalan of order s:
    x = e^(2u) / scale, so p(u) = 2x ρ(x)."""
    if not scale > 0:
        raise ValueError(f"scale: positive; got {scale}")
    x = np.exp(2.0 * np.asarray(u, dtype=float)) / scale
    return 2.0 * x * density(x, s)


__all__ = ["density", "edge", "log_singular_density", "moment"]
