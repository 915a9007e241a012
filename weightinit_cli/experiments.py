"""The experiments behind stats, train and compare, as functions of a validated config.

Each takes the config (with its plan and init spec), the dataset and the device, and
returns plain dataclasses. Nothing here prints, writes files or imports a renderer:
progress leaves through `on_log` callbacks and a stop request comes in through
`should_stop` (session.py owns the run around them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import WinitError

if TYPE_CHECKING:
    import torch

    from .apply import InitReport
    from .config import Config
    from .data import Dataset
    from .histograms import LayerHistograms
    from .initspec import InitSpec
    from .probe import LayerStats
    from .residual_stream import BlockStats
    from .spp import SppLayer
    from .train import LogPoint, TrainHistory
    from .verdict import Verdict


@dataclass
class StatsResult:
    """What one initialized network measured at one batch, and what theory predicted."""

    name: str
    method: str
    backend: str
    model: dict[str, Any]
    loss: float
    input_second_moment: float
    layers: list[LayerStats]
    init: InitReport
    verdict: Verdict
    spp: list[SppLayer] | None = None  # signal propagation (conv layers or blocks), if asked
    blocks: list[BlockStats] | None = None  # the residual stream per block, at init
    histograms: list[LayerHistograms] = field(default_factory=list)  # for a tracker, if asked


@dataclass
class TrainResult:
    """A training run: statistics at init (and after training, if measured) and history."""

    name: str
    device: str
    before: StatsResult
    after: StatsResult | None
    history: TrainHistory


@dataclass
class MethodRun:
    """One of compare's methods: its statistics at init and its training (None: 0 steps)."""

    spec: InitSpec
    stats: StatsResult
    train: TrainHistory | None

    @property
    def method(self) -> str:
        return self.spec.method

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.spec.given)


@dataclass
class CompareResult:
    name: str
    device: str
    runs: list[MethodRun]


def load_dataset(cfg: Config) -> Dataset:
    """The dataset a config asks for (data.py makes it)."""
    from .data import make_dataset

    return make_dataset(
        cfg.data.name,
        input_shape=cfg.model.input_shape,
        num_classes=cfg.model.num_classes,
        samples=cfg.data.samples,
        seed=cfg.seed,
        noise=cfg.data.noise,
        test_fraction=cfg.data.test_fraction,
        path=cfg.data.path,
    )


def first_batch(data: Dataset, batch_size: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    n = min(batch_size, data.n_train)
    x = torch.from_numpy(data.x_train[:n]).to(device)
    y = torch.from_numpy(data.y_train[:n]).to(device)
    return x, y


def initialized(cfg: Config, spec: InitSpec, data: Dataset) -> tuple[Any, InitReport]:
    """The config's network, built and initialized with `spec` (on the CPU); a
    data-dependent method (lsuv) sees the first training batch."""
    import torch

    from .apply import apply_init
    from .models import build_model, parametrize_model
    from .mup_shapes import parametrization_of
    from .parametrization import rescale_init

    plan = cfg.model.plan
    scaling = parametrization_of(cfg)  # None under SP; before the seed (it draws nothing)
    torch.manual_seed(cfg.seed)
    spec.check_residual(plan, built=cfg.model.module is None)
    if cfg.model.module is not None:
        from .user_model import build

        model = build(cfg.model.module, cfg.model.args)
        if scaling is not None:
            parametrize_model(model, scaling)
    else:
        from .methods import METHODS

        model = build_model(plan, gate=METHODS[spec.method].gate, parametrization=scaling)
    batch = first_batch(data, cfg.train.batch_size, "cpu")[0] if spec.data_dependent else None
    blocks = [layer for layer in plan.all_layers if layer.kind == "residual"]
    attention = sum(1 for b in blocks if any(x.kind == "attention" for x in b.branch))
    scale = cfg.init.branch_factor(len(blocks), attention)
    report = apply_init(model, spec, plan, seed=cfg.seed, data=batch, branch_scale=scale)
    if scaling is not None:  # µP: the drawn init rescaled as mup's set_base_shapes does
        rescale_init(model, scaling, report)
    elif cfg.init.readout == "zero":
        from .parametrization import zero_readout
        from .scaled_width import readout_layer

        zero_readout(model, readout_layer(cfg), report)
    if cfg.init.query == "zero":
        from .parametrization import zero_queries

        zero_queries(model, report)
    return model, report


def model_summary(cfg: Config) -> dict[str, Any]:
    from .mup_shapes import parametrization_of

    m, plan = cfg.model, cfg.model.plan
    scaled = parametrization_of(cfg)
    width_scaling = (
        {"parametrization": scaled.name, "base_width": scaled.base_width, "readout": scaled.readout}
        if scaled is not None
        else {}
    )
    if m.module is not None:
        return {
            "type": "module",
            "module": m.module,
            "args": dict(m.args),
            "input_shape": list(m.input_shape),
            "num_classes": m.num_classes,
            "weighted_layers": len(plan.weighted),
            "parameters": plan.parameters,
            **width_scaling,
        }
    summary: dict[str, Any] = {
        "type": "layers" if m.layers is not None else m.type,
        "input_shape": list(m.input_shape),
        "num_classes": m.num_classes,
        "activation": m.activation,
        "weighted_layers": len(plan.weighted),
        "parameters": plan.parameters,
    }
    summary.update(width_scaling)
    if m.layers is None:
        summary.update(depth=m.depth, width=m.width)
        if m.type == "transformer":
            summary.update(
                heads=m.heads,
                mlp_ratio=m.mlp_ratio,
                norm_position=m.norm_position,
                vocab_size=m.vocab_size,
            )
        if m.block == "residual":
            summary.update(
                block=m.block, residual=m.residual, branch_depth=m.branch_depth, norm=m.norm
            )
    return summary


def measure(
    cfg: Config,
    model: Any,
    report: InitReport,
    data: Dataset,
    device: str,
    with_theory: bool = True,
    spp: bool = False,
    histograms: bool = False,
) -> StatsResult:
    """One forward/backward pass on the first batch, with theory beside it at init and a
    flag per layer and a verdict; with `spp`, also the conv layers' signal propagation
    (Brock et al. 2021); with `histograms`, each layer's tensors' histograms."""
    from .meanfield import predict_layers
    from .probe import probe
    from .verdict import diagnose, flag

    plan = cfg.model.plan
    x, y = first_batch(data, cfg.train.batch_size, device)
    measured = probe(model, x, y, plan, histograms=histograms)
    layers = measured.layers
    if with_theory:
        predictions = predict_layers(
            [
                r.fan_in * p.taps_inside * r.target_std**2
                for r, p in zip(report.layers, plan.weighted, strict=True)
            ],
            [r.bias_var for r in report.layers],
            [p.activation for p in plan.weighted],
            [p.negative_slope for p in plan.weighted],
            [p.chained for p in plan.weighted],
            measured.input_second_moments,
        )
        for layer, record, prediction, planned in zip(
            layers, report.layers, predictions, plan.weighted, strict=True
        ):
            layer.expected_weight_std = record.target_std
            layer.predicted_preactivation_std = prediction.pre_std
            layer.predicted_activation_std = _activation_prediction(
                planned, prediction, model.training
            )
            if planned.kind.startswith("conv_transpose"):
                # its output sums over fan_out·σ² terms, not fan_in's: the recursion does not hold
                layer.predicted_preactivation_std = layer.predicted_activation_std = None
    first = layers[0].activation.std if layers else 0.0
    for layer in layers:
        layer.signal = flag(layer.activation.std, first)
    hidden = layers[:-1] or layers
    # a layer a scheme sets to 0 (Fixup's branch ends) outputs 0 by design, not dead units
    judged = [
        layer for layer, r in zip(hidden, report.layers, strict=False) if r.scale != 0.0
    ] or hidden
    method = report.layers[0].method if report.layers else cfg.init.method
    verdict = diagnose(
        [layer.activation.std for layer in judged],
        [layer.signal for layer in judged],
        [layer.symmetric for layer in judged],
        [layer.dead_fraction for layer in judged],
        _network_activation(cfg, plan, hidden),
        method,
    )
    propagation = None
    if spp:
        from .spp import signal_propagation

        propagation = signal_propagation(model, x, plan)
    stream = None
    if with_theory and plan.has("residual"):
        from .residual_stream import blocks

        weight_vars = {
            r.name: (r.fan_in * p.taps_inside * r.target_std**2, r.bias_var)
            for r, p in zip(report.layers, plan.weighted, strict=True)
        }
        weight_vars.update(_value_vars(report))
        stream = blocks(model, x, plan, weight_vars)
        top = [b for b in stream if "." not in b.name]  # the stream itself, not nested blocks
        if top and verdict.kind != "symmetric":
            from .verdict import diagnose_stream

            stream_verdict = diagnose_stream(
                [b.name for b in top],
                top[0].stream_in,
                [b.stream_out for b in top],
                method,
                normalized=plan.has("attention", "batchnorm", "layernorm"),
            )
            # dead units behind a stream that explodes are its symptom, not the cause
            if verdict.kind != "dead" or stream_verdict.kind in ("exploding", "vanishing"):
                verdict = stream_verdict
    return StatsResult(
        name=cfg.name or "default",
        method=method,
        backend=cfg.init.backend,
        model=model_summary(cfg),
        loss=measured.loss,
        input_second_moment=measured.input_second_moments[0],
        layers=layers,
        init=report,
        verdict=verdict,
        spp=propagation,
        blocks=stream,
        histograms=measured.histograms,
    )


def _value_vars(report: InitReport) -> dict[str, tuple[float, float]]:
    """(σ_w², σ_b²) of each self-attention's value projection, by the attention's name
    (its weights are drawn outside the plan, by the parameter rules)."""
    records = {p.name: p for p in report.parameters}
    out = {}
    for name, weight in records.items():
        if not name.endswith(".value.weight") or weight.target_std is None or not weight.fan_in:
            continue
        owner = name.removesuffix(".value.weight")
        bias = records.get(f"{owner}.value.bias")
        b2 = bias.target_std**2 if bias is not None and bias.target_std is not None else 0.0
        out[owner] = (weight.fan_in * weight.target_std**2, b2)
    return out


def _activation_prediction(planned: Any, prediction: Any, training: bool) -> float | None:
    """The predicted std after the layer's activation. Through flattens it is the
    recursion's; through a norm (batchnorm in training mode, or layer norm, at init: weight
    1, bias 0) the activation sees unit-variance inputs, whatever the layer gave it; through
    a dropout or a pool, or a batchnorm in eval mode (its running statistics), it is not
    modelled (None: the table says n/a)."""
    through = set(planned.through) - {"flatten"}
    if not through:
        return prediction.post_std
    if through <= {"batchnorm", "norm"} and (training or "batchnorm" not in through):
        from .meanfield import predict_layers

        (normed,) = predict_layers(
            [1.0], [0.0], [planned.activation], [planned.negative_slope], [False], [1.0]
        )
        return normed.post_std
    return None


def _network_activation(cfg: Config, plan: Any, hidden: Sequence[LayerStats]) -> str | None:
    """The activation a verdict speaks of: the stack's; the first hidden layer's for
    `layers`; for a user's module the one most of its layers are seen to use (None if
    none is seen)."""
    if cfg.model.is_stack:
        return cfg.model.activation
    if cfg.model.module is None and not plan.has("residual"):
        return hidden[0].activation_fn if hidden else "linear"
    # a module, or residual blocks (whose stem feeds the blocks with no activation of its own)
    seen = [p.activation for p in plan.weighted if p.activation and p.activation_source == "module"]
    return max(sorted(set(seen)), key=seen.count) if seen else None


def check_spp(cfg: Config) -> None:
    """--spp needs conv layers or residual blocks to measure channels of."""
    plan = cfg.model.plan
    if not plan.has("conv2d", "conv3d") and not any(x.kind == "residual" for x in plan.layers):
        raise WinitError(
            "--spp plots conv layers' channels or residual blocks' streams, and this model "
            "has none: use --layer conv2d or conv3d, --set model.block=residual, or conv "
            "layers or residual entries in model.layers"
        )


@contextmanager
def _users_code(cfg: Config, doing: str) -> Iterator[None]:
    """A user's module that fails after its trace (on another batch size, in training):
    one line naming it, not a traceback."""
    if cfg.model.module is None:
        yield
        return
    try:
        yield
    except (WinitError, KeyboardInterrupt):
        raise
    except Exception as exc:
        from .user_model import one_line

        raise WinitError(
            f"model.module: {cfg.model.module} failed while {doing}: {one_line(exc)}"
        ) from None


def wants_histograms(cfg: Config) -> bool:
    """Whether a tracker of the run draws histograms (TensorBoard's dashboard), so that the
    pass or the log points take them."""
    return "tensorboard" in cfg.log


def run_stats(
    cfg: Config,
    data: Dataset,
    device: str,
    spec: InitSpec | None = None,
    spp: bool = False,
    histograms: bool = False,
) -> StatsResult:
    """`winit stats`: initialize the config's network and measure one pass on one batch
    (with `histograms`, each layer's tensors' histograms from it too)."""
    with _users_code(cfg, "measuring"):
        model, report = initialized(cfg, spec or cfg.init.spec, data)
        return measure(cfg, model.to(device), report, data, device, spp=spp, histograms=histograms)


def run_train(
    cfg: Config,
    data: Dataset,
    device: str,
    spec: InitSpec | None = None,
    on_log: Callable[[LogPoint], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    spp: bool = False,
    measure_after: bool = True,
) -> TrainResult:
    """`winit train`: initialize, measure, train for cfg.train.steps and (unless told not
    to) measure again."""
    from .train import train

    with _users_code(cfg, "measuring"):
        model, report = initialized(cfg, spec or cfg.init.spec, data)
        model.to(device)
        before = measure(cfg, model, report, data, device, spp=spp)
    with _users_code(cfg, "training"):
        history = train(
            model,
            data,
            cfg.train,
            cfg.model.plan,
            device=device,
            seed=cfg.seed,
            on_log=on_log,
            should_stop=should_stop,
            histograms=wants_histograms(cfg),
        )
    after = measure(cfg, model, report, data, device, with_theory=False) if measure_after else None
    return TrainResult(cfg.name or "default", device, before, after, history)


def run_compare(
    cfg: Config,
    specs: Sequence[InitSpec],
    data: Dataset,
    device: str,
    on_log: Callable[[int, LogPoint], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    jobs: int | None = None,
    spp: bool = False,
) -> CompareResult:
    """The same network, data and seed under each init; training skipped when steps is 0.

    Methods run concurrently on `jobs` worker processes (default: one per core), each on
    one torch thread; jobs=1 runs them here, also on one thread, with identical results.
    `on_log(i, point)` reports the i-th method's progress.
    """
    from .parallel import run_tasks

    if device != "cpu":
        jobs = 1  # one GPU: the methods queue for it anyway, and CUDA does not survive fork

    def task(index: int, log: Callable[[LogPoint], None], stop: Callable[[], bool]) -> MethodRun:
        spec = specs[index]
        if cfg.train.steps == 0:
            stats = run_stats(cfg, data, device, spec, spp, wants_histograms(cfg))
            return MethodRun(spec, stats, None)
        result = run_train(cfg, data, device, spec, log, stop, spp, measure_after=False)
        return MethodRun(spec, result.before, result.history)

    runs = run_tasks(task, len(specs), jobs, on_log, should_stop)
    return CompareResult(cfg.name or "default", device, [r for r in runs if r is not None])
