"""Whether a config's data and activations fit in memory: checked while the config is
validated, before anything is allocated (the parameters' bound is plan.py's)."""

from __future__ import annotations

import math
from typing import Any

from .datasets import SHIPPED
from .limits import size_text

# float32 data and activations
MAX_DATA_BYTES = 4 * 2**30
MAX_ACTIVATION_BYTES = 8 * 2**30


def memory_problem(cfg: Any) -> tuple[str, str] | None:
    """(the problem, the fields to blame) when the data or the activations of `cfg` (a
    config.Config, being validated: config.py imports this module) would not fit; None when
    they do."""
    model, data = cfg.model, cfg.data
    shape = f"[{', '.join(map(str, model.input_shape))}]"
    per_input = math.prod(model.input_shape)
    # a shipped dataset holds what it holds, and an npz too: samples only caps them
    shipped = SHIPPED.get(data.name)
    samples = min(data.samples, shipped.samples) if shipped else data.samples
    if shipped is None and data.name != "npz" and 4 * samples * per_input > MAX_DATA_BYTES:
        return (
            f"data: {samples:,} samples (data.samples) of input {shape} (model.input_shape) "
            f"need {size_text(4 * samples * per_input)}; the limit is {size_text(MAX_DATA_BYTES)}: "
            "lower data.samples or model.input_shape",
            "data.samples model.input_shape",
        )
    every_layer, widest = model.plan.values_per_example
    batch = min(cfg.train.batch_size, samples)
    needed = 4 * batch * (per_input + every_layer)
    if needed > MAX_ACTIVATION_BYTES:
        return (
            f"train.batch_size: a batch of {batch:,} needs {size_text(needed)} for the activations "
            f"of the model ({per_input + every_layer:,} values per example); the limit is "
            f"{size_text(MAX_ACTIVATION_BYTES)}: lower train.batch_size, model.width, model.depth "
            "or model.input_shape",
            "train.batch_size model",
        )
    held_out = max(1, round(samples * data.test_fraction))
    needed = 4 * held_out * (per_input + 2 * widest)  # evaluated in one pass, without grads
    if needed > MAX_ACTIVATION_BYTES:
        return (
            f"data.samples: evaluating the {held_out:,} held-out examples needs "
            f"{size_text(needed)}; the limit is {size_text(MAX_ACTIVATION_BYTES)}: lower "
            "data.samples, data.test_fraction or the model's size",
            "data model",
        )
    return None
