"""Mean-field theory of a freshly initialized network, at infinite width: how a signal
propagates, and where the order-to-chaos transition lies. NumPy only; no printing.

- propagation.py: per layer of a real network, the predicted variances of activations and
  gradients.
- criticality.py: with one sigma_w^2, sigma_b^2 in every layer, the fixed points, the
  order-to-chaos line and the depth scales.

References
- He, Zhang, Ren & Sun 2015, Delving deep into rectifiers (ICCV).
- Poole, Lahiri, Raghu, Sohl-Dickstein & Ganguli 2016, Exponential expressivity in deep
  neural networks through transient chaos (NeurIPS): the length and correlation maps.
- Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, Deep information propagation
  (ICLR): gradient variances, χ_q, χ_c, the depth scales and trainability near the line.
"""

from .criticality import (
    PHASE_TOLERANCE,
    Criticality,
    Phase,
    around_the_line,
    chi1,
    chi_c,
    chi_q,
    correlation_fixed_point,
    correlation_map,
    critical_weight_variance,
    criticality,
    depth_scale,
    fixed_point,
    phase_of,
)
from .propagation import (
    LayerPrediction,
    per_layer_decay,
    predict_gradient_ratios,
    predict_layers,
    predict_signal,
)

__all__ = [
    "Criticality",
    "LayerPrediction",
    "PHASE_TOLERANCE",
    "Phase",
    "around_the_line",
    "chi1",
    "chi_c",
    "chi_q",
    "correlation_fixed_point",
    "correlation_map",
    "critical_weight_variance",
    "criticality",
    "depth_scale",
    "fixed_point",
    "per_layer_decay",
    "phase_of",
    "predict_gradient_ratios",
    "predict_layers",
    "predict_signal",
]
