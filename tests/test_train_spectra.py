"""Weight metrics logged during training (train.weight_spectra): the vectorized power-law
fit against WeightWatcher's loop, the metrics against the spectrum command's, and what
`winit train`, `compare` and `rerun` write and show."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train import invoke, only_run, read_csv

from weightinit_cli import weight_spectra
from weightinit_cli.experiments import initialized, load_dataset
from weightinit_cli.loading import load_config
from weightinit_cli.train import train
from weightinit_cli.weight_spectra import (
    UNDEFINED,
    fit_power_law,
    layer_spectrum,
    median_metrics,
    weight_metrics,
)

# width 32: every hidden layer has over 20 eigenvalues, so α is defined
BASE = ["--depth", "3", "--width", "32"]
SMALL = [*BASE, "--steps", "20", "--set", "train.log_every=10"]
LAYERS = ["dense1", "dense2", "dense3", "head"]


def reference_fit(eigenvalues):
    """WeightWatcher 0.7.7's fit_power_law_standard as its loop: one candidate λ_min at a
    time (the implementation before it was vectorized)."""
    data = np.sort(np.asarray(eigenvalues, dtype=np.float64))
    n_all = len(data)
    if n_all < 20 or data[0] <= 0:
        return None
    best = (math.inf, None)
    for i in range(n_all - 1):
        tail = data[i:]
        n = len(tail)
        with np.errstate(divide="ignore"):  # a tail of equal values: α = inf, as in WW
            alpha = 1 + n / np.sum(np.log(tail / data[i]))
        if not alpha > 1:
            continue
        model = 1 - (tail / data[i]) ** (1 - alpha)
        distance = float(np.max(np.abs(model - np.arange(n) / n)))
        if distance < best[0]:
            best = (distance, (alpha, data[i], distance, n))
    return best[1]


def spectra_of(rows: int, columns: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    gaussian = rng.standard_normal((rows, columns)) / math.sqrt(columns)
    return {
        "marchenko-pastur": np.linalg.svd(gaussian, compute_uv=False) ** 2,
        "heavy tail": rng.pareto(2.5, size=min(rows, columns)) + 1e-3,
        "repeated values": np.repeat(rng.uniform(0.5, 2.0, size=16), 3),
        "exactly twenty": rng.uniform(0.1, 10.0, size=20),
    }


@pytest.mark.parametrize(
    "kind", ["marchenko-pastur", "heavy tail", "repeated values", "exactly twenty"]
)
@pytest.mark.parametrize("block", [weight_spectra.FIT_BLOCK_VALUES, 7, 1])
def test_the_vectorized_fit_is_the_loop(kind: str, block: int, monkeypatch) -> None:
    """Same α, λ_min, distance and tail as the one-candidate-at-a-time loop, whatever the
    block size (rows per block: all, several, one)."""
    monkeypatch.setattr(weight_spectra, "FIT_BLOCK_VALUES", block * 128)
    values = spectra_of(128, 300, seed=len(kind))[kind]
    fit, reference = fit_power_law(values), reference_fit(values)
    assert reference is not None and fit is not None
    assert (fit.alpha, fit.xmin, fit.ks_distance, fit.tail) == pytest.approx(reference, rel=1e-12)


def test_too_few_or_non_positive_eigenvalues_have_no_fit() -> None:
    assert fit_power_law(np.linspace(1, 2, 19)) is None
    assert fit_power_law(np.r_[0.0, np.linspace(1, 2, 30)]) is None


def test_the_logged_metrics_are_the_spectrum_commands() -> None:
    """weight_metrics (logged per step) and layer_spectrum (winit spectrum) are one code
    path: the same numbers for a dense and a conv weight; a vector and zeros have none."""
    torch.manual_seed(0)
    weights = [torch.randn(64, 48), torch.randn(32, 8, 3, 3), torch.zeros(4), torch.zeros(8, 8)]
    metrics = weight_metrics(weights)
    for weight, logged in zip(weights[:2], metrics[:2], strict=True):
        spectrum = layer_spectrum("w", weight)
        assert spectrum.alpha is not None
        assert (logged.spectral_norm, logged.stable_rank, logged.alpha) == (
            spectrum.spectral_norm,
            spectrum.stable_rank,
            spectrum.alpha,
        )
        assert logged.spectral_norm == pytest.approx(
            float(torch.linalg.matrix_norm(weight.reshape(len(weight), -1).double(), 2)) ** 2
        )
    assert metrics[2] is UNDEFINED and metrics[3] is UNDEFINED
    assert all(math.isnan(v) for v in UNDEFINED.to_dict().values())


def test_the_median_skips_undefined_layers() -> None:
    a = weight_spectra.WeightMetrics(1.0, 10.0, math.nan)
    b = weight_spectra.WeightMetrics(3.0, 20.0, 4.0)
    c = weight_spectra.WeightMetrics(2.0, 30.0, 6.0)
    median = median_metrics([a, b, c, UNDEFINED])
    assert (median.spectral_norm, median.stable_rank, median.alpha) == (2.0, 20.0, 5.0)
    assert all(math.isnan(v) for v in median_metrics([UNDEFINED]).to_dict().values())


def numbers(layers) -> list[dict]:
    """Metrics as comparable data (NaN as None: NaN equals nothing)."""
    return [{k: None if math.isnan(v) else v for k, v in m.to_dict().items()} for m in layers]


def test_each_log_point_holds_the_metrics_of_the_weights_then() -> None:
    """Step 0 is the init's weights, the last point the trained ones, one entry per layer."""
    cfg = load_config(None, ["model.depth=3", "model.width=32", "train.steps=20"], "train")
    data = load_dataset(cfg)
    model, _ = initialized(cfg, cfg.init.spec, data)
    weights = [model.get_submodule(layer.name).weight for layer in cfg.model.plan.weighted]
    at_init = weight_metrics([w.detach().clone() for w in weights])
    history = train(model, data, cfg.train, cfg.model.plan, seed=cfg.seed)
    assert numbers(history.history[0].layer_weights) == numbers(at_init)
    assert numbers(history.history[-1].layer_weights) == numbers(weight_metrics(weights))
    assert numbers(history.history[-1].layer_weights) != numbers(at_init)  # training moved them
    assert all(len(p.layer_weights) == len(weights) for p in history.history)
    off = cfg.model_copy(update={"train": cfg.train.model_copy(update={"weight_spectra": False})})
    model, _ = initialized(off, off.init.spec, data)
    quiet = train(model, data, off.train, off.model.plan, seed=off.seed)
    assert all(p.layer_weights == [] for p in quiet.history)
    assert [p.loss for p in quiet.history] == [p.loss for p in history.history]


def test_train_writes_the_metrics_in_every_file(runs: Path) -> None:
    result = invoke("train", *SMALL, "--json")
    assert result.exit_code == 0, result.output
    run = only_run(runs)
    metrics = read_csv(run / "metrics.csv")
    for metric in ("spectral_norm", "stable_rank", "alpha"):
        assert [f"{metric}_{name}" in metrics[0] for name in LAYERS] == [True] * 4
    history = json.loads(result.stdout)["history"]
    assert [p["step"] for p in history] == [int(r["step"]) for r in metrics] == [0, 10, 20]
    for point, row in zip(history, metrics, strict=True):
        for name in LAYERS:
            for metric, value in point["weights"][name].items():
                cell = row[f"{metric}_{name}"]
                assert (cell == "") if value is None else float(cell) == pytest.approx(value)
    assert float(metrics[0]["alpha_dense2"]) > 1  # 32 eigenvalues: fitted
    assert metrics[0]["alpha_head"] == ""  # 2 eigenvalues: too few, an empty cell
    layers = read_csv(run / "layers.csv")
    for row in layers:
        at = metrics[0] if row["when"] == "init" else metrics[-1]
        for metric in ("spectral_norm", "stable_rank", "alpha"):
            assert row[metric] == at[f"{metric}_{row['name']}"]
    assert (run / "spectra.png").read_bytes()[:4] == b"\x89PNG"


def test_the_summary_line_names_the_medians(runs: Path) -> None:
    result = invoke("train", *SMALL)
    assert result.exit_code == 0, result.output
    metrics = read_csv(only_run(runs) / "metrics.csv")
    first = float(np.median([float(metrics[0][f"spectral_norm_{n}"]) for n in LAYERS]))
    last = float(np.median([float(metrics[-1][f"spectral_norm_{n}"]) for n in LAYERS]))
    text = " ".join(result.output.split())
    assert "Weights (median over 4 layers, step 0 → 20): " in text
    assert f"spectral norm {first:.3g} → {last:.3g}, stable rank" in text


def test_weight_spectra_false_logs_none(runs: Path) -> None:
    result = invoke("train", *SMALL, "--set", "train.weight_spectra=false")
    assert result.exit_code == 0, result.output
    run = only_run(runs)
    assert not (run / "spectra.png").exists()
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert "spectral_norm" not in header and "alpha" not in header
    assert "spectral_norm" not in (run / "layers.csv").read_text().splitlines()[0]
    assert "Weights" not in result.output
    assert "weight_spectra: false" in (run / "config.yaml").read_text()


def test_default_configs_keep_their_hash_and_yaml(runs: Path) -> None:
    """The field is left out of a config at its default, so runs saved before it rerun
    with the hash they had."""
    result = invoke("train", *SMALL)
    assert result.exit_code == 0, result.output
    assert "weight_spectra" not in (only_run(runs) / "config.yaml").read_text()


def test_zero_weights_have_undefined_metrics(runs: Path) -> None:
    """All-zero weights stay zero under training (no gradient reaches them): no metric."""
    result = invoke("train", *SMALL, "--method", "zeros")
    assert result.exit_code == 0, result.output
    assert "Weights: all zero or undefined at every log step" in " ".join(result.output.split())
    rows = read_csv(only_run(runs) / "metrics.csv")
    cells = {row[f"{m}_{n}"] for row in rows for m in ("spectral_norm", "alpha") for n in LAYERS}
    assert len(rows) == 3 and cells == {""}


def test_compare_logs_per_method(runs: Path) -> None:
    result = invoke("compare", "--methods", "he", "orthogonal", *SMALL)
    assert result.exit_code == 0, result.output
    run = only_run(runs)
    metrics = read_csv(run / "metrics.csv")
    assert {r["method"] for r in metrics} == {"he_normal", "orthogonal"}
    orthogonal = [r for r in metrics if r["method"] == "orthogonal"]
    # orthogonal square weights at init: every singular value the gain's, stable rank = n
    # (to float32's rounding)
    assert float(orthogonal[0]["stable_rank_dense2"]) == pytest.approx(32, rel=1e-5)
    assert orthogonal[0]["alpha_dense2"] == ""  # a spike: no tail to fit
    layers = read_csv(run / "layers.csv")
    for row in layers:
        first = next(r for r in metrics if r["method"] == row["method"])
        assert row["stable_rank"] == first[f"stable_rank_{row['name']}"]
    assert (run / "spectra.png").read_bytes()[:4] == b"\x89PNG"


def test_a_run_saved_before_the_metrics_reruns_identical(runs: Path) -> None:
    """A run directory from a winit that logged no weight metrics: its numbers are
    compared, the new columns listed as not compared."""
    result = invoke("train", *SMALL)
    assert result.exit_code == 0, result.output
    run = only_run(runs)
    for name in ("metrics.csv", "layers.csv"):
        rows = read_csv(run / name)
        kept = [c for c in rows[0] if not c.startswith(("spectral_norm", "stable_rank", "alpha"))]
        with open(run / name, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=kept, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    summary = json.loads((run / "summary.json").read_text())
    for point in summary["history"]:
        del point["weights"]
    (run / "summary.json").write_text(json.dumps(summary, indent=2))
    result = invoke("rerun", str(run), "--json")
    assert result.exit_code == 0, result.output
    match = json.loads(result.stdout)
    assert match["identical"], match
    assert match["added"]["metrics.csv"][:2] == ["spectral_norm_dense1", "spectral_norm_dense2"]
    assert match["added"]["layers.csv"] == ["spectral_norm", "stable_rank", "alpha"]
    assert match["added"]["summary.json"] == ["history.weights"]
    shown = " ".join(invoke("rerun", str(run)).output.split())
    assert "metrics.csv: new in the rerun, not compared: spectral_norm_dense1," in shown
    assert "and 8 more" in shown and "identical: the rerun reproduced every number" in shown
