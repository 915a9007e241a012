"""Experiments as functions of a validated config, returning plain data. Nothing prints."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import WinitError

if TYPE_CHECKING:
    import torch

    from .apply import InitReport
    from .config import Config
    from .data import Dataset
    from .diagnosis import Verdict
    from .models import LayerPlan
    from .probe import LayerStats
    from .spp import SppLayer
    from .train import LogPoint, TrainHistory

# Modules that carry a weighted layer's activation on to the next weighted layer
# unchanged in second moment; anything else (pooling, batchnorm, dropout) makes
# the mean-field prediction restart from the measured input of the next layer.
PASS_THROUGH = ("activation", "flatten")


def resolve_device(requested: str) -> str:
    """cpu, cuda, or for auto whichever is present; cuda without a GPU is a user error."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise WinitError("device: cuda was asked for, but torch sees no CUDA GPU; use cpu or auto")
    return requested


def build_dataset(cfg: Config) -> Dataset:
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


def init_model(
    cfg: Config,
    method: str | None = None,
    params: dict[str, Any] | None = None,
    data: Dataset | None = None,
):
    """The config's model, built and initialized (method/params override the config's).

    A data-dependent method (lsuv) sees the first training batch of `data`.
    """
    import torch

    from .apply import apply_weight_init
    from .methods import get_method
    from .models import build_model

    method = method or cfg.init.method
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model)
    params = dict(cfg.init.method_params() if params is None else params)
    gain = params.pop("gain", cfg.init.gain if cfg.init.gain != "default" else None)
    batch = None
    if get_method(method).data_dependent:
        data = data if data is not None else build_dataset(cfg)
        batch, _ = first_batch(data, cfg.train.batch_size, "cpu")
    report = apply_weight_init(
        model,
        method,
        backend=cfg.init.backend,
        gain=gain,
        seed=cfg.seed,
        bias=cfg.init.bias,
        data=batch,
        **params,
    )
    return model, report


@dataclass
class StatsResult:
    """What `winit stats` measured and predicted for one initialized network."""

    name: str
    method: str
    backend: str
    model: dict[str, Any]
    loss: float
    input_second_moment: float
    layers: list[LayerStats]
    init: InitReport
    verdict: Verdict
    spp: list[SppLayer] | None = None  # signal propagation of the conv layers, if asked


def first_batch(data: Dataset, batch_size: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    n = min(batch_size, data.n_train)
    x = torch.from_numpy(data.x_train[:n]).to(device)
    y = torch.from_numpy(data.y_train[:n]).to(device)
    return x, y


def _restarts(plan: list[LayerPlan]) -> list[bool]:
    """For each weighted layer: must the prediction restart from its measured input?"""
    restarts, between = [], []
    for layer in plan:
        if layer.weight_shape is not None:
            restarts.append(not restarts or any(k not in PASS_THROUGH for k in between))
            between = []
        else:
            between.append(layer.kind)
    return restarts


def predict(
    layers: list[LayerStats], init: InitReport, restarts: list[bool], input_moments: list[float]
) -> None:
    """Fill each layer's expected weight std and mean-field predicted activation stds."""
    from .theory import predict_signal

    moment = input_moments[0]
    for layer, record, restart, measured_moment in zip(
        layers, init.layers, restarts, input_moments, strict=True
    ):
        if restart:
            moment = measured_moment
        weight_var = layer.fan_in * record.target_std**2
        bias_var = record.bias_var
        layer.expected_weight_std = record.target_std
        if not math.isfinite(weight_var * moment + bias_var):
            # The predicted signal has left float range: theory says it exploded.
            layer.predicted_preactivation_std = layer.predicted_activation_std = math.inf
            moment = math.inf
            continue
        (prediction,) = predict_signal([weight_var], [bias_var], [layer.activation_fn], moment)
        layer.predicted_preactivation_std = prediction.pre_std
        layer.predicted_activation_std = prediction.post_std
        moment = prediction.post_second_moment


def model_summary(cfg: Config, plan: list[LayerPlan]) -> dict[str, Any]:
    m = cfg.model
    summary: dict[str, Any] = {
        "type": "layers" if m.layers is not None else m.type,
        "input_shape": list(m.input_shape),
        "num_classes": m.num_classes,
        "activation": m.activation,
        "weighted_layers": sum(1 for p in plan if p.weight_shape is not None),
        "parameters": sum(p.params for p in plan),
    }
    if m.layers is None:
        summary.update(depth=m.depth, width=m.width)
    return summary


def measure(
    cfg: Config,
    model: Any,
    report: InitReport,
    data: Dataset,
    device: str,
    with_theory: bool = True,
    spp: bool = False,
) -> StatsResult:
    """One forward/backward pass on the first batch, with theory beside it at init;
    with `spp`, also the conv layers' signal propagation (Brock et al. 2021)."""
    from .diagnosis import diagnose
    from .models import plan_layers
    from .probe import probe

    plan = plan_layers(cfg.model)
    x, y = first_batch(data, cfg.train.batch_size, device)
    measured = probe(model, x, y)
    if with_theory:
        predict(measured.layers, report, _restarts(plan), measured.input_second_moments)
    hidden = measured.layers[:-1] or measured.layers
    method = report.layers[0].method if report.layers else cfg.init.method
    verdict = diagnose(
        [layer.activation.std for layer in hidden],
        [layer.symmetric for layer in hidden],
        [layer.dead_fraction for layer in hidden],
        cfg.model.activation if cfg.model.layers is None else hidden[0].activation_fn,
        method,
    )
    propagation = None
    if spp:
        from .spp import signal_propagation

        propagation = signal_propagation(model, x)
    return StatsResult(
        spp=propagation,
        name=cfg.name or "default",
        method=method,
        backend=cfg.init.backend,
        model=model_summary(cfg, plan),
        loss=measured.loss,
        input_second_moment=measured.input_second_moments[0],
        layers=measured.layers,
        init=report,
        verdict=verdict,
    )


def check_spp(cfg: Config) -> None:
    """--spp needs conv layers to measure channels of."""
    from .models import plan_layers

    if not any(p.kind in ("conv2d", "conv3d") for p in plan_layers(cfg.model)):
        raise WinitError(
            "--spp plots conv layers' channels, and this model has none: use --layer conv2d "
            "or conv3d, or conv layers in model.layers"
        )


def run_stats(
    cfg: Config,
    method: str | None = None,
    params: dict[str, Any] | None = None,
    spp: bool = False,
) -> StatsResult:
    """Initialize the config's model and measure one forward/backward pass on one batch."""
    if spp:
        check_spp(cfg)
    device = resolve_device(cfg.device)
    data = build_dataset(cfg)
    model, report = init_model(cfg, method, params, data)
    return measure(cfg, model.to(device), report, data, device, spp=spp)


@dataclass
class TrainResult:
    """A training run: statistics at init and after training, and the history."""

    name: str
    device: str
    before: StatsResult
    after: StatsResult
    history: TrainHistory


def train_method(
    cfg: Config,
    data: Dataset,
    device: str,
    method: str | None = None,
    params: dict[str, Any] | None = None,
    on_log: Callable[[LogPoint], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    spp: bool = False,
) -> TrainResult:
    """Initialize, measure, train and measure again: one method on the config's model."""
    from .train import train

    model, report = init_model(cfg, method, params, data)
    model.to(device)
    before = measure(cfg, model, report, data, device, spp=spp)
    history = train(
        model,
        data,
        cfg.train,
        device=device,
        seed=cfg.seed,
        on_log=on_log,
        should_stop=should_stop,
        target_loss=cfg.train.target_loss,
    )
    after = measure(cfg, model, report, data, device, with_theory=False)
    return TrainResult(cfg.name or "default", device, before, after, history)


def run_train(
    cfg: Config,
    on_log: Callable[[LogPoint], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    data: Dataset | None = None,
) -> TrainResult:
    """`winit train`: the config's init method, trained for cfg.train.steps."""
    device = resolve_device(cfg.device)
    data = data if data is not None else build_dataset(cfg)
    return train_method(cfg, data, device, on_log=on_log, should_stop=should_stop)


@dataclass
class MethodRun:
    method: str
    params: dict[str, Any]
    stats: StatsResult
    train: TrainHistory | None


@dataclass
class CompareResult:
    name: str
    device: str
    runs: list[MethodRun]


def run_compare(
    cfg: Config,
    methods: Sequence[tuple[str, dict[str, Any]]],
    on_log: Callable[[str, LogPoint], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    data: Dataset | None = None,
    jobs: int | None = None,
    spp: bool = False,
) -> CompareResult:
    """The same model, data and seed under each method; training skipped when steps is 0.

    Methods run concurrently on `jobs` worker processes (default: one per core), each on
    one torch thread; jobs=1 runs them here, also on one thread, with identical results.
    """
    from .parallel import run_tasks

    if spp:
        check_spp(cfg)
    device = resolve_device(cfg.device)
    data = data if data is not None else build_dataset(cfg)
    if device != "cpu":
        jobs = 1  # one GPU: the methods queue for it anyway, and CUDA does not survive fork

    def task(index: int, log: Callable[[LogPoint], None], stop: Callable[[], bool]) -> MethodRun:
        method, params = methods[index]
        if cfg.train.steps == 0:
            model, report = init_model(cfg, method, params, data)
            stats = measure(cfg, model.to(device), report, data, device, spp=spp)
            return MethodRun(method, params, stats, None)
        result = train_method(cfg, data, device, method, params, log, stop, spp)
        return MethodRun(method, params, result.before, result.history)

    log = (lambda index, point: on_log(methods[index][0], point)) if on_log else None
    runs = run_tasks(task, len(methods), jobs, log, should_stop)
    return CompareResult(cfg.name or "default", device, [r for r in runs if r is not None])
