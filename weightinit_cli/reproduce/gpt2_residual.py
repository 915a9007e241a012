"""Radford, Wu, Child, Luan, Amodei & Sutskever 2019, Language models are unsupervised
multitask learners (GPT-2), Section 2.3: "A modified initialization which accounts for the
accumulation on the residual path with model depth is used. We scale the weights of
residual layers at initialization by a factor of 1/√N where N is the number of residual
layers." nanoGPT (Karpathy, model.py) draws every weight N(0, 0.02) and each residual
output projection (the attention's and the MLP's last layer) N(0, 0.02/√(2·n_layer)): N =
2·n_layer residual blocks, an attention and an MLP one per transformer layer.

Theory (residual_stream.py): in a pre-LN transformer each block adds F(LN(x)) to the
stream. Its branch reads a layer-normed input, so what it adds, E[F²], is the same whatever
the stream holds, and, uncorrelated with the stream at init, it adds to E[x²]:
E[x_k²] = E[x_0²] + Σ_{j ≤ k} E[F_j²], a line in the block index k, not a power. Under a
fixed N(0, σ²) each MLP branch adds the mean-field E[F²] of dense, gelu, dense on a unit
Gaussian and each attention branch σ_v²·σ_o²·ρ̄ (ρ̄ from the attention pattern: nearly
uniform at σ = 0.02): over a stack of L layers the stream gains L·c, c per layer. With
the 1/√(2L) scaling each branch adds 1/(2L) of that: the whole stack adds c/2, what one
unscaled block adds, at any depth.

winit's embeddings are drawn N(0, 1) (parameters.py), not N(0, 0.02) as GPT-2's: a token's
vector plus its position's gives E[x_0²] = 2 entering the first block, where GPT-2's stream
starts at 2·0.02² and the branches soon dominate it. Here the growth is measured against a
start of 2, and c grows about as (width·σ²)²: at width 768 (GPT-2 small's) a layer adds about
0.15, so 48 layers (GPT-2 XL's count) take the stream from 2 to about 9, a line that an
exponential fits visibly worse; at width 64 the stream would not move measurably. The
measured nets are the config's, 768 wide, one per depth up to its 48 layers, at init; the
trained net (TRAINED) is 16 layers at a width a CPU trains in a minute or two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import WinitError
from ..plots import Chart
from .finding import Finding, Reproduction, compare_at, with_overrides

if TYPE_CHECKING:
    from ..config import Config
    from ..data import Dataset
    from ..residual_stream import BlockStats
    from ..train import TrainHistory


@dataclass(frozen=True)
class Arm:
    label: str
    branch_scale: str  # init.branch_scale


ARMS = (Arm("N(0, 0.02)", "none"), Arm("N(0, 0.02), 1/√(2L)", "gpt2"))
FAST_DEPTH = 16  # the fast version measures 2, 4, 8 and 16 layers; the full one up to 48
# The measured nets (the config's width and heads) see 8 sequences of 16 tokens: 128
# positions of 768 features per moment, where the finite-width spread dominates the batch's.
MEASURE_BATCH = 8
# The trained nets: the config's train section; the fast one shallower and narrower.
TRAINED = ("model.depth=16", "model.width=64", "model.heads=4")
FAST_TRAINED = (
    "model.depth=8", "model.width=32", "model.heads=2",
    "train.batch_size=64", "train.steps=150", "train.lr=0.003",
)  # fmt: skip
# Tolerances from the spread over seeds 0-11 at the fast sizes: the measured stream is
# theory's plus cross terms E[x·F] of the stream with each branch, zero on average. They
# put the unscaled stack's gain at 0.94 to 1.11 of theory's at each depth, its fitted gain
# per block at 0.94 to 1.06, the scaled stack's gain (a sum of small branches) at 0.84 to
# 1.26, and the scaled stream's out/in at 1.035 to 1.045.
ADDED_TOLERANCE = 0.2  # relative, of the unscaled stack's gain at each depth
SLOPE_TOLERANCE = 0.1  # relative, of its gain per block across depths against theory's
LINE_R2 = 0.99  # the unscaled gains against depth: a line through them fits this well
SCALED_TOLERANCE = 0.4  # relative, of the scaled stack's gain at each depth
BOUNDED = 1.1  # the scaled stream's E[x²] out over in, at every depth (theory: ~1.04)
LINE_OVER_EXPONENTIAL = 2.0  # the deepest stream grew this much: a line and an exponential differ
TRAINED_ACCURACY = 0.9  # held-out; chance is 1/8, without attention about 1/4


@dataclass
class Stream:
    """One arm's residual stream at init in a net of `layers` transformer layers."""

    arm: Arm
    layers: int
    stream: list[float]  # E[x²] entering the first block, then after each block
    predicted: list[float]  # the same, from theory: the start plus each block's E[F²]
    verdict: str  # winit's verdict on the stream (verdict.diagnose_stream)

    @property
    def start(self) -> float:
        return self.stream[0]

    @property
    def final(self) -> float:
        return self.stream[-1]

    @property
    def added(self) -> float:
        """What the stack added to E[x²]."""
        return self.final - self.start

    @property
    def theory(self) -> float:
        return self.predicted[-1] - self.start

    @property
    def ratio(self) -> float:
        return self.final / self.start


def depths(top: int, fast: bool) -> list[int]:
    """The measured depths (transformer layers): 2, 4, 8, ... below the top one, and the top:
    the config's depth, at most FAST_DEPTH in the fast version."""
    top = min(top, FAST_DEPTH) if fast else top
    return [d for d in (2**k for k in range(1, top.bit_length())) if d < top] + [top]


def profile(blocks: list[BlockStats]) -> tuple[list[float], list[float]]:
    """(measured, predicted) E[x²] of the stream before the first block and after each. The
    prediction adds each block's predicted E[F²] (from its measured input) to the measured
    start: the stream's gain, without its cross terms, which are zero on average."""
    measured, predicted = [blocks[0].stream_in], [blocks[0].stream_in]
    for block in blocks:
        measured.append(block.stream_out)
        branch = math.nan if block.predicted_branch is None else block.predicted_branch
        predicted.append(predicted[-1] + branch)
    return measured, predicted


def stream_of(arm: Arm, layers: int, blocks: list[BlockStats], verdict: str) -> Stream:
    measured, predicted = profile(blocks)
    return Stream(arm, layers, measured, predicted, verdict)


def measure(cfg: Config, arm: Arm, layers: int, data: Dataset) -> Stream:
    """The arm's stream at init, in the measured net of `layers` layers."""
    from ..experiments import run_stats

    run_cfg = with_overrides(
        cfg,
        f"model.depth={layers}",
        f"init.branch_scale={arm.branch_scale}",
        f"train.batch_size={MEASURE_BATCH}",
    )
    stats = run_stats(run_cfg, data, "cpu")
    return stream_of(arm, layers, stats.blocks or [], stats.verdict.kind)


def train_arm(cfg: Config, arm: Arm, data: Dataset) -> TrainHistory:
    """The arm's training, on the trained net (cfg: the config with TRAINED applied)."""
    (run,) = compare_at(
        cfg,
        [(cfg.init.method, dict(cfg.init.params))],
        data,
        f"init.branch_scale={arm.branch_scale}",
    ).runs
    return run.train


def line_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """(slope, R²) of the least-squares line through the points (with an intercept)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return sxy / sxx, (sxy * sxy / (sxx * syy) if syy > 0 else 1.0)


def shape_fits(ys: list[float]) -> tuple[float, float]:
    """(R² of a line, R² of an exponential) through E[x²] against the block index, both
    on E[x²] itself: the exponential is the line through log E[x²], exponentiated."""
    index = list(range(len(ys)))
    _, line = line_fit(index, ys)
    logs = [math.log(max(y, 1e-30)) for y in ys]
    rate, _ = line_fit(index, logs)
    offset = sum(logs) / len(logs) - rate * sum(index) / len(index)
    mean = sum(ys) / len(ys)
    residual = sum((y - math.exp(offset + rate * k)) ** 2 for k, y in zip(index, ys, strict=True))
    return line, 1 - residual / sum((y - mean) ** 2 for y in ys)


@dataclass
class Judged:
    """The numbers the verdict rests on."""

    slope: float  # the unscaled stack's gain in E[x²] per block, fitted across depths
    theory_slope: float  # the same, from theory's gains
    r2: float  # of that line
    line_r2: float  # the deepest unscaled stream against the block index: a line
    power_r2: float  # and an exponential
    worst_added: float  # the unscaled gains' largest relative miss of theory
    worst_scaled: float  # the scaled gains' largest relative miss of theory
    top_ratio: float  # the scaled stream's largest E[x²] out over in
    accuracy: float  # the scaled trained net's held-out accuracy

    def agree(self, deepest: Stream, history: TrainHistory) -> bool:
        line = self.r2 >= LINE_R2 and abs(self.slope / self.theory_slope - 1) <= SLOPE_TOLERANCE
        # only a stream that grew enough tells a line from an exponential
        shaped = deepest.ratio < LINE_OVER_EXPONENTIAL or self.line_r2 > self.power_r2
        bounded = self.worst_scaled <= SCALED_TOLERANCE and self.top_ratio < BOUNDED
        trains = history.status == "completed" and self.accuracy >= TRAINED_ACCURACY
        return line and self.worst_added <= ADDED_TOLERANCE and shaped and bounded and trains


def judge(unscaled: list[Stream], scaled: list[Stream], history: TrainHistory) -> Judged:
    blocks = [2.0 * s.layers for s in unscaled]
    slope, r2 = line_fit(blocks, [s.added for s in unscaled])
    theory_slope, _ = line_fit(blocks, [s.theory for s in unscaled])
    line_r2, power_r2 = shape_fits(unscaled[-1].stream)

    def worst(streams: list[Stream]) -> float:
        return max(abs(s.added / s.theory - 1) if s.theory > 0 else math.inf for s in streams)

    return Judged(
        slope,
        theory_slope,
        r2,
        line_r2,
        power_r2,
        worst(unscaled),
        worst(scaled),
        max(s.ratio for s in scaled),
        history.final_accuracy,
    )


def _row(stream: Stream) -> dict[str, Any]:
    """One measured net's stream at init (the trained nets are in the finding's text)."""
    return {
        "init": stream.arm.label,
        "layers": stream.layers,
        "E[x²] in": stream.start,
        "E[x²] out": stream.final,
        "theory": stream.predicted[-1],
        "added": stream.added,
        "out/in": stream.ratio,
        "verdict": stream.verdict,
    }


def _described(width: int, unscaled: list[Stream], scaled: list[Stream], judged: Judged) -> str:
    """The streams at init, for the finding's `measured`."""
    deepest, kept = unscaled[-1], scaled[-1]
    layers = ", ".join(str(s.layers) for s in unscaled)
    added = ", ".join(f"{s.added:.3g}" for s in unscaled)
    kept_added = ", ".join(f"{s.added:.3g}" for s in scaled)
    return (
        f"at init, width {width}, {layers} layers; E[x²] enters at {deepest.start:.3g} (two "
        f"N(0, 1) embeddings added, theory 2). Under N(0, 0.02) the stack adds {added}: "
        f"{judged.slope:.3g} per block (theory {judged.theory_slope:.3g}; R² of a line against "
        f"depth {judged.r2:.4f}), every depth within {judged.worst_added:.0%} of theory; the "
        f"{deepest.layers}-layer stream goes {deepest.start:.3g} → {deepest.final:.3g} (theory "
        f"{deepest.predicted[-1]:.3g}), R² against the block index {judged.line_r2:.4f} for a "
        f"line, {judged.power_r2:.4f} for an exponential; winit's verdict: {deepest.verdict}. "
        f"With 1/√(2L) it adds {kept_added} (theory {kept.theory:.3g}), within "
        f"{judged.worst_scaled:.0%} of theory: E[x²] out/in at most {judged.top_ratio:.3f} "
        f"(bound {BOUNDED:g})."
    )


def _trained_text(arm: Arm, history: TrainHistory) -> str:
    if history.status == "diverged":
        return f"{arm.label} diverged at step {history.diverged_at}"
    return (
        f"{arm.label} {history.status}, loss {history.final_loss:.3g}, "
        f"accuracy {history.final_accuracy:.0%}"
    )


def run(cfg: Config, fast: bool) -> Finding:
    from ..experiments import load_dataset

    if cfg.train.steps == 0:
        raise WinitError("train.steps: gpt2_residual trains its deeper net; give it 1 or more")
    if cfg.model.depth < 3:
        raise WinitError(
            "model.depth: gpt2_residual measures the stream at 2, 4, ... layers up to this "
            "depth and fits a line across them; give it 3 or more"
        )
    data = load_dataset(cfg)
    measured = depths(cfg.model.depth, fast)
    unscaled, scaled = ([measure(cfg, arm, d, data) for d in measured] for arm in ARMS)
    trained_cfg = with_overrides(cfg, *(FAST_TRAINED if fast else TRAINED))
    plain, history = (train_arm(trained_cfg, arm, data) for arm in ARMS)
    judged = judge(unscaled, scaled, history)
    width, layers = trained_cfg.model.width, trained_cfg.model.depth
    rows = [_row(s) for s in unscaled + scaled]
    deepest, kept = unscaled[-1], scaled[-1]
    measured_text = _described(cfg.model.width, unscaled, scaled, judged)
    measured_text += (
        f" Trained ({layers} layers × {width}, {trained_cfg.train.steps} "
        f"{trained_cfg.train.optimizer} steps on {cfg.data.name}): "
        f"{_trained_text(ARMS[1], history)}; {_trained_text(ARMS[0], plain)}"
    )
    charts = {
        "gpt2_residual_stream.png": Chart(
            "stream_profiles",
            {
                "streams": {s.arm.label: _relative(s.stream) for s in (deepest, kept)},
                "predicted": {s.arm.label: _relative(s.predicted) for s in (deepest, kept)},
                "title": f"GPT-2: the pre-LN stream at init, {deepest.layers} layers × "
                f"{cfg.model.width}",
            },
        ),
        "gpt2_residual_depths.png": Chart(
            "stream_profiles",
            {
                "streams": {
                    f"{s.arm.label}, {s.layers} layers": _relative(s.stream)
                    for s in unscaled + scaled
                },
                "title": "GPT-2: the pre-LN stream at init, at each depth",
            },
        ),
        "gpt2_residual_training.png": Chart(
            "loss_curves",
            {
                "histories": {ARMS[0].label: plain, ARMS[1].label: history},
                "title": f"GPT-2 init: {layers} pre-LN layers × {width} on {cfg.data.name}",
            },
        ),
    }
    return REPRODUCTION.finding(measured_text, judged.agree(deepest, history), rows, charts)


def _relative(ys: list[float]) -> list[float]:
    """A stream over its start (stream_profiles draws E[x²] over its input's)."""
    return [y / ys[0] for y in ys]


REPRODUCTION = Reproduction(
    "gpt2_residual",
    "Radford et al. 2019",
    "in a pre-LN transformer at init under N(0, 0.02), the residual stream's E[x²] grows "
    "linearly with depth (each block adds the same); scaling each residual output "
    "projection by 1/√(2L) (nanoGPT's 0.02/√(2·n_layer)) keeps it bounded at every depth, "
    "and the deeper net trains with it",
    run,
)
