"""Results as the public JSON schema (`--json`, summary files) and as flat CSV rows.

The key names here are a stable interface: README.md documents them. Non-finite
numbers become null, since JSON has no NaN or inf.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .experiments import StatsResult
    from .probe import LayerStats


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def layer_json(layer: LayerStats) -> dict[str, Any]:
    """One layer in the DESIGN.md schema, plus pre-activation and symmetry details."""
    return _clean(
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
    return _clean(
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
        }
    )
