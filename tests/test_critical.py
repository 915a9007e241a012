"""The order-to-chaos line: fixed points, chi_1, depth scales and phases against closed
forms, an independent scipy computation and the recursions themselves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from weightinit_cli import activations, meanfield
from weightinit_cli.errors import WinitError

TANH_B2 = 0.05  # Schoenholz et al. 2017, Fig. 1: the critical sigma_w^2 is about 1.76 here


def act_dfn(name, slope=0.01):
    return activations.sloped(activations.get_activation(name).derivative, slope)


def act_ddfn(name, slope=0.01):
    return activations.sloped(activations.get_activation(name).second_derivative, slope)


@pytest.fixture(scope="module")
def tanh_crit() -> float:
    return meanfield.critical_weight_variance("tanh", TANH_B2)


def _scipy_tanh_critical(b2: float) -> float:
    """sigma_w^2 with chi_1(q*) = 1, straight from the definitions with scipy."""
    from scipy.integrate import quad
    from scipy.optimize import brentq

    def gauss(f, q: float) -> float:
        s = math.sqrt(q)
        return quad(lambda z: f(s * z) * math.exp(-z * z / 2), -np.inf, np.inf, epsabs=1e-13)[
            0
        ] / math.sqrt(2 * math.pi)

    def q_star(w2: float) -> float:
        return brentq(lambda q: w2 * gauss(lambda x: math.tanh(x) ** 2, q) + b2 - q, b2, w2 + b2)

    def chi(w2: float) -> float:
        return w2 * gauss(lambda x: (1 - math.tanh(x) ** 2) ** 2, q_star(w2)) - 1

    return brentq(chi, 1.0, 5.0, xtol=1e-12)


# --- the critical line ------------------------------------------------------------------


def test_tanh_without_bias_is_critical_at_one_with_q_star_zero() -> None:
    w2 = meanfield.critical_weight_variance("tanh", 0.0)
    assert w2 == pytest.approx(1.0, abs=1e-6)
    assert meanfield.fixed_point("tanh", w2, 0.0) == pytest.approx(0.0, abs=1e-6)
    c = meanfield.criticality("tanh", 0.0)
    assert c.critical_weight_var == w2 == c.weight_var
    assert c.q_star == pytest.approx(0.0, abs=1e-6)
    assert c.chi1 == pytest.approx(1.0, abs=1e-6)
    assert c.depth_scale_c == math.inf
    assert c.phase() == "critical"


def test_tanh_with_bias_matches_scipy_and_the_literature(tanh_crit: float) -> None:
    assert tanh_crit == pytest.approx(_scipy_tanh_critical(TANH_B2), rel=1e-6)
    assert tanh_crit == pytest.approx(1.76, abs=0.01)
    # The line moves out with the bias; q* grows along it.
    w01 = meanfield.critical_weight_variance("tanh", 0.1)
    assert w01 == pytest.approx(_scipy_tanh_critical(0.1), rel=1e-6)
    assert 1.0 < tanh_crit < w01
    assert (
        0
        < meanfield.fixed_point("tanh", tanh_crit, TANH_B2)
        < meanfield.fixed_point("tanh", w01, 0.1)
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("relu", 2.0),
        ("linear", 1.0),
        ("elu", 1.0),  # elu'(0) = 1 from both sides, like tanh
        ("leaky_relu", 2 / (1 + 0.2**2)),
        # q* -> 0 where sigma_w^2 E[selu'(0+-)^2] = sigma_w^2 scale^2 (1 + alpha^2) / 2 = 1
        ("selu", 2 / (activations.SELU_SCALE**2 * (1 + activations.SELU_ALPHA**2))),
    ],
)
def test_closed_form_critical_points_without_bias(name: str, expected: float) -> None:
    w2 = meanfield.critical_weight_variance(name, 0.0, negative_slope=0.2)
    assert w2 == pytest.approx(expected, rel=1e-6)


def test_relu_at_two_keeps_any_length() -> None:
    for q0 in (0.3, 1.0, 7.0):
        assert meanfield.fixed_point("relu", 2.0, 0.0, q0=q0) == pytest.approx(q0, rel=1e-12)
    c = meanfield.criticality("relu", 0.0)
    assert c.critical_weight_var == 2.0
    assert c.q_star == pytest.approx(1.0)
    assert c.chi1 == pytest.approx(1.0, rel=1e-12)


def test_no_transition_is_a_user_error() -> None:
    with pytest.raises(WinitError, match="chi_1 stays below 1"):
        meanfield.critical_weight_variance("sigmoid", 0.0)
    # silu from q0 = 1 jumps from q* = 0 (chi_1 = sigma_w^2 / 4 < 1) straight to q* = inf.
    with pytest.raises(WinitError, match="jumps"):
        meanfield.critical_weight_variance("silu", 0.0)
    with pytest.raises(WinitError, match="unknown activation"):
        meanfield.criticality("swish", 0.0)
    # At a given sigma_w^2 the state is still reported.
    c = meanfield.criticality("sigmoid", 0.0, weight_var=4.0)
    assert math.isnan(c.critical_weight_var)
    assert c.phase() == "ordered"


# --- fixed points --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "w2", "b2"),
    [("tanh", 1.0, 0.05), ("tanh", 1.76, 0.05), ("tanh", 3.0, 0.1), ("relu", 1.5, 0.1)]
    + [("selu", 1.0, 0.0), ("elu", 1.2, 0.05), ("gelu", 1.5, 0.3), ("sigmoid", 2.0, 0.0)],
)
def test_fixed_point_agrees_with_iterating_predict_signal(name: str, w2: float, b2: float) -> None:
    q = meanfield.fixed_point(name, w2, b2)
    n = 300
    # predict_signal's q_1 = w2 * m0 + b2; any m0 flows to the same q*.
    preds = meanfield.predict_signal([w2] * n, [b2] * n, [name] * n, 1.0)
    assert preds[-1].q == pytest.approx(q, rel=1e-10)
    m = activations.gaussian_moments(name, q)[1]
    assert w2 * m + b2 == pytest.approx(q, rel=1e-12)


def test_fixed_point_edge_cases() -> None:
    assert meanfield.fixed_point("relu", 1.0, 0.0) == 0.0  # collapses
    assert meanfield.fixed_point("relu", 3.0, 0.0) == math.inf  # explodes
    assert meanfield.fixed_point("relu", 2.0, 0.1) == math.inf  # grows linearly
    assert meanfield.fixed_point("relu", 1.5, 0.1) == pytest.approx(0.1 / (1 - 0.75), rel=1e-12)
    assert meanfield.fixed_point("linear", 0.5, 0.2) == pytest.approx(0.4, rel=1e-12)
    assert meanfield.fixed_point("tanh", 0.9, 0.0) == 0.0
    assert meanfield.fixed_point("tanh", 1.0, 0.0) == 0.0  # q_l ~ 1/(2l): slow, but to 0
    # Just above 1 the small-q expansion E[tanh^2] = q - 2q^2 + ... gives q* ~ (w2 - 1) / 2.
    q = meanfield.fixed_point("tanh", 1.001, 0.0)
    assert q == pytest.approx(0.001 / 2, rel=0.01)
    assert 1.001 * activations.gaussian_moments("tanh", q)[1] == pytest.approx(q, rel=1e-12)
    assert meanfield.fixed_point("tanh", 1.5, 0.0, q0=0.0) == 0.0  # the unstable fixed point
    with pytest.raises(ValueError, match="bias_var"):
        meanfield.fixed_point("tanh", 1.0, -0.1)


# --- chi_1, chi_q and the correlation map --------------------------------------------------


def test_chi1_limits_and_closed_forms() -> None:
    assert meanfield.chi1("relu", 3.0, 0.7) == pytest.approx(1.5, rel=1e-12)
    assert meanfield.chi1("relu", 3.0, 0.0) == pytest.approx(1.5, rel=1e-12)  # q -> 0+ limit
    assert meanfield.chi1("relu", 3.0, math.inf) == pytest.approx(1.5, rel=1e-12)
    assert meanfield.chi1("tanh", 0.8, 0.0) == pytest.approx(0.8, rel=1e-12)
    assert meanfield.chi1("tanh", 2.0, math.inf) == pytest.approx(0.0, abs=1e-12)
    assert meanfield.chi1("linear", 1.3, 5.0) == pytest.approx(1.3, rel=1e-12)


@pytest.mark.parametrize(
    ("name", "w2", "b2", "rel"),
    [("tanh", 1.2, 0.05, 1e-4), ("tanh", 1.76, 0.05, 1e-4), ("tanh", 3.0, 0.05, 1e-4)]
    + [("sigmoid", 4.0, 0.1, 1e-4), ("selu", 1.0, 0.0, 1e-3), ("relu", 1.5, 0.1, 1e-3)],
)
def test_chi1_is_the_slope_of_the_correlation_map_at_one(
    name: str, w2: float, b2: float, rel: float
) -> None:
    q = meanfield.fixed_point(name, w2, b2)
    assert meanfield.correlation_map(name, w2, b2, q, 1.0) == pytest.approx(1.0, rel=1e-12)
    h = 1e-6  # kinked activations add a (1 - c)^(3/2) term, so keep h small
    slope = (1.0 - meanfield.correlation_map(name, w2, b2, q, 1.0 - h)) / h
    assert slope == pytest.approx(meanfield.chi1(name, w2, q), rel=rel)


@pytest.mark.parametrize("c", [-0.9, -0.3, 0.0, 0.5, 0.99])
def test_correlation_map_closed_forms(c: float) -> None:
    # relu (Cho & Saul arc-cosine kernel): E[relu(u1) relu(u2)] = q (s + (pi - acos c) c) / 2pi.
    q, w2, b2 = 0.7, 1.5, 0.1
    s = math.sqrt(1 - c * c)
    expected = (w2 * q * (s + (math.pi - math.acos(c)) * c) / (2 * math.pi) + b2) / q
    assert meanfield.correlation_map("relu", w2, b2, q, c) == pytest.approx(expected, rel=1e-12)
    # tanh is odd: without bias, c = 0 maps to 0 and the map is odd in c.
    assert meanfield.correlation_map("tanh", 2.0, 0.0, 0.6, 0.0) == pytest.approx(0.0, abs=1e-15)
    plus = meanfield.correlation_map("tanh", 2.0, 0.0, 0.6, c)
    assert meanfield.correlation_map("tanh", 2.0, 0.0, 0.6, -c) == pytest.approx(-plus, rel=1e-12)
    # Independent inputs: E[phi(u1) phi(u2)] = E[phi]^2.
    mean = activations.gaussian_moments("gelu", 0.6)[0]
    assert meanfield.correlation_map("gelu", 1.0, 0.0, 0.6, 0.0) == pytest.approx(
        mean**2 / 0.6, rel=1e-12
    )
    with pytest.raises(ValueError, match="q\\* > 0"):
        meanfield.correlation_map("tanh", 1.0, 0.0, 0.0, c)


NONLINEAR = [a for a in activations.ACTIVATIONS if a != "linear"]


@pytest.mark.parametrize("name", activations.ACTIVATIONS)
def test_second_derivatives_match_finite_differences(name: str) -> None:
    x = np.concatenate([np.linspace(-6, -0.01, 300), np.linspace(0.01, 6, 300)])
    h = 1e-5
    d = act_dfn(name, 0.2)
    numeric = (d(x + h) - d(x - h)) / (2 * h)
    ours = act_ddfn(name, 0.2)(x)
    np.testing.assert_allclose(ours, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NONLINEAR)
def test_chi_q_is_the_slope_of_the_length_map(name: str) -> None:
    w2, b2, q = 1.3, 0.05, 0.8

    def length(x: float) -> float:
        return w2 * activations.gaussian_moments(name, x, 0.2)[1] + b2

    h = 1e-5
    slope = (length(q + h) - length(q - h)) / (2 * h)
    assert meanfield.chi_q(name, w2, q, 0.2) == pytest.approx(slope, rel=1e-7)


# --- depth scales --------------------------------------------------------------------------


def test_depth_scale_c_diverges_at_the_line(tanh_crit: float) -> None:
    for f in (0.999, 1.001):
        c = meanfield.criticality("tanh", TANH_B2, weight_var=tanh_crit * f)
        assert c.depth_scale_c > 100
    for f in (0.5, 2.5):
        assert meanfield.criticality("tanh", TANH_B2, tanh_crit * f).depth_scale_c < 10
    near = meanfield.criticality("tanh", TANH_B2, tanh_crit * 0.99).depth_scale_c
    nearer = meanfield.criticality("tanh", TANH_B2, tanh_crit * 0.999).depth_scale_c
    assert nearer > 5 * near
    assert meanfield.criticality("tanh", TANH_B2).depth_scale_c == math.inf
    assert meanfield.depth_scale(1.0) == math.inf
    assert meanfield.depth_scale(math.exp(-0.5)) == pytest.approx(2.0)
    assert math.isnan(meanfield.depth_scale(1.5))


def _log_slope(errors: list[float]) -> float:
    """Fitted slope of log|error| against layer index, over the geometric tail."""
    pts = [(i, math.log(e)) for i, e in enumerate(errors) if 1e-11 < e < 1e-3]
    assert len(pts) >= 5
    i, y = np.array(pts).T
    return float(np.polyfit(i, y, 1)[0])


@pytest.mark.parametrize(
    ("name", "w2", "b2"),
    [("tanh", 1.7609546, 0.05), ("tanh", 3.0, 0.1), ("relu", 1.5, 0.1), ("selu", 1.0, 0.0)],
)
def test_depth_scale_q_is_the_convergence_rate_of_q(name: str, w2: float, b2: float) -> None:
    c = meanfield.criticality(name, b2, weight_var=w2)
    n = 200
    qs = [p.q for p in meanfield.predict_signal([w2] * n, [b2] * n, [name] * n, 3.0)]
    rate = _log_slope([abs(q - c.q_star) for q in qs])
    assert rate == pytest.approx(-1 / c.depth_scale_q, rel=1e-3)


@pytest.mark.parametrize("factor", [0.7, 1.5])
def test_depth_scale_c_is_the_convergence_rate_of_c(tanh_crit: float, factor: float) -> None:
    w2 = tanh_crit * factor
    c = meanfield.criticality("tanh", TANH_B2, weight_var=w2)
    assert (c.c_star == 1.0) == (factor < 1)
    cs = [c.c_star - 1e-4]
    for _ in range(40):
        cs.append(meanfield.correlation_map("tanh", w2, TANH_B2, c.q_star, cs[-1]))
    rate = _log_slope([abs(x - c.c_star) for x in cs])
    assert rate == pytest.approx(-1 / c.depth_scale_c, rel=2e-3)


# --- phases --------------------------------------------------------------------------------


def test_phases_on_either_side(tanh_crit: float) -> None:
    c = meanfield.criticality("tanh", TANH_B2)
    assert c.phase() == "critical"
    assert meanfield.criticality("tanh", TANH_B2, tanh_crit * 0.8).phase() == "ordered"
    assert meanfield.criticality("tanh", TANH_B2, tanh_crit * 1.005).phase() == "critical"
    assert meanfield.criticality("tanh", TANH_B2, tanh_crit * 1.3).phase() == "chaotic"
    ordered = meanfield.criticality("tanh", TANH_B2, weight_var=1.0)
    assert ordered.critical_weight_var == pytest.approx(tanh_crit)
    assert ordered.phase() == "ordered" and ordered.chi1 < 0.98 and ordered.c_star == 1.0
    chaotic = meanfield.criticality("tanh", TANH_B2, weight_var=3.0)
    assert chaotic.phase() == "chaotic" and chaotic.chi1 > 1.02 and chaotic.c_star < 1
    # relu: below 2 the signal collapses (ordered), above it explodes.
    relu = meanfield.criticality("relu", 0.0, weight_var=3.0)
    assert relu.phase() == "chaotic" and relu.q_star == math.inf
    assert math.isnan(relu.depth_scale_q)
    assert meanfield.criticality("relu", 0.0, weight_var=1.0).phase() == "ordered"
    assert meanfield.phase_of(0.98) == "critical" and meanfield.phase_of(0.97) == "ordered"


def test_winit_critical_command() -> None:
    import json

    from typer.testing import CliRunner

    from weightinit_cli.cli import app

    runner = CliRunner()
    result = runner.invoke(
        app, ["critical", "--activation", "tanh", "--bias-var", "0.05", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["critical"]["critical_weight_var"] == pytest.approx(1.76, abs=0.01)
    phases = [s["weight_var"] < 1.7 for s in data["around"]]
    assert phases == [True, True, False, False, False]
    table = runner.invoke(app, ["critical", "--weight-var", "3"], env={"COLUMNS": "120"})
    assert "σ_w² = 3: chaotic" in table.output and "1.761" in table.output
    bad = runner.invoke(app, ["critical", "--activation", "sigmoid"])
    assert bad.exit_code == 2 and "no order-to-chaos transition" in bad.output
