"""Weight spectra at init: WeightWatcher's spectral norm, stable rank and power-law α to
float precision (the `weightwatcher` package 0.7.7 as reference, required in CI), the
Marchenko-Pastur bulk for i.i.d. weights and a spike for orthogonal ones, and α of a known
power law recovered."""

import logging
import os

import numpy as np
import pytest
import torch
from torch import nn

from weightinit_cli.experiments import load_dataset
from weightinit_cli.loading import load_config
from weightinit_cli.spectrum import spectrum
from weightinit_cli.weight_spectra import fit_power_law, layer_spectrum, mp_density, mp_edges


def reference_weightwatcher():
    try:
        import weightwatcher
    except ImportError:
        if os.environ.get("WINIT_REQUIRE_WEIGHTWATCHER"):
            pytest.fail("WINIT_REQUIRE_WEIGHTWATCHER is set but weightwatcher is not installed")
        pytest.skip("weightwatcher is not installed (pip install weightwatcher==0.7.7)")
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    return weightwatcher


def test_the_metrics_are_weightwatcher_s():
    ww = reference_weightwatcher()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(300, 200), nn.ReLU(), nn.Linear(200, 100), nn.Linear(100, 500))
    with torch.no_grad():  # a heavy-tailed layer too, as training leaves them
        model[2].weight.mul_(torch.distributions.StudentT(2.5).sample(model[2].weight.shape))
    details = ww.WeightWatcher(model=model).analyze(plot=False)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert len(details) == len(linears)
    for (_, row), linear in zip(details.iterrows(), linears, strict=True):
        mine = layer_spectrum("layer", linear.weight)
        assert mine.spectral_norm == pytest.approx(row["spectral_norm"], rel=1e-9)
        assert mine.stable_rank == pytest.approx(row["stable_rank"], rel=1e-9)
        assert mine.alpha == pytest.approx(row["alpha"], rel=1e-6)  # the same fit: to rounding
        assert mine.alpha_xmin == pytest.approx(row["xmin"], rel=1e-6)
        assert mine.alpha_ks == pytest.approx(row["D"], rel=1e-6)


def test_iid_weights_fill_the_marchenko_pastur_bulk_and_orthogonal_ones_are_a_spike():
    torch.manual_seed(0)
    gaussian = layer_spectrum("g", torch.randn(1024, 256))
    low, high = mp_edges(256 / 1024)
    assert (gaussian.mp_low, gaussian.mp_high) == (low, high) == (0.25, 2.25)
    assert gaussian.inside_mp == 1.0
    assert gaussian.x_max == pytest.approx(high, rel=0.05)
    assert gaussian.x_min == pytest.approx(low, rel=0.1)
    orthogonal = layer_spectrum("o", nn.init.orthogonal_(torch.empty(512, 256)))
    assert orthogonal.x_max - orthogonal.x_min < 1e-3 and orthogonal.alpha is None
    grid = np.linspace(low, high, 20001)
    total = np.trapezoid([mp_density(x, 0.25) for x in grid], grid)
    assert total == pytest.approx(1.0, abs=2e-3)  # a density


def test_the_fit_recovers_a_power_law_s_exponent():
    rng = np.random.default_rng(0)
    samples = (1 - rng.random(20000)) ** (-1 / 2.0)  # Pareto: density ∝ x^-3, xmin 1
    fit = fit_power_law(samples)
    assert fit.alpha == pytest.approx(3.0, rel=0.05)
    assert fit_power_law(samples[:10]) is None  # under WeightWatcher's small-N cutoff


def test_spectrum_reports_every_weighted_layer():
    cfg = load_config(None, ["model.depth=4", "model.width=64", "model.input_shape=[64]",
                             "init.method=he_normal"], "spectrum")  # fmt: skip
    result = spectrum(cfg, load_dataset(cfg), 4)
    assert [w.name for w in result.weights] == ["dense1", "dense2", "dense3", "dense4", "head"]
    assert result.to_dict()["weights"][0]["stable_rank"] == result.weights[0].stable_rank
