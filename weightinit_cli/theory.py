"""Mean-field predictions of how a signal propagates through a freshly initialized network.

NumPy only. For a stack of weighted layers (Dense or ConvNd) with zero-mean i.i.d.
weights, the pre-activation of every unit of layer l is, at infinite width, Gaussian
with variance

    q_1 = sigma_w,1^2 * m_0 + sigma_b,1^2
    q_l = sigma_w,l^2 * E_z[phi_{l-1}(sqrt(q_{l-1}) z)^2] + sigma_b,l^2,   z ~ N(0, 1)

where sigma_w,l^2 = fan_in_l * Var(W_l), sigma_b,l^2 = Var(b_l), m_0 is the input's mean
second moment and phi_{l-1} the activation after layer l-1. Back-propagated gradients
follow, under the gradient-independence assumption, the mirror recursion

    g_l = g_{l+1} * sigma_back,l+1^2 * E_z[phi_l'(sqrt(q_l) z)^2],

with sigma_back,l^2 = fan_out_l * Var(W_l), g_l the variance of dLoss/d(pre-activation).

Gaussian expectations use Gauss-Legendre quadrature split at z = 0, where every
activation here has its kink, on panels graded towards 0. Plain Gauss-Hermite converges
only as 1/n on a kink (101 nodes leave E[relu(z)] 0.8 % off); this rule is exact to
rounding for every supported activation.

Approximations, to keep in mind when comparing with measurements:
- finite width: measured variances scatter around q by about sqrt(2 / units);
- pooling and flatten are not modelled; they are assumed to pass the second moment
  through. Exact for flatten; average pooling shrinks the fluctuating part and max pooling
  raises it, and global average pooling after convs keeps only the spatially correlated
  part, so predictions after it are not exact;
- convolutions with zero padding give border pixels fewer inputs than fan_in;
- strided convs: each input feeds fan_out / stride^d outputs in the backward pass.

References
- He, Zhang, Ren & Sun 2015, Delving deep into rectifiers (ICCV): the fan_in/fan_out
  variance recursions for rectifiers.
- Poole, Lahiri, Raghu, Sohl-Dickstein & Ganguli 2016, Exponential expressivity in deep
  neural networks through transient chaos (NeurIPS): the length map q_l.
- Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, Deep information propagation
  (ICLR): gradient variances and the gradient-independence assumption.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .errors import WinitError

ACTIVATIONS = ("linear", "relu", "leaky_relu", "tanh", "sigmoid", "selu", "gelu", "elu", "silu")

# torch.nn.SELU (Klambauer et al. 2017) and torch.nn.ELU's default alpha.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
ELU_ALPHA = 1.0

Array = np.ndarray
Fn = Callable[[Array], Array]

_erf = np.vectorize(math.erf, otypes=[float])


def _canonical(name: str | None) -> str:
    key = "linear" if name is None else name.strip().lower()
    if key == "identity":
        key = "linear"
    if key not in ACTIVATIONS:
        raise WinitError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    return key


def _sigmoid(x: Array) -> Array:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _normal_cdf(x: Array) -> Array:
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))


def _normal_pdf(x: Array) -> Array:
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _forward(key: str, slope: float) -> Fn:
    # expm1/exp see min(x, 0) so the branch np.where discards never overflows.
    table: dict[str, Fn] = {
        "linear": lambda x: x.copy(),
        "relu": lambda x: np.maximum(x, 0.0),
        "leaky_relu": lambda x: np.where(x >= 0, x, slope * x),
        "tanh": np.tanh,
        "sigmoid": _sigmoid,
        "selu": lambda x: (
            SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0)))
        ),
        "gelu": lambda x: x * _normal_cdf(x),
        "elu": lambda x: np.where(x > 0, x, ELU_ALPHA * np.expm1(np.minimum(x, 0.0))),
        "silu": lambda x: x * _sigmoid(x),
    }
    return table[key]


def _derivative(key: str, slope: float) -> Fn:

    def silu(x: Array) -> Array:
        s = _sigmoid(x)
        return s * (1.0 + x * (1.0 - s))

    # At 0, as torch's autograd: relu' = 0, leaky_relu' = slope, elu' = alpha, selu' = scale*alpha.
    table: dict[str, Fn] = {
        "linear": np.ones_like,
        "relu": lambda x: (x > 0).astype(float),
        "leaky_relu": lambda x: np.where(x > 0, 1.0, slope),
        "tanh": lambda x: 1.0 - np.tanh(x) ** 2,
        "sigmoid": lambda x: _sigmoid(x) * (1.0 - _sigmoid(x)),
        "selu": lambda x: (
            SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0.0)))
        ),
        "gelu": lambda x: _normal_cdf(x) + x * _normal_pdf(x),
        "elu": lambda x: np.where(x > 0, 1.0, ELU_ALPHA * np.exp(np.minimum(x, 0.0))),
        "silu": silu,
    }
    return table[key]


def activation_fn(name: str | None, negative_slope: float = 0.01) -> Fn:
    """The activation as a NumPy function (float64), matching torch.nn.functional."""
    f = _forward(_canonical(name), float(negative_slope))
    return lambda x: f(np.asarray(x, dtype=float))


def activation_derivative(name: str | None, negative_slope: float = 0.01) -> Fn:
    """The activation's derivative as a NumPy function, matching torch's autograd."""
    f = _derivative(_canonical(name), float(negative_slope))
    return lambda x: f(np.asarray(x, dtype=float))


@lru_cache(maxsize=1)
def _quadrature() -> tuple[Array, Array]:
    """Nodes z and weights w with sum(w * f(z)) = E[f(z)], z ~ N(0, 1)."""
    edges = np.concatenate([[0.0], 2.0 ** np.arange(-12, 0), np.arange(1.0, 13.0)])
    x, w = np.polynomial.legendre.leggauss(16)
    lo, hi = edges[:-1, None], edges[1:, None]
    half_z = (lo + (hi - lo) * (x + 1) / 2).ravel()
    half_w = ((hi - lo) / 2 * w).ravel() * _normal_pdf(half_z)
    z = np.concatenate([-half_z[::-1], half_z])
    weights = np.concatenate([half_w[::-1], half_w])
    z.flags.writeable = False
    weights.flags.writeable = False
    return z, weights


def _expect(f: Fn, q: float) -> tuple[float, float]:
    """(E[f(sqrt(q) z)], E[f(sqrt(q) z)^2]) for z ~ N(0, 1)."""
    if not math.isfinite(q) or q < 0:
        raise ValueError(f"the variance q must be finite and >= 0; got {q}")
    z, w = _quadrature()
    # A signal near float range overflows to inf here, which is the answer: it exploded.
    with np.errstate(over="ignore", invalid="ignore"):
        y = f(math.sqrt(q) * z)
        return float(w @ y), float(w @ (y * y))


def gaussian_moments(
    name: str | None, q: float, negative_slope: float = 0.01
) -> tuple[float, float]:
    """(E[phi(sqrt(q) z)], E[phi(sqrt(q) z)^2]) for z ~ N(0, 1)."""
    return _expect(_forward(_canonical(name), float(negative_slope)), float(q))


def derivative_second_moment(name: str | None, q: float, negative_slope: float = 0.01) -> float:
    """E[phi'(sqrt(q) z)^2] for z ~ N(0, 1)."""
    return _expect(_derivative(_canonical(name), float(negative_slope)), float(q))[1]


@dataclass(frozen=True)
class LayerPrediction:
    """Predicted statistics of one weighted layer's units (over inputs and weight draws)."""

    q: float  # pre-activation variance
    pre_std: float  # sqrt(q)
    post_mean: float  # E[phi(h)]; 0 when no activation follows
    post_std: float  # std of phi(h); pre_std when no activation follows
    post_second_moment: float  # E[phi(h)^2]: what the next layer's q is built from


def _check(name: str, values: Sequence[float], n: int | None = None) -> list[float]:
    out = [float(v) for v in values]
    if n is not None and len(out) != n:
        raise ValueError(f"{name} has {len(out)} entries; expected {n}, one per weighted layer")
    if any(not math.isfinite(v) or v < 0 for v in out):
        raise ValueError(f"{name} must be finite and >= 0; got {out}")
    return out


def predict_signal(
    weight_vars: Sequence[float],
    bias_vars: Sequence[float],
    activations: Sequence[str | None],
    input_second_moment: float,
    negative_slope: float = 0.01,
) -> list[LayerPrediction]:
    """Per weighted layer, the predicted pre- and post-activation statistics (mean field)."""
    sw = _check("weight_vars", weight_vars)
    sb = _check("bias_vars", bias_vars, len(sw))
    if len(activations) != len(sw):
        raise ValueError(f"activations has {len(activations)} entries; expected {len(sw)}")
    (m,) = _check("input_second_moment", [input_second_moment])
    out: list[LayerPrediction] = []
    for w2, b2, act in zip(sw, sb, activations, strict=True):
        q = w2 * m + b2
        key = _canonical(act)
        if key == "linear":
            mean, m = 0.0, q
        else:
            mean, m = gaussian_moments(key, q, negative_slope)
        std = math.sqrt(max(m - mean * mean, 0.0))
        out.append(LayerPrediction(q, math.sqrt(q), mean, std, m))
    return out


def predict_gradient_ratios(
    weight_vars_backward: Sequence[float],
    activations: Sequence[str | None],
    qs: Sequence[float],
    negative_slope: float = 0.01,
) -> list[float]:
    """Per weighted layer, Var(dLoss/d pre-activation) relative to the last layer's.

    weight_vars_backward[l] = fan_out_l * Var(W_l) (entry 0 is unused: it only scales the
    gradient w.r.t. the input); qs are the pre-activation variances from predict_signal.
    """
    n = len(qs)
    back = _check("weight_vars_backward", weight_vars_backward, n)
    q = _check("qs", qs)
    if len(activations) != n:
        raise ValueError(f"activations has {len(activations)} entries; expected {n}")
    ratios = [1.0] * n
    for i in range(n - 2, -1, -1):
        chi = back[i + 1] * derivative_second_moment(activations[i], q[i], negative_slope)
        ratios[i] = ratios[i + 1] * chi
    return ratios


def predict_weight_gradient_ratios(
    gradient_ratios: Sequence[float],
    predictions: Sequence[LayerPrediction],
    input_second_moment: float,
) -> list[float]:
    """Per weighted layer, Var(dLoss/dW) relative to the last layer's (per-sample estimate).

    dLoss/dW_l = delta_l x_{l-1}^T, so its variance is g_l * E[x_{l-1}^2] under the
    independence assumption; batch averaging correlates samples, so this is approximate.
    """
    g = _check("gradient_ratios", gradient_ratios, len(predictions))
    inputs = [float(input_second_moment)] + [p.post_second_moment for p in predictions[:-1]]
    raw = [gi * mi for gi, mi in zip(g, inputs, strict=True)]
    if not raw:
        return []
    last = raw[-1]
    return [r / last if last > 0 else math.nan for r in raw]


def per_layer_decay(stds: Sequence[float]) -> float:
    """Geometric mean of std_{l+1}/std_l: below 1 the signal shrinks, above 1 it grows."""
    s = [float(v) for v in stds]
    if any(v < 0 for v in s):
        raise ValueError(f"stds must be >= 0; got {s}")
    if len(s) < 2:
        return 1.0
    if any(v == 0 for v in s):
        return 0.0
    with np.errstate(invalid="ignore"):
        return float(np.exp((np.log(s[-1]) - np.log(s[0])) / (len(s) - 1)))
