"""Property tests of the config loader: whatever a user writes, load_config returns a
Config or raises a WinitError whose message is one line. Never any other exception."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any, get_args

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weightinit_cli.activations import ACTIVATIONS as ACTIVATION_TABLE
from weightinit_cli.config import (
    LAYER_TYPES,
    Config,
    DataConfig,
    InitConfig,
    LayerSpec,
    ModelConfig,
    TrainConfig,
)
from weightinit_cli.data import DATASETS as DATASET_TABLE
from weightinit_cli.errors import ConfigErrors, WinitError
from weightinit_cli.loading import load_config
from weightinit_cli.methods import ALIASES, METHODS

ACTIVATIONS = tuple(ACTIVATION_TABLE)
DATASETS = tuple(DATASET_TABLE)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _names(section: Any) -> list[str]:
    return [info.alias or name for name, info in section.model_fields.items()]


LAYER_CLASSES = get_args(get_args(LayerSpec)[0])
TOP = _names(Config)
SECTIONS = {
    "model": _names(ModelConfig),
    "init": _names(InitConfig),
    "data": _names(DataConfig),
    "train": _names(TrainConfig),
}
LAYER_FIELDS = sorted({name for cls in LAYER_CLASSES for name in _names(cls)})
EVERY_FIELD = sorted({*TOP, *(n for names in SECTIONS.values() for n in names), *LAYER_FIELDS})

# Strings the schema knows, so that random configs get past the first check now and then.
WORDS = sorted(
    {
        *ACTIVATIONS,
        *DATASETS,
        *LAYER_TYPES,
        *METHODS,
        *ALIASES,
        *("same", "valid", "sgd", "adam", "cpu", "cuda", "auto", "scratch", "torch"),
        *("fan_in", "fan_out", "fan_avg", "default", "zeros", "torch_default", "max", "avg"),
    }
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=70),
    st.integers(),
    st.sampled_from([2**31, 2**63, 10**6, 10**9, 10**30, -(10**30)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 0.5, 1.0, 1e-300, 1e300]),
    st.text(max_size=12),
    st.sampled_from(WORDS),
)
keys = st.one_of(st.sampled_from(EVERY_FIELD), st.text(max_size=8), st.integers(-2, 2))
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=20,
)
small_ints = st.integers(min_value=0, max_value=40)
shapes = st.lists(st.one_of(small_ints, st.sampled_from([1, 2, 3, 8, 16, 10**6])), max_size=5)
INTS = {"depth", "width", "units", "channels", "kernel_size", "stride", "groups", "size"}
INTS |= {"num_classes", "samples", "steps", "batch_size", "log_every", "seed"}
FLOATS = {"lr", "momentum", "weight_decay", "noise", "test_fraction", "p", "negative_slope"}
FLOATS |= {"target_loss"}
CHOICES: dict[str, tuple[Any, ...]] = {
    "type": ("dense", "conv2d", "conv3d", *LAYER_TYPES),
    "padding": ("same", "valid", 0, 1, 2),
    "activation": ACTIVATIONS,
    "fn": ACTIVATIONS,
    "method": (*METHODS, *ALIASES),
    "backend": ("scratch", "torch"),
    "mode": ("fan_in", "fan_out", "fan_avg", None),
    "bias": (True, False, "zeros", "torch_default"),
    "global": (True, False),
    "name": DATASETS,
    "optimizer": ("sgd", "adam"),
    "kind": ("max", "avg"),
    "gain": ("default", "auto", 0.5, 1, 2.0),
}
sizes = st.one_of(small_ints, st.sampled_from([1, 2, 3, 8, 16, 64, 512, 10**4, 10**6]))
shapes = st.lists(sizes, max_size=5)
params = st.dictionaries(
    st.sampled_from(["std", "mean", "gain", "mode", "a", "b", "value", "sparsity", "scale"]),
    st.one_of(st.floats(-3, 3), st.sampled_from(WORDS), scalars),
    max_size=3,
)


def mostly(right: st.SearchStrategy, wrong: st.SearchStrategy) -> st.SearchStrategy:
    """`right` four times in five."""
    return st.integers(0, 4).flatmap(lambda i: wrong if i == 0 else right)


def value_for(name: str) -> st.SearchStrategy:
    """What field `name` plausibly holds, mostly of the right kind so that the checks past
    the types (ranges, shapes, memory, method parameters) are reached too."""
    if name in INTS:
        right = sizes
    elif name == "gain":
        right = st.one_of(st.sampled_from(CHOICES[name]), st.floats(0, 3))
    elif name in FLOATS:
        right = st.one_of(st.floats(0, 1), st.floats(allow_nan=True, allow_infinity=True))
    elif name in CHOICES:
        right = st.sampled_from(CHOICES[name])
    elif name == "input_shape":
        right = shapes
    elif name == "params":
        right = params
    elif name == "path":
        right = st.text(max_size=10)
    else:
        right = st.sampled_from(WORDS)
    return mostly(right, st.one_of(scalars, anything))


def section(names: list[str]) -> st.SearchStrategy:
    """Some of a section's fields with plausible values, now and then a stray key."""
    own = st.fixed_dictionaries({}, optional={name: value_for(name) for name in names})
    stray = st.dictionaries(keys, anything, min_size=1, max_size=1)
    return mostly(own, st.builds(lambda a, b: {**a, **b}, own, stray))


def layer_of(cls: Any) -> st.SearchStrategy:
    """A layers item of one type, with that type's fields."""
    tags = get_args(cls.model_fields["type"].annotation)
    fields = [name for name in _names(cls) if name != "type"]
    return st.builds(
        lambda kind, rest: {**rest, "type": kind},
        mostly(st.sampled_from(tags), scalars),
        section(fields) if fields else st.just({}),
    )


layer = st.one_of([layer_of(cls) for cls in LAYER_CLASSES])
model = st.builds(
    lambda fields, layers: {**fields, **({"layers": layers} if layers is not None else {})},
    section(SECTIONS["model"]),
    mostly(st.none(), st.lists(mostly(layer, anything), min_size=1, max_size=6)),
)
structured = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=10), scalars),
        "seed": value_for("seed"),
        "device": mostly(st.sampled_from(["cpu", "auto", "cuda"]), scalars),
        "model": mostly(model, anything),
        "init": mostly(section(SECTIONS["init"]), anything),
        "data": mostly(section(SECTIONS["data"]), anything),
        "train": mostly(section(SECTIONS["train"]), anything),
    },
)
configs = mostly(structured, st.one_of(anything, st.dictionaries(keys, anything)))


def loads_or_says_why(path: Path | None, overrides: list[str] = ()) -> None:
    try:
        cfg = load_config(path, overrides)
    except WinitError as exc:
        # one line, or one line per problem (ConfigErrors): no other line break gets out
        lines = exc.problems if isinstance(exc, ConfigErrors) else [str(exc)]
        assert lines and str(exc) == "\n".join(lines), repr(str(exc))
        assert all(line and len(line.splitlines()) == 1 for line in lines), repr(str(exc))
        assert exc.exit_code == 2
    else:
        assert isinstance(cfg, Config)


@FUZZ
@given(configs)
def test_any_yaml_value_loads_or_fails_in_one_line(value: Any) -> None:
    text = yaml.safe_dump(value, allow_unicode=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_text(text, encoding="utf-8")
        loads_or_says_why(path)


PATHS = [
    *TOP,
    *(f"{name}.{field}" for name, fields in SECTIONS.items() for field in fields),
    *(f"model.layers.{i}.{field}" for i in (0, 1, 5) for field in LAYER_FIELDS),
    *("init.params.std", "init.params.mode", "init.params.gain", "model.input_shape.0"),
]
dotted = mostly(
    st.sampled_from(PATHS),
    st.lists(st.one_of(st.sampled_from(EVERY_FIELD), st.text(max_size=6)), max_size=4).map(
        ".".join
    ),
)
yaml_values = anything.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip())
overrides = st.one_of(
    st.text(max_size=30),
    st.builds(
        lambda key, sep, value: f"{key}{sep}{value}",
        dotted,
        st.sampled_from(["=", "=", "=", "", "==", " = ", "."]),
        st.one_of(
            st.text(max_size=12),
            yaml_values,
            value_for("depth").map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip()),
            st.sampled_from(WORDS),
        ),
    ),
)


@FUZZ
@given(st.lists(overrides, min_size=1, max_size=3))
def test_any_set_override_applies_or_fails_in_one_line(sets: list[str]) -> None:
    loads_or_says_why(None, sets)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(max_size=200).map(lambda t: t.encode("utf-8")),
        configs.map(lambda v: yaml.safe_dump(v).encode("utf-8")[: len(str(v))]),  # cut short
    )
)
def test_any_bytes_load_or_fail_in_one_line(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_bytes(raw)
        loads_or_says_why(path)
