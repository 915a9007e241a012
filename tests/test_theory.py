"""Mean-field predictions: quadrature against scipy, activations against torch, and the
recursions against closed forms and a Monte-Carlo network."""

from __future__ import annotations

import math

import numpy as np
import pytest

from weightinit_cli import activations, meanfield
from weightinit_cli.errors import WinitError
from weightinit_cli.fans import VARIANCE_PRESERVING_GAINS, calculate_gain
from weightinit_cli.initspec import expected_std

SLOPE = 0.2  # a leaky_relu slope far enough from 0 to notice if it were ignored
NONLINEAR = [a for a in activations.ACTIVATIONS if a != "linear"]


def act_fn(name, slope=0.01):
    return activations.sloped(activations.get_activation(name).value, slope)


def act_dfn(name, slope=0.01):
    return activations.sloped(activations.get_activation(name).derivative, slope)


def _std_normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


@pytest.mark.parametrize("q", [0.1, 1.0, 4.0])
@pytest.mark.parametrize("name", activations.ACTIVATIONS)
def test_gaussian_moments_match_scipy_quad(name: str, q: float) -> None:
    from scipy.integrate import quad

    f = act_fn(name, SLOPE)

    def integrand(z: float, k: int) -> float:
        pdf = math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        return float(f(np.array(math.sqrt(q) * z))) ** k * pdf

    # Split at the kink (z = 0) so quad itself is accurate for relu-like functions.
    expected = [
        sum(
            quad(integrand, a, b, args=(k,), epsabs=1e-14, epsrel=1e-12, limit=200)[0]
            for a, b in ((-np.inf, 0.0), (0.0, np.inf))
        )
        for k in (1, 2)
    ]
    mean, second = activations.gaussian_moments(name, q, SLOPE)
    assert mean == pytest.approx(expected[0], rel=1e-6, abs=1e-12)
    assert second == pytest.approx(expected[1], rel=1e-6)


@pytest.mark.parametrize("q", [0.1, 1.0, 4.0, 250.0])
def test_relu_closed_form(q: float) -> None:
    mean, second = activations.gaussian_moments("relu", q)
    assert second == pytest.approx(q / 2, rel=1e-12)
    assert mean == pytest.approx(math.sqrt(q / (2 * math.pi)), rel=1e-12)


@pytest.mark.parametrize("q", [0.5, 3.0])
def test_leaky_relu_and_elu_closed_forms(q: float) -> None:
    _, second = activations.gaussian_moments("leaky_relu", q, SLOPE)
    assert second == pytest.approx(q * (1 + SLOPE**2) / 2, rel=1e-12)
    # E[elu(s z)^2] = s^2/2 + e^{2s^2} Phi(-2s) - 2 e^{s^2/2} Phi(-s) + 1/2, with s = sqrt(q).
    s = math.sqrt(q)
    elu2 = (
        q / 2
        + math.exp(2 * q) * _std_normal_cdf(-2 * s)
        - 2 * math.exp(q / 2) * _std_normal_cdf(-s)
        + 0.5
    )
    assert activations.gaussian_moments("elu", q)[1] == pytest.approx(elu2, rel=1e-12)


def test_moments_at_zero_variance_are_the_activation_at_zero() -> None:
    assert activations.gaussian_moments("sigmoid", 0.0) == pytest.approx((0.5, 0.25), rel=1e-14)
    assert activations.gaussian_moments("relu", 0.0) == (0.0, 0.0)


def test_he_keeps_relu_signal_constant() -> None:
    fan_in = 64
    sigma_w2 = fan_in * expected_std("he_normal", (fan_in, fan_in)) ** 2
    assert sigma_w2 == pytest.approx(2.0)
    m0 = 0.85  # q_1 = sigma_w^2 * m0 = 1.7, and He keeps it there
    preds = meanfield.predict_signal([sigma_w2] * 30, [0.0] * 30, ["relu"] * 30, m0)
    for p in preds:
        assert p.q == pytest.approx(1.7, rel=1e-10)
        assert p.post_second_moment == pytest.approx(m0, rel=1e-10)
    assert meanfield.per_layer_decay([p.pre_std for p in preds]) == pytest.approx(1.0, rel=1e-10)


def test_xavier_halves_relu_signal_each_layer() -> None:
    fan = 128
    sigma_w2 = fan * expected_std("xavier_normal", (fan, fan)) ** 2
    assert sigma_w2 == pytest.approx(1.0)
    preds = meanfield.predict_signal([sigma_w2] * 30, [0.0] * 30, ["relu"] * 30, 1.0)
    for i, p in enumerate(preds):
        assert p.q == pytest.approx(0.5**i, rel=1e-10)
    decay = meanfield.per_layer_decay([p.pre_std for p in preds])
    assert decay == pytest.approx(2**-0.5, rel=1e-10)


def test_tanh_at_unit_weight_variance_decays_slowly_to_zero() -> None:
    n = 200
    qs = [p.q for p in meanfield.predict_signal([1.0] * n, [0.0] * n, ["tanh"] * n, 1.0)]
    assert all(b < a for a, b in zip(qs, qs[1:], strict=False))
    # Not geometric: q_l -> 1/(2l), so the per-layer ratio tends to 1.
    assert qs[-1] * 2 * n == pytest.approx(1.0, abs=0.03)
    assert qs[30] / qs[29] > 0.95


def test_linear_preserves_and_bias_adds() -> None:
    preds = meanfield.predict_signal([1.0] * 10, [0.0] * 10, [None] * 10, 2.5)
    assert [p.q for p in preds] == pytest.approx([2.5] * 10, rel=1e-14)
    p = preds[0]
    assert (p.post_mean, p.post_std, p.post_second_moment) == (0.0, p.pre_std, p.q)
    preds = meanfield.predict_signal([1.0] * 3, [0.1] * 3, ["linear"] * 3, 1.0)
    assert [p.q for p in preds] == pytest.approx([1.1, 1.2, 1.3])


def test_post_activation_statistics_of_relu() -> None:
    (p,) = meanfield.predict_signal([2.0], [0.0], ["relu"], 2.0)
    assert p.q == pytest.approx(4.0)
    assert p.pre_std == pytest.approx(2.0)
    assert p.post_mean == pytest.approx(math.sqrt(4 / (2 * math.pi)))
    assert p.post_std == pytest.approx(math.sqrt(2.0 - 4 / (2 * math.pi)))


ACTIVATIONS_VS_TORCH = ["relu", "leaky_relu", "tanh", "sigmoid", "selu", "gelu", "elu", "silu"]


@pytest.mark.parametrize("name", ACTIVATIONS_VS_TORCH)
def test_activations_and_derivatives_match_torch(name: str) -> None:
    import torch
    import torch.nn.functional as F

    grid = np.concatenate([np.linspace(-12, 12, 2001), [0.0, -40.0, 40.0, -800.0, 800.0]])
    x = torch.tensor(grid, dtype=torch.float64, requires_grad=True)
    fn = {
        "relu": F.relu,
        "leaky_relu": lambda t: F.leaky_relu(t, SLOPE),
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "selu": F.selu,
        "gelu": F.gelu,
        "elu": F.elu,
        "silu": F.silu,
    }[name]
    y = fn(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no unused-branch overflow
        ours = act_fn(name, SLOPE)(grid)
        ours_d = act_dfn(name, SLOPE)(grid)
    np.testing.assert_allclose(ours, y.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours_d, dy.numpy(), rtol=1e-6, atol=1e-6)


def test_linear_and_identity_aliases() -> None:
    x = np.linspace(-3, 3, 7)
    for name in ("linear", "identity", None):
        np.testing.assert_array_equal(act_fn(name)(x), x)
        np.testing.assert_array_equal(act_dfn(name)(x), np.ones(7))


def test_unknown_activation_is_a_user_error() -> None:
    with pytest.raises(WinitError, match="unknown activation 'swish'"):
        act_fn("swish")
    with pytest.raises(WinitError):
        meanfield.predict_signal([1.0], [0.0], ["softplus"], 1.0)


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="bias_vars"):
        meanfield.predict_signal([1.0, 1.0], [0.0], ["relu", "relu"], 1.0)
    with pytest.raises(ValueError, match="activations"):
        meanfield.predict_signal([1.0], [0.0], ["relu", "relu"], 1.0)
    with pytest.raises(ValueError, match="weight_vars"):
        meanfield.predict_signal([-1.0], [0.0], ["relu"], 1.0)
    with pytest.raises(ValueError, match="q must be"):
        activations.gaussian_moments("tanh", float("nan"))


@pytest.mark.parametrize("name", ["gelu", "silu", "elu"])
def test_variance_preserving_gains_match_quadrature(name: str) -> None:
    _, second = activations.gaussian_moments(name, 1.0)
    assert VARIANCE_PRESERVING_GAINS[name] == pytest.approx(1 / math.sqrt(second), rel=1e-9)


def test_variance_preserving_rule_gives_torch_gains_for_rectifiers() -> None:
    assert 1 / math.sqrt(activations.gaussian_moments("relu", 1.0)[1]) == pytest.approx(
        math.sqrt(2), rel=1e-12
    )
    second = activations.gaussian_moments("leaky_relu", 1.0, SLOPE)[1]
    assert 1 / math.sqrt(second) == pytest.approx(calculate_gain("leaky_relu", SLOPE), rel=1e-12)


def test_per_layer_decay() -> None:
    assert meanfield.per_layer_decay([1.0, 0.5, 0.25]) == pytest.approx(0.5)
    assert meanfield.per_layer_decay([1.0, 2.0, 8.0]) == pytest.approx(math.sqrt(8))
    assert meanfield.per_layer_decay([1.0, 0.0, 0.0]) == 0.0
    assert meanfield.per_layer_decay([0.0, 1.0]) == 0.0
    assert meanfield.per_layer_decay([3.0]) == 1.0
    assert meanfield.per_layer_decay([]) == 1.0
    assert meanfield.per_layer_decay([1.0, math.inf]) == math.inf


def test_gradient_ratios_closed_forms() -> None:
    n = 12
    # He for relu, backward: fan_out * Var(W) = 2 and E[relu'^2] = 1/2: gradients preserved.
    qs = [p.q for p in meanfield.predict_signal([2.0] * n, [0.0] * n, ["relu"] * n, 1.0)]
    ratios = meanfield.predict_gradient_ratios([2.0] * n, ["relu"] * n, qs)
    assert ratios == pytest.approx([1.0] * n, rel=1e-12)
    # Linear with fan_out * Var(W) = 0.8: each layer back multiplies the variance by 0.8.
    ratios = meanfield.predict_gradient_ratios([0.8] * n, [None] * n, [1.0] * n)
    assert ratios == pytest.approx([0.8 ** (n - 1 - i) for i in range(n)], rel=1e-12)
    # Entry 0 of weight_vars_backward is unused.
    a = meanfield.predict_gradient_ratios([5.0, 1.0, 1.0], ["tanh"] * 3, [1.0] * 3)
    b = meanfield.predict_gradient_ratios([0.0, 1.0, 1.0], ["tanh"] * 3, [1.0] * 3)
    assert a == b
    assert activations.derivative_second_moment("relu", 3.0) == pytest.approx(0.5, rel=1e-12)


def test_monte_carlo_tanh_mlp_matches_predictions() -> None:
    # One width-1000 net scatters by a few % per layer (the samples grow correlated, so the
    # batch averages little); the mean over 8 weight draws stays within 3 % for any seed.
    rng = np.random.default_rng(0)
    width, depth, batch, nets = 1000, 10, 64, 8
    sigma_w2, sigma_b2 = 1.5, 0.05
    x = rng.standard_normal((batch, width))
    q, post, grad = (np.zeros(depth) for _ in range(3))
    for _ in range(nets):
        weights = [rng.normal(0, math.sqrt(sigma_w2 / width), (width, width)) for _ in range(depth)]
        biases = [rng.normal(0, math.sqrt(sigma_b2), width) for _ in range(depth)]
        hs, acts = [], [x]
        for w, b in zip(weights, biases, strict=True):
            hs.append(acts[-1] @ w.T + b)
            acts.append(np.tanh(hs[-1]))
        # Backward: a random gradient at the last pre-activation, pulled back to the first.
        deltas = [rng.standard_normal((batch, width))]
        for i in range(depth - 2, -1, -1):
            deltas.insert(0, (deltas[0] @ weights[i + 1]) * (1 - acts[i + 1] ** 2))
        q += [np.var(h) / nets for h in hs]
        post += [np.std(a) / nets for a in acts[1:]]
        grad += [np.mean(d**2) for d in deltas]

    m0 = float(np.mean(x**2))
    preds = meanfield.predict_signal([sigma_w2] * depth, [sigma_b2] * depth, ["tanh"] * depth, m0)
    assert q == pytest.approx([p.q for p in preds], rel=0.05)
    assert post == pytest.approx([p.post_std for p in preds], rel=0.05)
    ratios = meanfield.predict_gradient_ratios(
        [sigma_w2] * depth, ["tanh"] * depth, [p.q for p in preds]
    )
    assert grad / grad[-1] == pytest.approx(ratios, rel=0.05)
    assert ratios[0] < 0.5  # the prediction is not trivially flat
