"""`winit spectrum`: the input-output Jacobian's singular values at init against free
probability (Pennington, Schoenholz & Ganguli 2017, eq. 16): a linear orthogonal net is
exactly isometric, a linear Gaussian one has σ²/m1² = L, tanh and ReLU follow
Σ(μ2/μ1² − 1 − s1), the mean follows Π χ; the layer-by-layer product equals torch.func's
Jacobian; every network gets its logits' spectrum; bad input is one error line."""

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from weightinit_cli.cli import app
from weightinit_cli.experiments import first_batch, initialized, load_dataset
from weightinit_cli.loading import load_config
from weightinit_cli.spectrum import _general_jacobian, _stack_jacobians, spectrum

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def measured(*sets, depth=12, width=256, inputs=32):
    cfg = load_config(None, [f"model.depth={depth}", f"model.width={width}",
                             f"model.input_shape=[{width}]", *sets], "spectrum")  # fmt: skip
    return spectrum(cfg, load_dataset(cfg), inputs)


def test_a_linear_orthogonal_net_is_exactly_isometric():
    result = measured("model.activation=linear")
    assert result.family == "orthogonal" and result.output == "last hidden layer"
    values = torch.tensor(result.singular_values)
    torch.testing.assert_close(values, torch.ones_like(values), rtol=0, atol=1e-4)
    for d in result.depths:
        assert d.mean == pytest.approx(1.0, abs=1e-4) and abs(d.variance) < 1e-4
        # zero up to the quadrature's last bits (E[1] sums its weights: 1 - 1 ulp, say)
        assert d.mean_theory == pytest.approx(1.0) and abs(d.variance_theory) < 1e-12


def test_a_linear_gaussian_net_spreads_as_its_depth():
    result = measured("model.activation=linear", "init.method=lecun_normal", inputs=16)
    for d in result.depths:
        assert d.variance_theory == pytest.approx(d.depth)  # σ²/m1² = L (a Wishart per layer)
        assert d.variance == pytest.approx(d.depth, rel=0.2)
        assert d.mean == pytest.approx(1.0, rel=0.1)  # one draw of 12 layers of 256: ±5%


# (mean, variance) tolerances: one draw of 12 layers of 256 units; orthogonal tanh sits
# within 1-2% of theory, i.i.d. weights and ReLU's zeros fluctuate more at this width
@pytest.mark.parametrize(
    ("sets", "mean_tol", "variance_tol"),
    [
        (["model.activation=tanh"], 0.03, 0.03),  # orthogonal, σ_w² = 1
        (["model.activation=tanh", "init.method=lecun_normal"], 0.15, 0.15),
        (["model.activation=relu", "init.gain=1.4142135623730951"], 0.2, 0.15),  # orthogonal
        (["model.activation=relu", "init.method=he_normal"], 0.3, 0.2),
    ],
)
def test_moments_follow_mean_field_and_free_probability(sets, mean_tol, variance_tol):
    result = measured(*sets)
    for d in result.depths:
        assert d.mean == pytest.approx(d.mean_theory, rel=mean_tol)
        assert d.variance == pytest.approx(d.variance_theory, rel=variance_tol, abs=0.05)


def test_orthogonal_tanh_stays_far_closer_to_isometry_than_gaussian_and_relu_cannot():
    orthogonal = measured("model.activation=tanh").final.variance
    gaussian = measured("model.activation=tanh", "init.method=lecun_normal").final.variance
    relu = measured("model.activation=relu", "init.gain=1.4142135623730951").final.variance
    assert orthogonal < 0.2 * gaussian
    assert relu > 0.8 * 12  # μ2/μ1² = 2 for ReLU: σ²/m1² = L even with orthogonal weights


def test_the_layer_by_layer_product_is_torch_func_s_jacobian():
    sets = ["model.depth=4", "model.width=32", "model.input_shape=[32]", "model.activation=tanh",
            "init.method=he_normal"]  # fmt: skip
    cfg = load_config(None, sets, "spectrum")
    data = load_dataset(cfg)
    model, _ = initialized(cfg, cfg.init.spec, data)
    x, _ = first_batch(data, 8, "cpu")
    with torch.no_grad():
        product = _stack_jacobians(model, cfg.model.plan, x)
    assert [name for name, _ in product] == ["dense1", "dense2", "dense3", "dense4"]
    hidden = torch.nn.Sequential(*list(model.children())[:-1])  # up to the last activation
    exact = _general_jacobian(hidden, x, embedded=False)
    torch.testing.assert_close(product[-1][1], exact, rtol=1e-5, atol=1e-6)


def test_other_networks_get_their_logits_spectrum(monkeypatch):
    monkeypatch.chdir(ROOT)
    conv = load_config(None, ["model.depth=3", "model.width=8"], "spectrum", layer="conv2d")
    result = spectrum(conv, load_dataset(conv), 4)
    assert result.output == "logits" and result.input_dim == 256 and result.output_dim == 3
    assert result.final.mean_theory is None and len(result.singular_values) == 4 * 3
    transformer = load_config(None, ["model.depth=1"], "spectrum", layer="transformer")
    result = spectrum(transformer, load_dataset(transformer), 4)
    assert result.wrt == "embedding" and result.input_dim == 16 * 64
    module = load_config(None, ["model.module=tests/user_models.py:TinyMLP",
                                "data.name=spirals"], "spectrum")  # fmt: skip
    assert spectrum(module, load_dataset(module), 8).output_dim == 3


def test_spectrum_through_the_cli(tmp_path):
    args = ["spectrum", "--set", "model.depth=6", "--set", "model.width=64", "--set",
            "model.input_shape=[64]", "--inputs", "8", "--runs-dir", str(tmp_path)]  # fmt: skip
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["depths"]) == 6 and len(data["singular_values"]) == 8 * 64
    run = Path(data["run_dir"])
    assert {"summary.json", "spectrum.csv", "spectrum.png", "config.yaml"} <= {
        p.name for p in run.iterdir()
    }
    shown = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert shown.exit_code == 0 and "σ²/m1²" in shown.output
    assert all(len(line) <= 80 for line in shown.output.splitlines())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--inputs", "0"], "Invalid value for '--inputs'"),
        (["--inputs", "5000"], "--inputs: between 1 and 4,096; got 5000"),
        (
            [
                "--set",
                "model.width=20000",
                "--set",
                "model.input_shape=[20000]",
                "--set",
                "model.depth=2",
            ],
            "input values is over 200,000,000 Jacobian entries",
        ),
        (
            [
                "--model",
                "tests/user_models.py:TinyMLP",
                "--model-arg",
                "features=16",
                "--model-arg",
                "num_classes=8",
                "--set",
                "data.name=pointer",
            ],
            "data.name: pointer gives token ids",
        ),
    ],
)
def test_bad_input_is_one_error_line(args, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["spectrum", *args, "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert expected in result.output and len(result.output.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())
