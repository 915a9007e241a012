"""Fans and gains, shared by both backends. Pure Python: no NumPy, no torch.

Fans follow ``torch.nn.init._calculate_fan_in_and_fan_out`` on the PyTorch weight
layout: (out, in) for Linear, (out, in/groups, *kernel) for ConvNd and
(in, out/groups, *kernel) for ConvTransposeNd. As in torch, dim 1 is always the
"input" fan and dim 0 the "output" fan, whatever the layer type.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .errors import ShapeError
from .limits import excerpt

FAN_MODES = ("fan_in", "fan_out", "fan_avg")

# Gains torch.nn.init.calculate_gain does not cover. Our choice is the gain that
# preserves the second moment through one layer at unit pre-activation variance:
# gain = 1 / sqrt(E[phi(z)^2]), z ~ N(0, 1) (Gauss-Hermite quadrature; tests
# recompute these). The same rule gives torch's sqrt(2) for relu exactly.
VARIANCE_PRESERVING_GAINS = {
    "gelu": 1.5335304411955362,
    "elu": 1.2451983007007066,
    "silu": 1.676532470331092,
}

LINEAR_NONLINEARITIES = (
    "linear",
    "identity",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
NONLINEARITIES = (
    *LINEAR_NONLINEARITIES,
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
    *VARIANCE_PRESERVING_GAINS,
)


def fan_in_and_fan_out(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of this shape, exactly as torch computes them."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ShapeError(
            f"fan_in and fan_out need a weight of at least 2 dimensions; got shape {shape}"
        )
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def fan(shape: Sequence[int], mode: str = "fan_in") -> float:
    """The fan a method scales by: fan_in, fan_out, or their mean (fan_avg)."""
    fan_in, fan_out = fan_in_and_fan_out(shape)
    if mode == "fan_in":
        return float(fan_in)
    if mode == "fan_out":
        return float(fan_out)
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2.0
    raise ShapeError(f"mode must be one of {', '.join(FAN_MODES)}; got {excerpt(mode)}")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity, as torch.nn.init.calculate_gain.

    gelu, elu and silu, which torch does not cover, get the variance-preserving
    gain 1/sqrt(E[phi(z)^2]) (see VARIANCE_PRESERVING_GAINS).
    """
    if nonlinearity in LINEAR_NONLINEARITIES or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, (int, float)):
            raise ValueError(f"negative_slope {param} not a valid number")
        else:
            slope = param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        # torch's empirical value (pytorch/pytorch#50664), not 1 as self-normalisation implies.
        return 3.0 / 4
    if nonlinearity in VARIANCE_PRESERVING_GAINS:
        return VARIANCE_PRESERVING_GAINS[nonlinearity]
    raise ValueError(
        f"unsupported nonlinearity {excerpt(nonlinearity)}; "
        f"expected one of {', '.join(NONLINEARITIES)}"
    )
