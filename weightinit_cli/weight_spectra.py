"""The eigenvalue spectra of the weights (random-matrix theory; Martin & Mahoney 2021,
"Implicit self-regularization in deep neural networks", JMLR; their WeightWatcher).

Per weighted layer, W as a matrix (out x in; a conv's kernel flattened to out x in·k...,
where WeightWatcher would take one matrix per kernel position), its N >= M sides and the
M eigenvalues λ of WᵀW (or WWᵀ), the squared singular values:
- spectral norm max λ, and stable rank Σλ / max λ (WeightWatcher's `spectral_norm` and
  `stable_rank`);
- α, the exponent of a power law fitted to the tail λ >= λ_min, as WeightWatcher 0.7.7
  fits it (its WW_powerlaw.WWFit): for each candidate λ_min among the sorted eigenvalues,
  the maximum-likelihood α = 1 + n / Σ ln(λ_i / λ_min) and the Kolmogorov-Smirnov distance
  D between the tail and that law; the λ_min of least D wins. Under 20 eigenvalues
  WeightWatcher switches to another estimator, not this one, and a spike (every λ equal,
  to 1e-3) has no tail: α is None there. α 2 to 6 reads
  as well trained, above 6 as under-trained; random init is Marchenko-Pastur-like (large α);
- against the Marchenko-Pastur law (Marchenko & Pastur 1967): for i.i.d. entries the
  eigenvalues over their mean, x = λ / mean λ, fill [(1 − √y)², (1 + √y)²], y = M / N, with
  density √((x₊ − x)(x − x₋)) / (2π y x). Orthogonal weights put every x at 1: a spike.

Nothing here prints; torch is imported where it is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

FIT_BLOCK_VALUES = 1 << 20  # entries of one block of tails in fit_power_law (8 MB)
SMALL_N = 20  # WeightWatcher's SMALL_N_CUTOFF: below it, its small-sample estimator
SPIKE_WIDTH = 1e-3  # λ / mean λ spread less than this: a spike (orthogonal), no tail to fit
MP_SLACK = 0.05  # x within the bulk edges widened by 5% counts as inside (finite N)


@dataclass(frozen=True)
class PowerLawFit:
    alpha: float
    xmin: float  # λ_min of the tail
    ks_distance: float  # D
    tail: int  # eigenvalues in the tail


def fit_power_law(eigenvalues: Sequence[float]) -> PowerLawFit | None:
    """WeightWatcher's power-law fit (WW_powerlaw.WWFit.fit_power_law_standard), None under
    SMALL_N eigenvalues. Every candidate λ_min at once, in blocks of FIT_BLOCK_VALUES
    entries: the KS distances of all tails are one array operation, not a loop."""
    import numpy as np

    data = np.sort(np.asarray(eigenvalues, dtype=np.float64))
    n_all = len(data)
    if n_all < SMALL_N or data[0] <= 0:
        return None
    logs = np.log(data)
    # the tail sums of log λ for every start i, at once
    tail_logs = np.cumsum(logs[::-1])[::-1][:-1]
    counts = n_all - np.arange(n_all - 1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        alphas = 1 + counts / (tail_logs - counts * logs[:-1])
    distances = np.full(n_all - 1, np.inf)
    offsets = np.arange(n_all)
    rows = max(1, FIT_BLOCK_VALUES // n_all)
    for first in range(0, n_all - 1, rows):
        starts = np.arange(first, min(first + rows, n_all - 1))
        # row r: the tail from starts[r], padded past its end (masked out below)
        index = starts[:, None] + offsets[None, :]
        inside = index < n_all
        ratio = data[np.minimum(index, n_all - 1)] / data[starts, None]
        with np.errstate(over="ignore", invalid="ignore"):
            model = 1 - ratio ** (1 - alphas[starts, None])
        empirical = offsets[None, :] / counts[starts, None]
        gap = np.where(inside, np.abs(model - empirical), 0.0)
        fitted = alphas[starts] > 1  # also False for a NaN α
        distances[starts] = np.where(fitted, gap.max(axis=1), np.inf)
    best = int(np.argmin(distances))  # the first of equal distances, as WeightWatcher's loop
    if not math.isfinite(distances[best]):
        return None
    return PowerLawFit(float(alphas[best]), float(data[best]), float(distances[best]),
                       int(counts[best]))  # fmt: skip


def eigenvalues_of(weight: Any) -> Any:
    """The eigenvalues of WᵀW (or WWᵀ, the smaller) for a weight tensor as an out x rest
    matrix: the squared singular values, sorted ascending (float64, on the CPU). From the
    symmetric Gram matrix's eigenvalues, half the time of an SVD; in float64 the smallest
    lose at most ~1e-16 of the largest (rounding's negatives are zeros)."""
    import torch

    matrix = weight.detach().reshape(weight.shape[0], -1).to("cpu", torch.float64)
    gram = matrix.T @ matrix if matrix.shape[0] >= matrix.shape[1] else matrix @ matrix.T
    return torch.linalg.eigvalsh(gram).clamp_min(0.0)


@dataclass(frozen=True)
class WeightMetrics:
    """WeightWatcher's three numbers for one layer's weights; NaN where undefined (an
    all-zero matrix has none; α needs SMALL_N eigenvalues and no spike)."""

    spectral_norm: float
    stable_rank: float
    alpha: float

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


UNDEFINED = WeightMetrics(math.nan, math.nan, math.nan)


def metrics_of(eigenvalues: Any) -> tuple[WeightMetrics, PowerLawFit | None]:
    """The metrics of sorted eigenvalues (eigenvalues_of), and the power-law fit."""
    top = float(eigenvalues[-1])
    if not top > 0:
        return UNDEFINED, None
    x = eigenvalues / eigenvalues.mean()
    spike = float(x[-1] - x[0]) < SPIKE_WIDTH
    fit = None if spike else fit_power_law(eigenvalues.numpy())
    alpha = math.nan if fit is None else fit.alpha
    return WeightMetrics(top, float(eigenvalues.sum()) / top, alpha), fit


def weight_metrics(weights: Sequence[Any]) -> list[WeightMetrics]:
    """The metrics of each weight tensor (a vector: UNDEFINED), for a log step."""
    return [metrics_of(eigenvalues_of(w))[0] if w.dim() >= 2 else UNDEFINED for w in weights]


def median_metrics(layers: Sequence[WeightMetrics]) -> WeightMetrics:
    """Each metric's median over the layers where it is defined (NaN where none is)."""
    import statistics

    def median(values: list[float]) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return statistics.median(finite) if finite else math.nan

    return WeightMetrics(
        median([m.spectral_norm for m in layers]),
        median([m.stable_rank for m in layers]),
        median([m.alpha for m in layers]),
    )


def mp_edges(ratio: float) -> tuple[float, float]:
    """The Marchenko-Pastur bulk of x = λ / mean λ at aspect ratio y = M / N <= 1."""
    root = math.sqrt(ratio)
    return (1 - root) ** 2, (1 + root) ** 2


def mp_density(x: float, ratio: float) -> float:
    """The Marchenko-Pastur density of x = λ / mean λ at y = M / N (0 outside the bulk)."""
    low, high = mp_edges(ratio)
    if not low < x < high:
        return 0.0
    return math.sqrt((high - x) * (x - low)) / (2 * math.pi * ratio * x)


@dataclass
class LayerSpectrum:
    """One weighted layer's eigenvalue spectrum and what it is measured against."""

    name: str
    shape: tuple[int, ...]
    n: int  # the longer side of W as a matrix
    m: int  # the shorter: the number of eigenvalues
    spectral_norm: float  # max λ
    stable_rank: float  # Σλ / max λ
    alpha: float | None
    alpha_xmin: float | None
    alpha_ks: float | None
    x_min: float  # the smallest and largest λ / mean λ
    x_max: float
    mp_low: float  # the Marchenko-Pastur bulk of λ / mean λ
    mp_high: float
    inside_mp: float  # the fraction of λ / mean λ inside it (edges widened by MP_SLACK)
    eigenvalues: list[float]  # sorted, for the plot and the JSON

    def to_dict(self, with_eigenvalues: bool = True) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["shape"] = list(self.shape)
        if not with_eigenvalues:
            data.pop("eigenvalues")
        return data


def layer_spectrum(name: str, weight: Any) -> LayerSpectrum | None:
    """The spectrum of one weight tensor (None for a vector, or an all-zero matrix)."""
    if weight.dim() < 2:
        return None
    eigenvalues = eigenvalues_of(weight)
    metrics, fit = metrics_of(eigenvalues)
    if not metrics.spectral_norm > 0:
        return None
    m = len(eigenvalues)
    n = max(weight.shape[0], weight[0].numel())
    x = eigenvalues / eigenvalues.mean()
    low, high = mp_edges(m / n)
    inside = float(((x >= low * (1 - MP_SLACK)) & (x <= high * (1 + MP_SLACK))).double().mean())
    return LayerSpectrum(
        name=name,
        shape=tuple(weight.shape),
        n=n,
        m=m,
        spectral_norm=metrics.spectral_norm,
        stable_rank=metrics.stable_rank,
        alpha=None if fit is None else fit.alpha,
        alpha_xmin=None if fit is None else fit.xmin,
        alpha_ks=None if fit is None else fit.ks_distance,
        x_min=float(x[0]),
        x_max=float(x[-1]),
        mp_low=low,
        mp_high=high,
        inside_mp=inside,
        eigenvalues=[float(v) for v in eigenvalues],
    )


def weight_spectra(model: Any, plan: Any) -> list[LayerSpectrum]:
    """Every weighted layer's spectrum, in plan order."""
    out = []
    for layer in plan.weighted:
        weight = getattr(model.get_submodule(layer.name), "weight", None)
        if weight is None:
            continue
        spectrum = layer_spectrum(layer.name, weight)
        if spectrum is not None:
            out.append(spectrum)
    return out


__all__ = [
    "UNDEFINED",
    "LayerSpectrum",
    "PowerLawFit",
    "WeightMetrics",
    "eigenvalues_of",
    "fit_power_law",
    "layer_spectrum",
    "median_metrics",
    "metrics_of",
    "mp_density",
    "mp_edges",
    "weight_metrics",
    "weight_spectra",
]
