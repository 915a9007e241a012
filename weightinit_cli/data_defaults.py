"""What a dataset fills in where a config leaves it out: the input shape, the classes and the
sample count of a dataset that ships in a package (mnist is [784] for a dense stack and
[1, 28, 28] for a conv2d one, 10 classes, all 5,000 samples), the input shape of a
user's module, and the vocabulary of a transformer on a token dataset. Applied to the raw
config data before validation, so that the resolved config (config.yaml of a run) says the
values outright and reads back the same.
Pure Python: no NumPy, no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .datasets import SHIPPED, TOKEN_VOCABULARY
from .errors import WinitError

if TYPE_CHECKING:
    from .plan import NetworkPlan

DEFAULT_SAMPLES = 2048  # DataConfig.samples' default (kept so that old configs hash the same)
DEFAULT_CLASSES = 3  # ModelConfig.num_classes' default
# generated datasets whose input has a natural shape (the rest take any shape you give)
NATURAL_SHAPES: dict[str, tuple[int, ...]] = {
    "spirals": (2,),
    "shapes2d": (1, 16, 16),
    "shapes3d": (1, 8, 8, 8),
    "pointer": (16,),
}
TOKEN_NAMES = " or ".join(TOKEN_VOCABULARY)


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
        ranks = {None: 1, "dense": 1, "conv2d": 3, "conv3d": 4, "transformer": 1, "embedding": 1}
        rank = ranks.get(kind)
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
    if model.get("module") is None and model.get("layers") is None:
        _fill_vocabulary(model, name)
    if shipped is not None:
        building = model.get("module") is None and model.get("layers") is None
        if building and "num_classes" not in model:
            model["num_classes"] = shipped.classes
        if shipped.samples > DEFAULT_SAMPLES:  # smaller ones are whole at the default anyway
            data.setdefault("samples", shipped.samples)
    return {**raw, "model": model, "data": data}


def _fill_vocabulary(model: dict[str, Any], name: str) -> None:
    """A transformer stack reads a token dataset, and takes its vocabulary from it."""
    if model.get("type") != "transformer":
        return
    vocabulary = TOKEN_VOCABULARY.get(name)
    if vocabulary is None:
        raise WinitError(
            f"data.name: a transformer reads token ids, and {name} is no token dataset; "
            f"use {TOKEN_NAMES}"
        )
    shape, classes = model.get("input_shape"), model.get("num_classes", DEFAULT_CLASSES)
    if "vocab_size" in model or not isinstance(shape, list) or len(shape) != 1:
        return  # given, or a shape that validation names
    if all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in (*shape, classes)):
        model["vocab_size"] = vocabulary(shape[0], classes)


def check_tokens(plan: NetworkPlan, classes: int, data_name: str, vocab_field: str) -> None:
    """A network that starts with an embedding reads a token dataset, with a vocabulary
    that holds its token ids, and a token dataset only such a network (of winit's: a
    user's module reads what it likes). `vocab_field`: the embedding's vocab_size field."""
    first = plan.layers[0]
    vocabulary = TOKEN_VOCABULARY.get(data_name)
    if first.kind != "embedding":
        if vocabulary is not None:
            raise WinitError(
                f"data.name: {data_name} is a sequence of token ids, which only a network "
                "that starts with an embedding reads (model.type: transformer, or an "
                "embedding first in model.layers)"
            )
        return
    if vocabulary is None:
        raise WinitError(
            f"data.name: the network's embedding reads token ids, and {data_name} is no token "
            f"dataset; use {TOKEN_NAMES}"
        )
    assert plan.input_shape is not None
    length, have = plan.input_shape[0], first.spec.vocab_size
    need = vocabulary(length, classes)
    if have < need:
        raise WinitError(
            f"{vocab_field}: is {have}, but data {data_name} of {length} tokens in {classes} "
            f"classes (model.input_shape, model.num_classes) has token ids 0 .. {need - 1}: "
            f"make it at least {need}"
        )


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
