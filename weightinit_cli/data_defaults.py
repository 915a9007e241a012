"""What a dataset fills in where a config leaves it out: the input shape, the classes and the
sample count of a dataset that ships in a package (mnist is [784] for a dense stack and
[1, 28, 28] for a conv2d one, 10 classes, all 5,000 samples), and the input shape of a
user's module. Applied to the raw config data before validation, so that the resolved
config (config.yaml of a run) says the values outright and reads back the same.
Pure Python: no NumPy, no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .datasets import SHIPPED
from .errors import WinitError

DEFAULT_SAMPLES = 2048  # DataConfig.samples' default (kept so that old configs hash the same)
# generated datasets whose input has a natural shape (the rest take any shape you give)
NATURAL_SHAPES: dict[str, tuple[int, ...]] = {
    "spirals": (2,),
    "shapes2d": (1, 16, 16),
    "shapes3d": (1, 8, 8, 8),
}


def _first_layer_type(model: dict[str, Any]) -> Any:
    layers = model.get("layers")
    if isinstance(layers, list) and layers and isinstance(layers[0], dict):
        return layers[0].get("type")
    return None


def shape_for(model: dict[str, Any], data_name: str) -> tuple[int, ...] | None:
    """The input shape `data_name` gives this model, or None where it gives none."""
    shipped = SHIPPED.get(data_name)
    if model.get("module") is not None:
        if shipped is not None:
            return shipped.image_shape or shipped.flat_shape
        return NATURAL_SHAPES.get(data_name)
    kind = _first_layer_type(model) if model.get("layers") is not None else model.get("type")
    if kind is not None and not isinstance(kind, str):
        return None  # not a layer type: validation names it
    if shipped is None:
        natural = NATURAL_SHAPES.get(data_name)
        rank = {None: 1, "dense": 1, "conv2d": 3, "conv3d": 4}.get(kind)
        return natural if natural is not None and len(natural) == rank else None
    if kind in (None, "dense"):
        return shipped.flat_shape
    if kind == "conv2d" and shipped.image_shape is not None and len(shipped.image_shape) == 3:
        return shipped.image_shape
    return None


def fill_from_dataset(raw: Any) -> Any:
    """`raw` config data with the dataset's defaults where it has none (anything odd is
    left as it is, for validation to name)."""
    if not isinstance(raw, dict):
        return raw
    model = raw.get("model", {})
    data = raw.get("data", {})
    if not isinstance(model, dict) or not isinstance(data, dict):
        return raw
    name = data.get("name", "spirals")
    if not isinstance(name, str):
        return raw
    model, data = dict(model), dict(data)
    shipped = SHIPPED.get(name)
    if "input_shape" not in model:
        shape = shape_for(model, name)
        if shape is not None:
            model["input_shape"] = list(shape)
        elif model.get("module") is not None:
            raise WinitError(
                f"model.input_shape: data {name} takes any shape, so your module needs one "
                "(--input-shape 3,32,32, or model.input_shape in the config)"
            )
    if shipped is not None:
        building = model.get("module") is None and model.get("layers") is None
        if building and "num_classes" not in model:
            model["num_classes"] = shipped.classes
        if shipped.samples > DEFAULT_SAMPLES:  # smaller ones are whole at the default anyway
            data.setdefault("samples", shipped.samples)
    return {**raw, "model": model, "data": data}


# what fill_from_dataset fills in from a shipped dataset
FILLED = ("model.input_shape", "model.num_classes", "data.samples")


def refill_for_dataset(
    data: dict[str, Any], base_dataset: str, given: Sequence[str]
) -> dict[str, Any]:
    """A sweep's grid point whose data.name differs from the base config's: `data` (the
    base's resolved data with the point's values) without what the base's dataset filled
    in, so that the point's dataset fills in its own; fields the user gave stay."""
    point = data.get("data", {}).get("name")
    if point == base_dataset or (base_dataset not in SHIPPED and point not in SHIPPED):
        return data
    for field in FILLED:
        if any(field == k or field.startswith(f"{k}.") for k in given):
            continue
        section, key = field.split(".")
        data.get(section, {}).pop(key, None)
    return data


def check_classes(module: str | None, outputs: int, data_name: str) -> None:
    """A user's module must output one value per class of a dataset with fixed classes."""
    shipped = SHIPPED.get(data_name)
    if module is not None and shipped is not None and outputs != shipped.classes:
        raise WinitError(
            f"model.module: the module outputs {outputs} values but data {data_name} has "
            f"{shipped.classes} classes; give it {shipped.classes} outputs "
            f"(--model-arg num_classes={shipped.classes}, if it takes that argument)"
        )
