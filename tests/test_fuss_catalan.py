"""The predicted density of the Jacobian's singular values: the Fuss-Catalan law (Penson &
Życzkowski 2011) has mass 1 and the Fuss-Catalan numbers as moments by quadrature, is
Marchenko-Pastur at s = 1; `winit spectrum` of a linear square Gaussian stack predicts it
and its singular values follow it, an orthogonal one predicts the delta at √c and sits on
it, and every other network gets no density, no "predicted:" line, and its PNG."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from weightinit_cli import fuss_catalan as fc
from weightinit_cli.cli import app
from weightinit_cli.weight_spectra import mp_density

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


def fc_number(s, k):
    """binom((s+1)k, k) / (sk + 1), as a float (independent of fuss_catalan.moment)."""
    return math.comb((s + 1) * k, k) / (s * k + 1)


def on_support(s, points=200_001):
    """x = edge·t^(s+1) on t in [0, 1] and the weights ρ(x) dx/dt: the substitution takes
    ρ's x^(-s/(s+1)) singularity at 0 to a bounded integrand."""
    t = np.linspace(0.0, 1.0, points)
    top = fc.edge(s)
    x = top * t ** (s + 1)
    return t, x, fc.density(x, s) * top * (s + 1) * t**s


def cdf(s):
    t, x, w = on_support(s, 20_001)
    return x, np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * np.diff(t))])


def ks_distance(values, s):
    """sup |empirical CDF − Fuss-Catalan CDF| of `values`."""
    x, c = cdf(s)
    values = np.sort(values)
    f = np.interp(values, x, c)
    i = np.arange(1, len(values) + 1)
    return max((i / len(values) - f).max(), (f - (i - 1) / len(values)).max())


def test_moment_is_the_fuss_catalan_numbers():
    assert [fc.moment(1, k) for k in range(6)] == [1, 1, 2, 5, 14, 42]  # Catalan
    assert [fc.moment(2, k) for k in range(6)] == [1, 1, 3, 12, 55, 273]  # OEIS A001764
    assert [fc.moment(3, k) for k in range(5)] == [1, 1, 4, 22, 140]  # OEIS A002293
    assert fc.edge(1) == 4.0 and fc.edge(2) == 6.75 and fc.edge(4) == 5**5 / 4**4


@pytest.mark.parametrize("s", [1, 2, 3, 4, 8, 32])
def test_the_density_has_mass_one_and_the_fuss_catalan_moments(s):
    t, x, w = on_support(s)
    for k in range(5):
        assert np.trapezoid(w * x**k, t) == pytest.approx(fc_number(s, k), rel=1e-3)
    assert fc.density([-1.0, 0.0, fc.edge(s), fc.edge(s) * 1.01], s).tolist() == [0.0] * 4


def test_order_one_is_marchenko_pastur_at_ratio_one():
    x = np.linspace(0.001, 3.999, 500)
    expected = [mp_density(v, 1.0) for v in x]
    np.testing.assert_allclose(fc.density(x, 1), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fc.density(x, 1), np.sqrt(4 / x - 1) / (2 * np.pi), rtol=1e-9)


@pytest.mark.parametrize(("s", "scale"), [(1, 1.0), (4, 16.0), (12, 1e-3)])
def test_the_density_of_ln_sigma_is_the_same_law(s, scale):
    u = np.linspace(0.5 * math.log(scale * fc.edge(s)) - 60, 0.5 * math.log(scale * fc.edge(s)),
                    400_001)  # fmt: skip
    p = fc.log_singular_density(u, s, scale)
    assert np.trapezoid(p, u) == pytest.approx(1.0, rel=2e-3)  # the tail below is ~e^(-120/s)
    # E[σ²] = c·FC_s(1), E[σ⁴] = c²·FC_s(2)
    assert np.trapezoid(p * np.exp(2 * u), u) == pytest.approx(scale, rel=1e-3)
    assert np.trapezoid(p * np.exp(4 * u), u) == pytest.approx(scale**2 * (s + 1), rel=1e-3)


def spectrum(tmp_path, *sets, width=256, depth=4, inputs=1, input_width=None):
    """`winit spectrum --json` and the table of the same network: (JSON, text, run dir)."""
    args = ["spectrum", "--set", f"model.depth={depth}", "--set", f"model.width={width}",
            "--set", f"model.input_shape=[{input_width or width}]", "--inputs", str(inputs),
            "--runs-dir", str(tmp_path)]  # fmt: skip
    for s in sets:
        args += ["--set", s]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    shown = runner.invoke(app, args, env={"COLUMNS": "100"})
    assert shown.exit_code == 0, shown.output
    run = Path(data["run_dir"])
    assert (run / "spectrum.png").read_bytes().startswith(PNG)
    assert json.loads((run / "summary.json").read_text())["density"] == data["density"]
    return data, shown.output, run


def test_a_linear_gaussian_stack_follows_fuss_catalan(tmp_path):
    # he_normal on a linear net: σ_w² = 2 per layer, c = 2⁴
    data, text, _ = spectrum(tmp_path, "model.activation=linear", "init.method=he_normal")
    density = data["density"]
    assert density["kind"] == "fuss_catalan" and density["s"] == 4
    assert density["scale"] == pytest.approx(16.0, rel=1e-12)
    assert list(data)[-2:] == ["density", "run_dir"]  # after every key there was before
    x = np.asarray(data["singular_values"]) ** 2 / density["scale"]
    assert len(x) == 256
    # one draw of 4 layers of 256: over 30 seeds E[x] has a relative std of 1.6%
    # (√(s(s+1))/n, a sum of the layers' chi-square fluctuations) and E[x²] one of 3.5% with
    # a finite-width bias of +1.4%; the tolerances are ~5 of those stds
    assert x.mean() == pytest.approx(fc.moment(4, 1), rel=0.08)
    assert (x**2).mean() == pytest.approx(fc.moment(4, 2), rel=0.2)
    # the eigenvalues are rigid: their KS distance to the law was at most 0.015 over 30
    # seeds, while the law of the next order down or up is far
    assert ks_distance(x, 4) < 0.04
    assert ks_distance(x, 3) > 0.06 and ks_distance(x, 5) > 0.06
    assert "predicted: λ = σ² = c·x, x Fuss-Catalan of order s = 4, c = 16" in text


def test_a_linear_orthogonal_stack_has_every_singular_value_at_root_c(tmp_path):
    sets = ("model.activation=linear", "init.method=orthogonal", "init.gain=1.1")
    data, text, _ = spectrum(tmp_path, *sets, width=64, depth=6, inputs=2)
    density = data["density"]
    assert density == {"kind": "delta", "s": None, "scale": pytest.approx(1.1**12, rel=1e-12)}
    root = math.sqrt(density["scale"])
    values = np.asarray(data["singular_values"])
    assert len(values) == 2 * 64 and np.abs(values - root).max() < 1e-4
    assert "predicted: every singular value √c = 1.772 (orthogonal linear net)" in text


@pytest.mark.parametrize(
    ("sets", "input_width"),
    [
        (("model.activation=tanh", "init.method=lecun_normal"), None),
        (("model.activation=relu", "init.method=he_normal"), None),
        (("model.activation=tanh",), None),  # orthogonal, but not linear
        (("model.activation=linear", "init.method=lecun_normal"), 32),  # 32 → 64: rectangular
        (("model.activation=linear", "init.method=lsuv"), None),  # rescaled by the data
        (("model.activation=linear", "init.method=uniform"), None),  # U(0, 1): not centred
    ],
)
def test_no_closed_form_no_density(tmp_path, sets, input_width):
    data, text, _ = spectrum(tmp_path, *sets, width=64, input_width=input_width, inputs=2)
    assert data["density"] is None
    assert "predicted:" not in text and "singular values at the output" in text


def test_a_network_that_is_not_a_stack_has_no_density(tmp_path):
    args = ["spectrum", "--layer", "conv2d", "--set", "model.depth=2", "--set",
            "model.width=4", "--set", "model.activation=linear", "--inputs", "2",
            "--runs-dir", str(tmp_path), "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["output"] == "logits" and data["density"] is None
