"""matplotlib PNGs of winit's results (object API on the Agg canvas, no pyplot state)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .experiments import CompareResult
    from .probe import LayerStats
    from .spp import SppLayer
    from .train import TrainHistory


def _shown(text: object) -> str:
    """User text (a name, a grid value) for a figure, drawn as it is: control characters
    escaped (render.printable; an undecodable file-name byte would crash the font code)
    and `$` escaped, which matplotlib would otherwise read as the start of math."""
    from .printable import printable

    return printable(text).replace("$", r"\$")


# Fixed margins for the two-panel figures every `winit train` and `stats --out` writes:
# constrained layout measures every label first and costs more than drawing (~0.4 s).
TWO_PANELS = {"left": 0.085, "right": 0.985, "bottom": 0.14, "top": 0.86, "wspace": 0.3}


def _figure(
    ncols: int,
    width: float = 5.0,
    height: float = 3.6,
    margins: dict[str, float] | None = None,
) -> Figure:
    """A figure on the Agg canvas: constrained layout, or `margins` (subplots_adjust)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout=None if margins else "constrained")
    if margins:
        fig.subplots_adjust(**margins)
    FigureCanvasAgg(fig)
    return fig


def _positive(values: Sequence[float | None]) -> list[float]:
    """Values for a log axis: non-positive and missing ones become NaN (gaps)."""
    return [v if v is not None and v > 0 else float("nan") for v in values]


def png_bytes(fig: Figure) -> bytes:
    """The PNG bytes of a figure (the caller writes them atomically)."""
    import io
    import warnings

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # a character of a name that the font lacks is drawn as a box, not a warning per glyph
        warnings.filterwarnings("ignore", "Glyph .* missing from", UserWarning)
        fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _profile_axes(act_ax, grad_ax, profiles: dict[str, Sequence[LayerStats]]) -> None:
    """Activation std (measured, and theory dashed) and weight-gradient std against depth,
    on log axes. A zero cannot sit on a log axis: zeros are drawn at the axis floor as
    downward triangles, and a method that is 0 at every layer says so in the legend."""
    series: dict[str, list[tuple[str, list[int], list[float]]]] = {"act": [], "grad": []}
    for label, layers in profiles.items():
        depth = [layer.index for layer in layers]
        series["act"].append((label, depth, [x.activation.std for x in layers]))
        series["grad"].append((label, depth, [x.grad.std for x in layers]))
    for ax, key, name in (
        (act_ax, "act", "activation std"),
        (grad_ax, "grad", "weight-gradient std"),
    ):
        positive = [v for _, _, values in series[key] for v in values if v is not None and v > 0]
        floor = min(positive) / 10 if positive else 1.0
        for i, (label, depth, values) in enumerate(series[key]):
            colour = f"C{i}"
            suffix = " measured" if key == "act" else ""
            if not any(v is not None and v > 0 for v in values):
                ax.plot(
                    depth,
                    [floor] * len(depth),
                    "v:",
                    color=colour,
                    markersize=4,
                    label=_shown(f"{label}{suffix}: 0 at every layer"),
                )
                continue
            ax.plot(
                depth,
                _positive(values),
                "o-",
                color=colour,
                markersize=3,
                label=_shown(f"{label}{suffix}"),
            )
            zeros = [d for d, v in zip(depth, values, strict=True) if v == 0]
            if zeros:
                ax.plot(zeros, [floor] * len(zeros), "v", color=colour, markersize=4)
        if key == "act":
            for i, (label, layers) in enumerate(profiles.items()):
                predicted = [x.predicted_activation_std for x in layers]
                if any(p is not None and p > 0 for p in predicted):
                    ax.plot(
                        [x.index for x in layers],
                        _positive(predicted),
                        "--",
                        color=f"C{i}",
                        alpha=0.7,
                        label=_shown(f"{label} theory"),
                    )
        ax.set_yscale("log")
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(_integer_ticks())
        ax.set_ylabel(name)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


@dataclass
class Chart:
    """A figure to draw, as data: `kind` names the function here that draws it, `data`
    holds its arguments (per-layer statistics, training histories, series)."""

    kind: str  # std_profiles | loss_curves | steps_against | spread_against | spp_plot
    # | stream_profiles | transfer_figure | spectrum_figure
    data: dict[str, Any]


def chart_figures(charts: dict[str, Chart]) -> dict[str, Figure]:
    """Charts (file name -> Chart), drawn."""
    drawers = {
        "std_profiles": std_profiles,
        "loss_curves": loss_curves,
        "steps_against": steps_against,
        "spread_against": spread_against,
        "spp_plot": spp_plot,
        "stream_profiles": stream_profiles,
        "transfer_figure": transfer_figure,
        "spectrum_figure": spectrum_figure,
    }
    return {name: drawers[chart.kind](**chart.data) for name, chart in charts.items()}


def std_profiles(profiles: dict[str, Sequence[LayerStats]], title: str = "") -> Figure:
    """Activation std (measured, and theory dashed) and gradient std against depth."""
    fig = _figure(2, margins=TWO_PANELS)
    _profile_axes(*fig.subplots(1, 2), profiles)
    if title:
        fig.suptitle(_shown(title))
    return fig


def _loss_axes(loss_ax, acc_ax, histories: dict[str, TrainHistory]) -> None:
    for i, (label, history) in enumerate(histories.items()):
        steps = [p.step for p in history.history]
        status = "" if history.status == "completed" else f" ({history.status})"
        loss_ax.plot(
            steps,
            _positive([p.loss for p in history.history]),
            color=f"C{i}",
            label=_shown(f"{label}{status}"),
        )
        accuracy = [p.accuracy for p in history.history]
        acc_ax.plot(steps, accuracy, color=f"C{i}", label=_shown(label))
        if history.diverged_at is not None:
            loss_ax.axvline(history.diverged_at, color=f"C{i}", linestyle=":", alpha=0.7)
    if histories:
        first = next(iter(histories.values()))
        loss_ax.axhline(
            first.target_loss, color="grey", linestyle="--", linewidth=0.8, label="target"
        )
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("training loss")
    acc_ax.set_ylabel("held-out accuracy")
    acc_ax.set_ylim(0, 1.02)
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("step")
        ax.grid(True, which="both", alpha=0.3)
        if histories:
            ax.legend(fontsize=7)


def loss_curves(histories: dict[str, TrainHistory], title: str = "") -> Figure:
    """Training loss (log scale) and held-out accuracy against step, one line per method."""
    fig = _figure(2, margins=TWO_PANELS)
    _loss_axes(*fig.subplots(1, 2), histories)
    if title:
        fig.suptitle(_shown(title))
    return fig


def compare_figure(result: CompareResult) -> Figure:
    """compare.png: loss curves, then activation and gradient std against depth per method."""
    histories = {run.method: run.train for run in result.runs if run.train is not None}
    profiles = {run.method: run.stats.layers for run in result.runs}
    fig = _figure(2, height=3.4)
    fig.set_figheight(7.0)
    top, bottom = fig.subfigures(2, 1)
    _loss_axes(*top.subplots(1, 2), histories)
    act_ax, grad_ax = bottom.subplots(1, 2)
    _profile_axes(act_ax, grad_ax, profiles)
    fig.suptitle(_shown(f"{result.name}: " + ", ".join(profiles)))
    return fig


def steps_against(
    xs: Sequence[float],
    series: dict[str, Sequence[float | None]],
    x_label: str,
    ceiling: float,
    title: str = "",
) -> Figure:
    """Steps to the target loss against a swept quantity (log-log), one line per init;
    a run that never reached the target is drawn as an x at `ceiling`."""
    fig = _figure(1, width=5.5)
    ax = fig.subplots()
    for i, (label, ys) in enumerate(series.items()):
        shown = [y if y is not None else ceiling for y in ys]
        ax.plot(xs, shown, "-", color=f"C{i}", label=_shown(label))
        for x, y in zip(xs, ys, strict=True):
            ax.plot(
                x,
                y if y is not None else ceiling,
                "o" if y is not None else "x",
                color=f"C{i}",
                markersize=7,
            )
    ax.axhline(ceiling, color="grey", linestyle=":", linewidth=0.8)
    ax.annotate(
        "never reached",
        (xs[0], ceiling),
        textcoords="offset points",
        xytext=(2, 3),
        fontsize=7,
        color="grey",
    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel("steps to target loss")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(_shown(title))
    return fig


def spread_against(
    betas: Sequence[float], spreads: Sequence[float], slope: float, title: str = ""
) -> Figure:
    """Var log |x_L|² against Σ1/n, with the fitted line through the origin."""
    fig = _figure(1, width=5.5)
    ax = fig.subplots()
    ax.plot(betas, spreads, "o", label="measured (one point per architecture)")
    top = max(betas) * 1.05
    ax.plot([0, top], [0, slope * top], "--", color="grey", label=f"slope {slope:.2f}")
    ax.set_xlabel("Σ 1/n (sum of reciprocal widths)")
    ax.set_ylabel("Var log |x_L|² over random inits")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(_shown(title))
    return fig


def stream_profiles(
    streams: dict[str, Sequence[float]],
    predicted: dict[str, Sequence[float]] | None = None,
    title: str = "",
) -> Figure:
    """A residual stream's E[x²] against block (0: what enters the first block) over its
    value there, log scale, a line per run; `predicted` (run -> a value per point) dashed."""
    fig = _figure(1, width=5.5)
    ax = fig.subplots()
    for i, (label, ys) in enumerate(streams.items()):
        shown = _shown(label)
        ax.plot(range(len(ys)), _positive(ys), "o-", color=f"C{i}", markersize=2, label=shown)
        if predicted and label in predicted:
            line = _positive(predicted[label])
            ax.plot(range(len(line)), line, "--", color=f"C{i}", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("residual block (dashed: theory)")
    ax.set_ylabel("E[x²] of the stream / its input's")
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(_shown(title))
    return fig


SPP_PANELS = {
    "channel_squared_mean": "average channel squared mean",
    "channel_variance": "average channel variance",
    "residual_variance": "residual branch: average channel variance",
}


def spp_plot(
    profiles: dict[str, Sequence[SppLayer]],
    predicted: dict[str, Sequence[float]] | None = None,
    title: str = "",
) -> Figure:
    """Brock et al.'s signal propagation plot: a panel per statistic (the branch's only for
    residual blocks) against depth, a line per method; `predicted` (statistic -> a value
    per row) is drawn dashed."""
    first = next(iter(profiles.values()))
    keys = [k for k in SPP_PANELS if first and hasattr(first[0], k)]
    fig = _figure(len(keys), width=4.2)
    for ax, key in zip(fig.subplots(1, len(keys), squeeze=False)[0], keys, strict=True):
        for i, (label, rows) in enumerate(profiles.items()):
            xs = [row.index for row in rows]
            ys = [getattr(row, key) for row in rows]
            ax.plot(xs, ys, "o-", color=f"C{i}", markersize=3, label=_shown(label))
        if predicted and key in predicted:
            xs = [row.index for row in first]
            ax.plot(xs, predicted[key], "--", color="grey", label="theory")
        ax.set_xlabel("residual block" if len(keys) == 3 else "conv layer")
        ax.xaxis.set_major_locator(_integer_ticks())
        ax.set_title(SPP_PANELS[key], fontsize=9)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(_shown(title))
    return fig


def coord_check_figure(result: Any) -> Figure:
    """`winit coordcheck` (mup's plot_coord_data): one panel per step, width against the
    output size on log-log axes (base 2), a line per module; a failing module dashed."""
    steps = result.steps
    ncols = min(steps, 4)
    nrows = -(-steps // ncols)
    fig = _figure(ncols, width=3.6, height=3.2 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for t in range(nrows * ncols):
        ax = axes[t // ncols][t % ncols]
        if t >= steps:
            ax.set_visible(False)
            continue
        for i, module in enumerate(result.modules):
            ax.plot(
                result.widths,
                _positive(module.sizes[t]),
                "o-" if module.passed else "o--",
                color=f"C{i % 10}",
                markersize=3,
                label=_shown(module.name) if t == 0 else None,
            )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_title(f"t={t + 1}")
        ax.set_xlabel("width")
        if t % ncols == 0:
            ax.set_ylabel(_shown(result.statistic))
        ax.grid(True, which="both", alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=7)
    verdict = "pass" if result.passed else "fail"
    fig.suptitle(
        _shown(f"{result.name}: coordinate check ({result.parametrization}, "
               f"{result.optimizer} lr {result.lr:g}): {verdict}")
    )  # fmt: skip
    return fig


def transfer_figure(result: Any) -> Figure:
    """`winit transfer` (Yang et al. 2021, Fig. 1): mean final training loss against log2
    lr, a line per width, the optimum of each width marked by a star."""
    fig = _figure(1, width=5.6, height=4.0)
    ax = fig.subplots()
    xs = result.log2_lrs
    for i, curve in enumerate(result.curves):
        colour = f"C{i % 10}"
        ys = [
            c.loss if c.loss is not None and c.loss != float("inf") else float("nan")
            for c in curve.cells
        ]
        ax.plot(xs, ys, "o-", color=colour, markersize=3, label=f"width {curve.width}")
        if curve.best is not None:
            ax.plot([xs[curve.best]], [ys[curve.best]], "*", color=colour, markersize=12)
    ax.set_yscale("log")
    ax.set_xlabel("log2 learning rate")
    ax.set_ylabel("final training loss")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    shift = "-" if result.shift is None else result.shift
    ax.set_title(
        _shown(f"{result.name}: lr transfer ({result.parametrization}, {result.optimizer}, "
               f"{result.steps} steps), optimum moves {shift} steps"),
        fontsize=9,
    )  # fmt: skip
    return fig


def _fuss_catalan_histogram(ax: Any, values: list[float], s: int, scale: float) -> None:
    """The singular values σ as a density of ln σ (log-spaced bins) beside the
    Fuss-Catalan law of σ²/scale: p(ln σ) = 2x ρ(x), x = σ²/scale."""
    import numpy as np

    from .fuss_catalan import edge, log_singular_density

    u = np.log(values)
    top = 0.5 * np.log(scale * edge(s))  # the support's upper end in ln σ
    low, high = min(u.min(), top - 2.0), max(u.max(), top)
    bins = np.linspace(low, high, 61)
    weights = np.full(len(u), 1.0 / (len(u) * (bins[1] - bins[0])))
    ax.hist(np.exp(u), bins=np.exp(bins), weights=weights, color="C0", alpha=0.6,
            label="measured")  # fmt: skip
    grid = np.linspace(low - 0.5, top, 600)
    ax.plot(np.exp(grid), log_singular_density(grid, s, scale), "k-", lw=1.2,
            label=f"Fuss-Catalan, s = {s}\n(Penson & Życzkowski 2011)")  # fmt: skip
    # J is float32: an SVD resolves σ only to ε·σ_max, and below that lie rounding's values
    floor = float(np.finfo(np.float32).eps) * max(values)
    if min(values) < floor:
        ax.axvspan(np.exp(grid[0]), floor, color="0.88", zorder=0, label="below ε·σ_max (float32)")
    ax.set_xscale("log")
    ax.set_ylabel("density of ln σ")


def _delta_histogram(ax: Any, values: list[float], scale: float) -> None:
    """The singular values' counts on a window around √scale, with the delta at √scale."""
    import numpy as np

    root = scale**0.5
    low, high = min(min(values), root / 2), max(max(values), root * 2)
    ax.hist(values, bins=np.geomspace(low, high, 61), color="C0", alpha=0.8, label="measured")
    ax.axvline(root, color="C3", lw=1.2, ls="--", label=f"predicted: every σ = √c = {root:.4g}")
    ax.set_xscale("log")
    ax.set_ylabel("count")


def spectrum_figure(result: Any) -> Figure:
    """`winit spectrum` (Pennington et al. 2017, Fig. 2-3): the histogram of the Jacobian's
    singular values at the output, with the predicted law where one is known
    (spectrum.Density), and the eigenvalue moments of JᵀJ against depth with theory
    dashed."""
    fig = _figure(2, width=4.6, height=3.6)
    hist, moments = fig.subplots(1, 2)
    values = [v for v in result.singular_values if v > 0]
    density = result.density
    if values and density is not None and density.kind == "fuss_catalan":
        _fuss_catalan_histogram(hist, values, density.s, density.scale)
    elif values and density is not None and density.kind == "delta":
        _delta_histogram(hist, values, density.scale)
    elif values:
        import numpy as np

        bins = np.geomspace(min(values), max(values), 60) if max(values) > min(values) else 20
        hist.hist(values, bins=bins, color="C0", alpha=0.8)
        hist.set_xscale("log")
    if not values or density is None:
        hist.set_ylabel("count")
    hist.axvline(1.0, color="k", lw=0.8, ls=":")
    hist.set_xlabel("singular value σ of J")
    hist.set_title(_shown(f"at the {result.output} ({result.inputs} inputs)"))
    if values and density is not None:
        hist.legend(fontsize=7, loc="upper left")
    depths = [d.depth for d in result.depths]
    for key, label, colour in (("mean", "mean λ (m1)", "C0"), ("variance", "σ²/m1²", "C1")):
        moments.plot(depths, _positive([getattr(d, key) for d in result.depths]), "o-",
                     color=colour, markersize=3, label=label)  # fmt: skip
        predicted = [getattr(d, f"{key}_theory") for d in result.depths]
        if any(p is not None for p in predicted):
            moments.plot(depths, _positive(predicted), "--", color=colour, label=f"{label} theory")
    moments.set_yscale("log")
    moments.set_xlabel("depth")
    moments.set_title("eigenvalues of JᵀJ")
    moments.grid(True, which="both", alpha=0.3)
    moments.legend(fontsize=7)
    fig.suptitle(_shown(f"{result.name}: Jacobian spectrum ({result.method}, {result.activation})"))
    return fig


def weight_spectra_figure(result: Any) -> Figure:
    """The eigenvalues of WᵀW over their mean for the first, a middle and the last weighted
    layer, with the Marchenko-Pastur density of each one's aspect ratio."""
    import numpy as np

    from .weight_spectra import mp_density

    layers = result.weights
    picked = sorted({0, len(layers) // 2, len(layers) - 1})
    fig = _figure(len(picked), width=3.8, height=3.2)
    axes = fig.subplots(1, len(picked), squeeze=False)[0]
    for ax, index in zip(axes, picked, strict=True):
        layer = layers[index]
        values = np.asarray(layer.eigenvalues)
        x = values / values.mean()
        ax.hist(x, bins=40, density=True, color="C0", alpha=0.7, label="measured")
        ratio = layer.m / layer.n
        grid = np.linspace(layer.mp_low, layer.mp_high, 200)
        ax.plot(grid, [mp_density(g, ratio) for g in grid], "k--", lw=1, label="Marchenko-Pastur")
        ax.set_title(_shown(f"{layer.name} ({layer.n}×{layer.m})"), fontsize=9)
        ax.set_xlabel("λ / mean λ")
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=7)
    fig.suptitle(_shown(f"{result.name}: weight spectra at init ({result.method})"))
    return fig


THREE_PANELS = {"left": 0.06, "right": 0.99, "bottom": 0.14, "top": 0.84, "wspace": 0.28}
# (metric, axis label, log scale) of weight_metrics_figure's panels
WEIGHT_METRIC_AXES = (
    ("spectral_norm", "spectral norm (max λ of WᵀW)", True),
    ("stable_rank", "stable rank (Σλ / max λ)", True),
    ("alpha", "power-law α of the tail", False),
)


def _metric_series(history: TrainHistory, metric: str, layer: int | None) -> list[float]:
    """One metric of one layer (None: the median over the layers) at every log point."""
    from .weight_spectra import median_metrics

    points = [p for p in history.history if p.layer_weights]
    if layer is None:
        return [getattr(median_metrics(p.layer_weights), metric) for p in points]
    return [getattr(p.layer_weights[layer], metric) for p in points]


def weight_metrics_figure(histories: dict[str, TrainHistory], title: str = "") -> Figure:
    """spectra.png: spectral norm, stable rank and α against step. One run: a line per
    layer, coloured by depth (one collection per panel: a deep net's lines draw at the
    cost of one); several (compare): each run's median over its layers."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FormatStrFormatter, LogFormatter

    fig = _figure(3, width=4.2, height=3.4, margins=THREE_PANELS)
    axes = fig.subplots(1, 3)
    handles: list[Any] = []
    if len(histories) == 1:
        ((label, history),) = histories.items()
        steps = [p.step for p in history.history if p.layer_weights]
        names = history.layer_names
        shades = colormaps["viridis"](np.linspace(0, 1, len(names)))
        for ax, (metric, _, log) in zip(axes, WEIGHT_METRIC_AXES, strict=True):
            lines = []
            for layer in range(len(names)):
                values = _metric_series(history, metric, layer)
                lines.append(np.column_stack([steps, _positive(values) if log else values]))
            ax.add_collection(LineCollection(lines, colors=shades, linewidths=1))
            if np.isfinite(np.concatenate(lines)).all(axis=1).any():  # else: nothing to scale
                ax.autoscale_view()
        ends = sorted({0, len(names) - 1})
        handles = [Line2D([], [], color=shades[k], label=_shown(names[k])) for k in ends]
    else:
        for i, (label, history) in enumerate(histories.items()):
            steps = [p.step for p in history.history if p.layer_weights]
            for ax, (metric, _, log) in zip(axes, WEIGHT_METRIC_AXES, strict=True):
                values = _metric_series(history, metric, None)
                ax.plot(steps, _positive(values) if log else values, color=f"C{i}", lw=1)
            handles.append(Line2D([], [], color=f"C{i}", label=_shown(f"{label} (median)")))
    for ax, (_, label, log) in zip(axes, WEIGHT_METRIC_AXES, strict=True):
        if log and 0 < ax.dataLim.y0 < np.inf:  # a log axis needs a value to show
            ax.set_yscale("log")
            # plain numbers; minor ticks labelled only where the axis spans under a decade
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))
        ax.set_xlabel("step")
        ax.set_title(label, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    if handles:
        axes[0].legend(handles=handles, fontsize=7)
    if title:
        fig.suptitle(_shown(title))
    return fig
