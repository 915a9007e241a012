"""Results as the public JSON schema (`--json`, summary files) and as flat CSV rows.

The key names here are a stable interface: README.md documents them. Non-finite
numbers become null, since JSON has no NaN or inf.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .experiments import CompareResult, StatsResult, TrainResult
    from .meanfield import Criticality
    from .probe import LayerStats
    from .sweep.results import SweepPlan, SweepResult
    from .train import LogPoint, TrainHistory


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float as None (JSON has no NaN or inf)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def layer_json(layer: LayerStats) -> dict[str, Any]:
    """One layer in the DESIGN.md schema, plus pre-activation and symmetry details."""
    return json_safe(
        {
            "index": layer.index,
            "name": layer.name,
            "kind": layer.kind,
            "shape": list(layer.shape),
            "fan_in": layer.fan_in,
            "fan_out": layer.fan_out,
            "activation_fn": layer.activation_fn,
            "weight": layer.weight.to_dict(),
            "expected_weight_std": layer.expected_weight_std,
            "preactivation": layer.preactivation.to_dict(),
            "predicted_preactivation_std": layer.predicted_preactivation_std,
            "activation": layer.activation.to_dict(),
            "predicted_activation_std": layer.predicted_activation_std,
            "grad": layer.grad.to_dict(),
            "activation_grad": layer.activation_grad.to_dict(),
            "dead_fraction": layer.dead_fraction,
            "saturated_fraction": layer.saturated_fraction,
            "symmetric_weights": layer.symmetric_weights,
            "symmetric_grads": layer.symmetric_grads,
        }
    )


def layer_row(layer: LayerStats, **extra: Any) -> dict[str, Any]:
    """One layer as a flat CSV row (nested summaries become prefixed columns)."""
    row: dict[str, Any] = dict(extra)
    for key, value in layer_json(layer).items():
        if isinstance(value, dict):
            row.update({f"{key}_{k}": v for k, v in value.items()})
        elif isinstance(value, list):
            row[key] = "x".join(map(str, value))
        else:
            row[key] = value
    return row


def stats_json(result: StatsResult) -> dict[str, Any]:
    """`winit stats --json`: {"method", "backend", "model", "layers", ...}."""
    return json_safe(
        {
            "method": result.method,
            "backend": result.backend,
            "model": result.model,
            "layers": [layer_json(layer) for layer in result.layers],
            "loss": result.loss,
            "input_second_moment": result.input_second_moment,
            "verdict": {
                "kind": result.verdict.kind,
                "factor": result.verdict.factor,
                "message": result.verdict.message,
            },
            "skipped": result.init.skipped,
            "parameters": [p.to_dict() for p in result.init.parameters],
            **({"spp": [x.to_dict() for x in result.spp]} if result.spp is not None else {}),
            **({"blocks": [b.to_dict() for b in result.blocks]} if result.blocks else {}),
        }
    )


def history_json(history: TrainHistory) -> dict[str, Any]:
    """The "train" object: status, steps, losses, accuracy, divergence and the history."""
    names = history.layer_names
    return json_safe(
        {
            "status": history.status,
            "steps": history.steps,
            "initial_loss": history.initial_loss,
            "final_loss": history.final_loss,
            "final_accuracy": history.final_accuracy,
            "diverged_at": history.diverged_at,
            "diverged_layer": history.diverged_layer,
            "target_loss": history.target_loss,
            "steps_to_target": history.steps_to_target,
            "history": [
                {
                    "step": p.step,
                    "loss": p.loss,
                    "accuracy": p.accuracy,
                    **({"weights": weights_json(p, names)} if p.layer_weights else {}),
                }
                for p in history.history
            ],
        }
    )


# the weight metrics logged per layer (train.weight_spectra), in column order
WEIGHT_METRICS = ("spectral_norm", "stable_rank", "alpha")


def weights_json(point: LogPoint, layer_names: list[str]) -> dict[str, dict[str, Any]]:
    """A log point's weight metrics: {layer: {"spectral_norm", "stable_rank", "alpha"}}."""
    return json_safe(
        {n: m.to_dict() for n, m in zip(layer_names, point.layer_weights, strict=True)}
    )


def weights_at(point: LogPoint | None, layer_names: list[str]) -> dict[str, dict[str, Any]]:
    """weights_json of a point, or {} where there is none or it logged no weight metrics."""
    return weights_json(point, layer_names) if point is not None and point.layer_weights else {}


def metrics_row(point: LogPoint, layer_names: list[str], **extra: Any) -> dict[str, Any]:
    """One log point as a metrics.csv row; per-layer gradient stds get a column each, and
    so do the weight metrics where they were logged."""
    row = dict(extra)
    row.update(
        step=point.step,
        loss=point.loss,
        accuracy=point.accuracy,
        test_loss=point.test_loss,
        grad_norm=point.grad_norm,
    )
    row.update({f"grad_std_{n}": v for n, v in zip(layer_names, point.layer_grad_std, strict=True)})
    for metric in WEIGHT_METRICS if point.layer_weights else ():
        pairs = zip(layer_names, point.layer_weights, strict=True)
        row.update({f"{metric}_{n}": getattr(m, metric) for n, m in pairs})
    return json_safe(row)


def metrics_columns(layer_names: list[str], *extra: str, weight_spectra: bool = False) -> list[str]:
    """metrics.csv's header: `extra` columns first, the weight metrics' last if logged."""
    columns = [*extra, "step", "loss", "accuracy", "test_loss", "grad_norm"]
    columns += [f"grad_std_{n}" for n in layer_names]
    for metric in WEIGHT_METRICS if weight_spectra else ():
        columns += [f"{metric}_{n}" for n in layer_names]
    return columns


def train_json(result: TrainResult, run_dir: str | None) -> dict[str, Any]:
    """`winit train --json` and summary.json: the train summary plus "run_dir"."""
    return {
        "method": result.before.method,
        "backend": result.before.backend,
        "model": result.before.model,
        **history_json(result.history),
        "run_dir": run_dir,
    }


def compare_json(result: CompareResult) -> dict[str, Any]:
    """`winit compare --json`: {"methods": [{"method", "layers", "train"}]}."""
    return {
        "model": result.runs[0].stats.model if result.runs else None,
        "methods": [
            {
                "method": run.method,
                "params": run.params,
                "layers": [layer_json(layer) for layer in run.stats.layers],
                "verdict": run.stats.verdict.message,
                "verdict_kind": run.stats.verdict.kind,
                "train": history_json(run.train) if run.train else None,
                **({"blocks": [b.to_dict() for b in run.stats.blocks]} if run.stats.blocks else {}),
                **(
                    {"spp": [x.to_dict() for x in run.stats.spp]}
                    if run.stats.spp is not None
                    else {}
                ),
            }
            for run in result.runs
        ],
    }


def sweep_json(result: SweepResult) -> dict[str, Any]:
    """`winit sweep --json` and the sweep's summary.json: the grid, the counts, a result
    per grid point (mean and std over seeds) and a row per trial."""
    return json_safe(
        {
            "name": result.sweep.name,
            "run_dir": result.run_dir,
            "status": result.status,
            "grid": result.sweep.grid(),
            "counts": result.counts,
            "ran": result.ran,
            "resumed": result.resumed,
            "groups": [group.to_dict() for group in result.groups],
            "trials": [trial.row() for trial in result.results],
        }
    )


def sweep_plan_json(plan: SweepPlan) -> dict[str, Any]:
    """`winit sweep --dry-run --json`: the grid, the trials, what a run would resume."""
    from .sweep.grid import point_text

    sweep = plan.sweep
    return {
        "name": sweep.name,
        "grid": sweep.grid(),
        "trials": [
            {"trial": t.dirname, "point": point_text(t.point, whole=True)} for t in sweep.trials
        ],
        "resumes": str(plan.resumes) if plan.resumes is not None else None,
        "finished": plan.finished,
    }


def critical_json(
    line: Criticality, around: list[Criticality], chosen: Criticality | None
) -> dict[str, Any]:
    """`winit critical --json`: the line, the states around it, and a chosen sigma_w^2."""
    data: dict[str, Any] = {"critical": asdict(line), "around": [asdict(s) for s in around]}
    if chosen is not None:
        data["chosen"] = {**asdict(chosen), "phase": chosen.phase()}
    return json_safe(data)
