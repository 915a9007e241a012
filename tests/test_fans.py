"""Fans and gains against torch.nn.init, exactly."""

import math

import pytest
import torch
from torch import nn
from torch.nn import init as nn_init

from weightinit_cli.errors import ShapeError
from weightinit_cli.fans import VARIANCE_PRESERVING_GAINS, calculate_gain, fan, fan_in_and_fan_out

LAYERS = {
    "dense": nn.Linear(512, 256),
    "conv1d": nn.Conv1d(6, 10, 5),
    "conv2d": nn.Conv2d(32, 64, 3),
    "conv3d": nn.Conv3d(8, 16, 3),
    "grouped": nn.Conv2d(32, 64, (3, 5), groups=4),
    "depthwise": nn.Conv2d(32, 32, 3, groups=32),
    "conv_transpose2d": nn.ConvTranspose2d(16, 8, 4),
    "grouped_transpose3d": nn.ConvTranspose3d(8, 12, 3, groups=4),
}


@pytest.mark.parametrize("layer", LAYERS.values(), ids=LAYERS.keys())
def test_fans_equal_torch(layer):
    expected = nn_init._calculate_fan_in_and_fan_out(layer.weight)
    assert fan_in_and_fan_out(layer.weight.shape) == expected


def test_fan_modes():
    assert fan((64, 32, 3, 3), "fan_in") == 32 * 9
    assert fan((64, 32, 3, 3), "fan_out") == 64 * 9
    assert fan((64, 32, 3, 3), "fan_avg") == (32 + 64) * 9 / 2


@pytest.mark.parametrize("shape", [(), (7,)])
def test_fans_need_two_dimensions(shape):
    with pytest.raises(ShapeError, match="at least 2 dimensions"):
        fan_in_and_fan_out(shape)


@pytest.mark.parametrize(
    "nonlinearity,param",
    [
        ("linear", None),
        ("conv1d", None),
        ("conv2d", None),
        ("conv3d", None),
        ("conv_transpose2d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("leaky_relu", 1),
        ("selu", None),
    ],
)
def test_gains_equal_torch(nonlinearity, param):
    assert calculate_gain(nonlinearity, param) == nn_init.calculate_gain(nonlinearity, param)


def test_named_gains():
    assert calculate_gain("tanh") == 5.0 / 3
    assert calculate_gain("relu") == math.sqrt(2)
    assert calculate_gain("selu") == 0.75


@pytest.mark.parametrize("name,fn", [("gelu", nn.GELU()), ("elu", nn.ELU()), ("silu", nn.SiLU())])
def test_documented_gains_preserve_second_moment(name, fn):
    """gain = 1/sqrt(E[phi(z)^2]): a gained unit-variance input keeps unit second moment."""
    z = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    second_moment = fn(z).pow(2).mean().item()
    assert VARIANCE_PRESERVING_GAINS[name] == pytest.approx(1 / math.sqrt(second_moment), rel=2e-3)
    assert calculate_gain(name) == VARIANCE_PRESERVING_GAINS[name]


def test_unknown_nonlinearity():
    with pytest.raises(ValueError, match="unsupported nonlinearity 'softplus'"):
        calculate_gain("softplus")
