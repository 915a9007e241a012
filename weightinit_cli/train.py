"""The training loop: fixed steps of SGD or Adam on a dataset, returning a history.

Nothing prints here. A caller watches progress through `on_log`, called at every
log step with the new point, and stops a run early through `should_stop`.
The loop syncs with the device once per step (the divergence check) and reads
statistics only at log steps, all of a log point's numbers in one transfer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .histograms import LayerHistograms, layer_histograms, watch_activations
from .probe import first_nonfinite_layer
from .weight_spectra import WeightMetrics, weight_metrics

if TYPE_CHECKING:
    from .config import TrainConfig
    from .data import Dataset
    from .plan import NetworkPlan

# A run whose loss moved less than this fraction of its start is "stuck".
STUCK_TOLERANCE = 0.01


@dataclass
class LogPoint:
    step: int  # updates done before this point
    loss: float  # mean training-batch loss since the previous point (step 0: first batch)
    accuracy: float  # on the held-out split
    test_loss: float
    grad_norm: float  # global L2 norm of the gradient at the last step
    layer_grad_std: list[float] = field(default_factory=list)
    # per weighted layer: spectral norm, stable rank, α (train.weight_spectra; else empty)
    layer_weights: list[WeightMetrics] = field(default_factory=list)
    # per weighted layer: weight, activation and gradient histograms (for a tracker; else
    # empty), not part of the history's files
    layer_histograms: list[LayerHistograms] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "layer_histograms"}
        data["layer_weights"] = [m.to_dict() for m in self.layer_weights]
        return data


@dataclass
class TrainHistory:
    status: str  # completed | diverged | interrupted | stuck
    steps: int  # updates actually done
    initial_loss: float
    final_loss: float
    final_accuracy: float
    diverged_at: int | None
    diverged_layer: str | None  # first module whose output was inf/NaN; None: only the loss
    target_loss: float
    steps_to_target: int | None  # first logged step with loss <= target_loss
    history: list[LogPoint]
    layer_names: list[str]
    seconds: float = 0.0  # wall time of the training loop, logging included


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD or Adam over the model's parameters; a model built under µP (models.build_model
    keeps its `parametrization`) gets mup's MuSGD / MuAdam learning rates per parameter."""
    scaling = getattr(model, "parametrization", None)
    params: Any = model.parameters()
    if scaling is not None:
        named = list(model.named_parameters())
        params = scaling.param_groups(named, cfg.optimizer, cfg.lr, cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def chance_loss(num_classes: int) -> float:
    """Cross-entropy of predicting the uniform class prior."""
    return math.log(num_classes)


@torch.no_grad()
def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """[loss, accuracy] on a held-out split, in eval mode, as 0-d tensors."""
    was_training = model.training
    model.eval()
    logits = model(x)
    model.train(was_training)
    loss = nn.functional.cross_entropy(logits, y)
    return [loss, (logits.argmax(dim=1) == y).float().mean()]


def _batches(n: int, batch_size: int, generator: torch.Generator):
    """Indices of shuffled mini-batches forever, a new permutation each epoch."""
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
            yield order[start : start + batch_size]


def train(
    model: nn.Module,
    data: Dataset,
    cfg: TrainConfig,
    plan: NetworkPlan,
    *,
    device: str = "cpu",
    seed: int = 0,
    on_log: Callable[[LogPoint], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    histograms: bool = False,
) -> TrainHistory:
    """Train `model` (the network `plan` describes) for cfg.steps updates; stop at once on
    a non-finite loss. `histograms`: every log point also holds each layer's weight,
    gradient and (on the held-out split) activation histograms."""
    x = torch.from_numpy(data.x_train).to(device)
    y = torch.from_numpy(data.y_train).to(device)
    x_test = torch.from_numpy(data.x_test).to(device)
    y_test = torch.from_numpy(data.y_test).to(device)
    modules = dict(model.named_modules())
    layers = [(layer.name, modules[layer.name]) for layer in plan.weighted]
    weights = [m.weight for _, m in layers]
    target = cfg.target_loss if cfg.target_loss is not None else chance_loss(data.num_classes) / 2
    optimizer = make_optimizer(model, cfg)
    batches = _batches(len(y), min(cfg.batch_size, len(y)), torch.Generator().manual_seed(seed))
    model.train()
    history: list[LogPoint] = []
    status, diverged_at, diverged_layer, step = "completed", None, None, 0
    loss_sum, since_log = 0.0, 0

    zero = torch.zeros((), device=device)

    @torch.no_grad()
    def log(step: int, mean_loss: float) -> None:
        # Every number of the point stays a tensor until one read at the end.
        grads = [w.grad for w in weights]
        norms = [g.norm() for g in grads if g is not None]
        activations, handles = watch_activations(model, plan) if histograms else ({}, [])
        try:
            evaluated = _evaluate(model, x_test, y_test)
        finally:
            for handle in handles:
                handle.remove()
        values = [
            *evaluated,
            torch.stack(norms).norm() if norms else zero,
            *(g.std(correction=0) if g is not None else zero for g in grads),
        ]
        test_loss, accuracy, grad_norm, *stds = torch.stack(values).tolist()
        point = LogPoint(
            step=step,
            loss=mean_loss,
            accuracy=accuracy,
            test_loss=test_loss,
            grad_norm=grad_norm,
            layer_grad_std=stds,
            layer_weights=weight_metrics(weights) if cfg.weight_spectra else [],
            layer_histograms=(
                layer_histograms([n for n, _ in layers], weights, activations) if histograms else []
            ),
        )
        history.append(point)
        if on_log is not None:
            on_log(point)

    started = time.perf_counter()
    step = 0  # the steps done when a stop comes
    try:
        for step in range(cfg.steps):
            if should_stop is not None and should_stop():
                status = "interrupted"
                break
            index = next(batches)
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x[index]), y[index])
            value = loss.item()  # the step's one wait on the device: the divergence check
            if not math.isfinite(value):
                status, diverged_at = "diverged", step
                diverged_layer = first_nonfinite_layer(model, x[index])
                break
            loss.backward()
            if step == 0:
                log(0, value)
            optimizer.step()
            loss_sum += value
            since_log += 1
            if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
                log(step + 1, loss_sum / since_log)
                loss_sum, since_log = 0.0, 0
    except KeyboardInterrupt:
        status = "interrupted"
    steps_done = step if status != "completed" else cfg.steps
    if since_log:
        log(steps_done, loss_sum / since_log)
    seconds = time.perf_counter() - started
    initial = history[0].loss if history else math.nan
    final = history[-1].loss if history else math.nan
    if status == "completed" and abs(final - initial) < STUCK_TOLERANCE * abs(initial):
        status = "stuck"
    reached = next((p.step for p in history if p.loss <= target), None)
    return TrainHistory(
        status=status,
        steps=steps_done,
        initial_loss=initial,
        final_loss=final,
        final_accuracy=history[-1].accuracy if history else math.nan,
        diverged_at=diverged_at,
        diverged_layer=diverged_layer,
        target_loss=target,
        steps_to_target=reached,
        history=history,
        layer_names=[n for n, _ in layers],
        seconds=seconds,
    )
