"""How a signal and its gradient propagate through a network at init, layer by layer.

With zero-mean i.i.d. weights, each unit's pre-activation at layer l is
Gaussian with variance q_l = σ_w,l² E_z[φ_{l-1}(√q_{l-1} z)²] + σ_b,l² (q_1 = σ_w,1² m_0
+ σ_b,1²), where σ_w,l² = fan_in·Var(W_l), σ_b,l² = Var(b_l), m_0 the input's second
moment and φ_{l-1} the activation before (Poole et al. 2016; He et al. 2015). Gradients
follow, under the gradient-independence assumption, g_l = g_{l+1} σ_back,l+1²
E[φ_l'(√q_l z)²] with σ_back² = fan_out·Var(W) (Schoenholz et al. 2017). Finite width
scatters measurements by about √(2/units); pooling, batchnorm and dropout are not
modelled (predict_layers restarts after them from the measured input), nor are zero
padding and strides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..activations import derivative_second_moment, gaussian_moments, get_activation


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
        out.append(_predict_one(w2, b2, act, m, negative_slope))
        m = out[-1].post_second_moment
    return out


def _predict_one(
    weight_var: float, bias_var: float, activation: str | None, moment: float, slope: float
) -> LayerPrediction:
    """One layer's prediction from the second moment of its input."""
    q = weight_var * moment + bias_var
    key = get_activation(activation).name
    mean, m = (0.0, q) if key == "linear" else gaussian_moments(key, q, slope)
    std = math.sqrt(max(m - mean * mean, 0.0))
    return LayerPrediction(q, math.sqrt(q), mean, std, m)


def predict_layers(
    weight_vars: Sequence[float],
    bias_vars: Sequence[float],
    activations: Sequence[str | None],
    slopes: Sequence[float],
    chained: Sequence[bool],
    input_moments: Sequence[float],
) -> list[LayerPrediction]:
    """The prediction at each weighted layer of a real network: carried on from the layer
    before where only activations and flattens stand between them (`chained`), and
    restarted from the measured second moment of the layer's input elsewhere (pooling,
    batchnorm and dropout are not modelled). A signal that leaves float range is
    predicted to have exploded: inf from there on."""
    out: list[LayerPrediction] = []
    moment = math.inf
    for w2, b2, act, slope, carry, measured in zip(
        weight_vars, bias_vars, activations, slopes, chained, input_moments, strict=True
    ):
        if not carry or not out:
            moment = measured
        if not math.isfinite(w2 * moment + b2):
            out.append(LayerPrediction(math.inf, math.inf, math.nan, math.inf, math.inf))
            moment = math.inf
            continue
        prediction = _predict_one(w2, b2, act, moment, slope)
        out.append(prediction)
        moment = prediction.post_second_moment
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
