"""`winit spectrum` at the terminal: the Jacobian's eigenvalue moments per depth beside
theory, the singular values at the output with their predicted law where one is known,
and what they say about isometry."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text

from . import Column, fitted_table, fmt, literal

# at most this many depth rows: the first, the last and evenly spaced ones between
DEPTH_ROWS = 12


def _rows_shown(depths: list[Any]) -> list[Any]:
    if len(depths) <= DEPTH_ROWS:
        return depths
    step = (len(depths) - 1) / (DEPTH_ROWS - 1)
    picked = sorted({round(i * step) for i in range(DEPTH_ROWS)})
    return [depths[i] for i in picked]


def _na(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else fmt(value, digits)


def spectrum_table(result: Any, width: int) -> Any:
    columns = [
        Column("depth", number=True, justify="right"),
        Column("layer"),
        Column("mean λ", number=True, justify="right"),
        Column("theory", number=True, justify="right"),
        Column("σ²/m1²", number=True, justify="right"),
        Column("theory", number=True, justify="right"),
    ]
    rows = [
        [str(d.depth), d.layer, fmt(d.mean, 4), _na(d.mean_theory), fmt(d.variance, 4),
         _na(d.variance_theory)]
        for d in _rows_shown(result.depths)
    ]  # fmt: skip
    title = "eigenvalues λ of JᵀJ (squared singular values), mean over inputs"
    return fitted_table(columns, rows, width, title=title, header_style="bold", box=None)


def weights_table(layers: list[Any], width: int) -> Any:
    """Per weighted layer: the eigenvalues of WᵀW against Marchenko-Pastur, and the
    WeightWatcher metrics."""
    columns = [
        Column("layer"),
        Column("N×M", justify="right"),
        Column("λ/mean λ", justify="right"),
        Column("MP bulk", justify="right"),
        Column("inside", number=True, justify="right"),
        Column("spectral norm", number=True, justify="right"),
        Column("stable rank", number=True, justify="right"),
        Column("α", number=True, justify="right"),
    ]
    rows = []
    for w in _rows_shown(layers):
        spike = w.x_max - w.x_min < 1e-3
        spread = f"spike at {w.x_min:.3g}" if spike else f"{w.x_min:.3g} .. {w.x_max:.3g}"
        rows.append([
            w.name, f"{w.n}×{w.m}", spread, f"{w.mp_low:.3g} .. {w.mp_high:.3g}",
            f"{100 * w.inside_mp:.0f}%", fmt(w.spectral_norm, 4), fmt(w.stable_rank, 4),
            _na(w.alpha, 3),
        ])  # fmt: skip
    title = "weights: eigenvalues λ of WᵀW against Marchenko-Pastur; WeightWatcher's metrics"
    return fitted_table(columns, rows, width, title=title, header_style="bold", box=None)


def predicted_line(density: Any) -> Text | None:
    """The law spectrum.Density predicts for the singular values at the output."""
    if density is None:
        return None
    if density.kind == "fuss_catalan":
        return Text(
            f"predicted: λ = σ² = c·x, x Fuss-Catalan of order s = {density.s}, c = "
            f"{fmt(density.scale, 4)} (Penson & Życzkowski 2011)"
        )
    root = fmt(density.scale**0.5, 4)
    return Text(f"predicted: every singular value √c = {root} (orthogonal linear net)")


def spectrum_view(result: Any, run_dir: str, width: int) -> Group:
    final = result.final
    head = literal(
        f"{result.name}: Jacobian of the {result.output} w.r.t. the {result.wrt} "
        f"({result.output_dim}x{result.input_dim}), {result.method}"
        + ("" if result.family == result.method else f" ({result.family} weights)")
        + f", {result.activation}, {result.inputs} inputs",
        style="bold",
    )
    values = result.singular_values
    spread = Text(
        f"singular values at the output: min {_na(final.min_singular)}, median "
        f"{fmt(values[len(values) // 2], 4) if values else 'n/a'}, max "
        f"{_na(final.max_singular)} ({result.seconds:.1f} s)"
    )
    files = "summary.json, spectrum.csv, weights.csv, spectrum.png, weights.png"
    wrote = literal(f"wrote {run_dir}/ ({files})", "dim")
    parts: list[Any] = [head, Text(), spectrum_table(result, width), Text(), spread]
    predicted = predicted_line(result.density)
    if predicted is not None:
        parts.append(predicted)
    if result.weights:
        parts += [Text(), weights_table(result.weights, width)]
    return Group(*parts, wrote)
