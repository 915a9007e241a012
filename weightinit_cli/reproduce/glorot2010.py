"""Glorot & Bengio 2010, Understanding the difficulty of training deep feedforward neural
networks (AISTATS): the standard U(±1/√n) init shrinks a tanh net's activations layer by
layer and its back-propagated gradients towards the input; the normalized init (Xavier)
keeps the gradients' scale, and mean-field theory predicts both."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..plots import Chart
from .finding import Finding, Reproduction

if TYPE_CHECKING:
    from ..config import Config
    from ..experiments import StatsResult

INITS = {
    "standard U(±1/√n)": ("variance_scaling", {"scale": 1 / 3, "distribution": "uniform"}),
    "normalized (xavier_uniform)": ("xavier_uniform", {}),
}
ACTS = "activation std per layer"
GRADS = "backprop gradient std per layer (towards the input)"


def gradient_theory_error(result: StatsResult) -> float:
    """Largest relative error of the back-propagated gradient std per layer (relative to the
    output layer's) against the mean-field backward recursion."""
    from ..meanfield import predict_gradient_ratios

    layers, records = result.layers, result.init.layers
    predicted = predict_gradient_ratios(
        [r.fan_out * r.target_std**2 for r in records],
        [layer.activation_fn for layer in layers],
        [layer.predicted_preactivation_std**2 for layer in layers],
    )
    last = layers[-1].activation_grad.std
    return max(
        abs((layer.activation_grad.std / last) / math.sqrt(ratio) - 1)
        for layer, ratio in zip(layers[:-1], predicted[:-1], strict=True)
    )


def run(cfg: Config, fast: bool) -> Finding:
    from ..experiments import load_dataset, run_stats
    from ..meanfield import per_layer_decay

    data = load_dataset(cfg)
    rows: list[dict[str, Any]] = []
    profiles = {}
    for label, (method, params) in INITS.items():
        result = run_stats(cfg, data, "cpu", cfg.init.spec_for(method, params))
        hidden = result.layers[:-1]
        acts = [layer.activation.std for layer in hidden]
        grads = [layer.activation_grad.std for layer in hidden]
        rows.append(
            {
                "init": label,
                ACTS: per_layer_decay(acts),
                GRADS: per_layer_decay(grads[::-1]),
                "max theory error": max(
                    abs(layer.activation.std / layer.predicted_activation_std - 1)
                    for layer in hidden
                ),
                "max gradient theory error": gradient_theory_error(result),
            }
        )
        profiles[label] = result.layers
    standard, normalized = rows
    agree = (
        standard[ACTS] < 0.85
        and abs(1 - normalized[GRADS]) < 0.5 * abs(1 - standard[GRADS])
        and all(row["max theory error"] < 0.15 for row in rows)
        and all(row["max gradient theory error"] < 0.15 for row in rows)
    )
    measured = (
        f"standard: activations x{standard[ACTS]:.2f} per layer, gradients "
        f"x{standard[GRADS]:.2f} per layer towards the input; normalized: "
        f"x{normalized[ACTS]:.2f} and x{normalized[GRADS]:.2f}; "
        f"mean-field within {max(r['max theory error'] for r in rows):.1%} (activations) and "
        f"{max(r['max gradient theory error'] for r in rows):.1%} (gradients) at every layer"
    )
    charts = {
        "glorot2010.png": Chart(
            "std_profiles", {"profiles": profiles, "title": "Glorot & Bengio 2010"}
        )
    }
    return REPRODUCTION.finding(measured, agree, rows, charts)


REPRODUCTION = Reproduction(
    "glorot2010",
    "Glorot & Bengio 2010",
    "in a 5-layer tanh net of 1000 units, the standard U(±1/√n) init shrinks the "
    "activations layer by layer and the back-propagated gradients towards the input; "
    "the normalized init keeps the gradients' scale far better, and mean-field theory "
    "predicts the activations",
    run,
)
