"""The experiment config: schema and defaults, YAML loading, ``--set`` overrides, errors.

Every default lives here: the field defaults are the ``train`` / ``compare`` defaults
and COMMAND_DEFAULTS holds what other commands change. Every problem with a config is
a one-line WinitError naming the file (or the ``--set``) and the field. No torch, no
NumPy: loading a config must stay instant.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .errors import ShapeError, WinitError
from .methods import METHODS, canonical_name, resolve_params

# Limits that keep a typo (an extra zero or three) from becoming an out-of-memory crash.
MAX_SIZE = 1_000_000
MAX_DEPTH = 10_000
MAX_KERNEL = 1_000
MAX_SAMPLES = 100_000_000
# float32 data and activations, refused before anything is allocated (parameters: models.py)
MAX_DATA_BYTES = 4 * 2**30
MAX_ACTIVATION_BYTES = 8 * 2**30

Activation = Literal[
    "linear", "relu", "leaky_relu", "tanh", "sigmoid", "selu", "gelu", "elu", "silu"
]
Dataset = Literal[
    "spirals", "blobs", "teacher", "gaussian", "shapes2d", "shapes3d", "digits", "npz"
]
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
DATASETS: tuple[str, ...] = get_args(Dataset)

Size = Annotated[int, Field(ge=1, le=MAX_SIZE)]
Kernel = Annotated[int, Field(ge=1, le=MAX_KERNEL)]


def _invalid(message: str) -> PydanticCustomError:
    """A validation error whose message pydantic prints as given, after the field path."""
    return PydanticCustomError("winit", "{reason}", {"reason": message})


def _located(message: str, blame: str = "") -> PydanticCustomError:
    """A validation error whose message already starts with the path it is about.

    `blame`: the space-separated fields a --set must touch to be named as the cause
    (for errors raised above the fields they are about); default: where it is raised.
    """
    return PydanticCustomError("located", "{reason}", {"reason": message, "blame": blame})


def _checked(check: Callable[..., Any], *args: Any) -> Any:
    """Call a WinitError-raising check inside a validator, so the error gets its field path."""
    try:
        return check(*args)
    except WinitError as exc:
        raise _invalid(str(exc)) from None


def _choice_or_number(choices: tuple[str, ...], number: type | tuple[type, ...]) -> BeforeValidator:
    """One readable error for a `Literal[...] | number` field instead of one per union member."""
    expected = ", ".join(choices) + f" or a {'whole ' if number is int else ''}number >= 0"

    def check(value: Any) -> Any:
        if isinstance(value, str) and value in choices:
            return value
        is_number = isinstance(value, number) and not isinstance(value, bool)
        if is_number and math.isfinite(value) and value >= 0:
            return value
        raise _invalid(f"must be {expected}; got {value!r}")

    return BeforeValidator(check)


class _Section(BaseModel):
    # strict: a YAML "30" or `true` is not silently taken for a number.
    model_config = ConfigDict(
        extra="forbid", strict=True, allow_inf_nan=False, use_attribute_docstrings=True
    )


class DenseLayer(_Section):
    type: Literal["dense"]
    units: Size
    """output features"""
    bias: bool = True


class ConvLayer(_Section):
    type: Literal["conv2d", "conv3d"]
    channels: Size
    """output channels"""
    kernel_size: Kernel = 3
    stride: Kernel = 1
    padding: Annotated[
        Literal["same", "valid"] | Annotated[int, Field(ge=0)],
        _choice_or_number(("same", "valid"), int),
    ] = "same"
    """same | valid | zeros added on each side"""
    groups: Size = 1
    bias: bool = True


class FlattenLayer(_Section):
    type: Literal["flatten"]


class ActivationLayer(_Section):
    type: Literal["activation"]
    fn: Activation
    negative_slope: float = 0.01
    """slope for x < 0 (leaky_relu only)"""


class BatchNormLayer(_Section):
    type: Literal["batchnorm"]


class DropoutLayer(_Section):
    type: Literal["dropout"]
    p: float = Field(0.5, ge=0, lt=1)
    """probability of zeroing a unit"""


class PoolLayer(_Section):
    type: Literal["pool"]
    kind: Literal["max", "avg"] = "max"
    size: Kernel = 2
    """window and stride"""
    global_: bool = Field(False, alias="global")
    """pool over all spatial positions; the output is flat (one value per channel)"""


_LayerUnion = (
    DenseLayer
    | ConvLayer
    | FlattenLayer
    | ActivationLayer
    | BatchNormLayer
    | DropoutLayer
    | PoolLayer
)
LayerSpec = Annotated[_LayerUnion, Field(discriminator="type")]
LAYER_TYPES: tuple[str, ...] = tuple(
    tag for cls in get_args(_LayerUnion) for tag in get_args(cls.model_fields["type"].annotation)
)


class ModelConfig(_Section):
    type: Literal["dense", "conv2d", "conv3d"] = "dense"
    """the stack: depth x (layer, activation), then a dense head (conv: global pool first)"""
    input_shape: list[Size] = Field([2], min_length=1)
    """dense [features]; conv2d [C, H, W]; conv3d [C, D, H, W]"""
    depth: int = Field(20, ge=1, le=MAX_DEPTH)
    """hidden layers"""
    width: Size = 64
    """units (dense) or channels (conv) per hidden layer"""
    kernel_size: Kernel = 3
    padding: Literal["same", "valid"] = "same"
    activation: Activation = "relu"
    negative_slope: float = 0.01
    """slope for x < 0 (leaky_relu only)"""
    bias: bool = True
    num_classes: int = Field(3, ge=2, le=MAX_SIZE)
    """outputs; with `layers`, taken from the last layer when not given"""
    layers: list[LayerSpec] | None = Field(None, min_length=1)
    """the whole network, layer by layer; replaces the stack (type, depth, width, ...)"""
    # per example: the values every layer outputs together, and the most one layer outputs
    _activations: tuple[int, int] | None = PrivateAttr(None)
    # the weighted layers: name, weight shape (PyTorch layout), groups
    _weights: list[tuple[str, tuple[int, ...], int]] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _shapes_fit(self) -> ModelConfig:
        from .models import plan_layers  # here, not at the top: models imports this module

        try:
            plans = plan_layers(self)
        except ShapeError as exc:
            raise _located(str(exc)) from None
        sizes = [math.prod(plan.out_shape) for plan in plans]
        self._activations = (sum(sizes), max(sizes))
        self._weights = [
            (plan.name, tuple(plan.weight_shape), plan.groups)
            for plan in plans
            if plan.weight_shape is not None
        ]
        outputs = plans[-1].out_shape[0]
        if self.layers is not None:
            if "num_classes" in self.model_fields_set and self.num_classes != outputs:
                raise _located(
                    f"model.num_classes: is {self.num_classes} but the layers output {outputs} "
                    "values; make them agree or leave num_classes out"
                )
            if outputs < 2:
                raise _located(
                    f"model.layers: the network outputs {outputs} value; "
                    "a classifier needs at least 2 classes"
                )
            self.num_classes = outputs
        return self


class InitConfig(_Section):
    method: str = "he_normal"
    """a method or alias from `winit methods`; stored by its canonical name"""
    backend: Literal["scratch", "torch"] = "scratch"
    mode: Literal["fan_in", "fan_out", "fan_avg"] | None = None
    """the fan to scale by, for methods that take one; default: the method's own"""
    gain: Annotated[
        Literal["default", "auto"] | Annotated[float, Field(ge=0)],
        _choice_or_number(("default", "auto"), (int, float)),
    ] = "default"
    """default: the method's own; auto: calculate_gain of the activation after each layer"""
    bias: Literal["zeros", "torch_default"] = "zeros"
    params: dict[str, Any] = {}
    """extra method parameters, e.g. {std: 0.02} for normal"""

    # Field validators run in field order, so info.data holds the method already.
    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        return _checked(canonical_name, method)

    @field_validator("mode")
    @classmethod
    def _method_takes_mode(cls, mode: str | None, info: ValidationInfo) -> str | None:
        if mode is not None and "method" in info.data:
            _checked(resolve_params, info.data["method"], {"mode": mode})
        return mode

    @field_validator("gain")
    @classmethod
    def _method_takes_gain(cls, gain: str | float, info: ValidationInfo) -> str | float:
        method = info.data.get("method")
        if not isinstance(gain, str) and method:
            if not METHODS[method].takes_gain:
                raise _invalid(f"{method} takes no gain; leave gain at default")
            _checked(resolve_params, method, {"gain": gain})
        return gain

    @field_validator("params")
    @classmethod
    def _params_fit_method(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        for key, default in (("mode", None), ("gain", "default")):
            if key in params and info.data.get(key, default) != default:
                raise _invalid(f"{key} is given twice: as init.{key} and init.params.{key}")
        if "method" in info.data:
            _checked(resolve_params, info.data["method"], params)
        return params

    def method_params(self) -> dict[str, Any]:
        """The parameters the user gave the method (params with mode merged), not its defaults."""
        return {**self.params, **({"mode": self.mode} if self.mode else {})}


class DataConfig(_Section):
    name: Dataset = "spirals"
    samples: int = Field(2048, ge=8, le=MAX_SAMPLES)
    path: str | None = None
    """the .npz file to load (data.name npz)"""
    noise: float = Field(0.1, ge=0)
    test_fraction: float = Field(0.2, gt=0, lt=1)

    # after the fields, so that the error blames whichever of name and path a --set changed
    @model_validator(mode="after")
    def _npz_needs_path(self) -> DataConfig:
        if self.path is None and self.name == "npz":
            raise _located("data.path: required when data.name is npz: the .npz file to load")
        return self


class TrainConfig(_Section):
    steps: int = Field(400, ge=0, le=10**9)
    batch_size: int = Field(128, ge=1, le=MAX_SAMPLES)
    optimizer: Literal["sgd", "adam"] = "sgd"
    # Plain SGD at 0.02 rather than momentum 0.9 at 0.01: with momentum a 20-layer He ReLU
    # net on spirals overshoots and climbs back to chance, and Xavier still trains (half the
    # chance loss by step 190), which hides the textbook contrast; at 0.05 He's loss spikes.
    lr: float = Field(0.02, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    """sgd only"""
    weight_decay: float = Field(0.0, ge=0)
    log_every: int = Field(10, ge=1)
    target_loss: float | None = Field(None, gt=0)
    """the loss whose first crossing compare reports; default half the chance loss ln(K)/2"""


class Config(_Section):
    name: str | None = None
    """defaults to the config file's stem"""
    seed: int = Field(0, ge=0, le=2**32 - 1)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    model: ModelConfig = Field(default_factory=ModelConfig)
    init: InitConfig = Field(default_factory=InitConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="after")
    def _fits_in_memory(self) -> Config:
        _check_memory(self)
        return self

    @model_validator(mode="after")
    def _method_fits_layers(self) -> Config:
        """An init that cannot apply to a layer (identity on a non-square one) is refused
        here, before any run directory exists."""
        from .methods import check_weight_shape

        for name, shape, groups in self.model._weights:
            try:
                check_weight_shape(self.init.method, name, shape, groups)
            except ShapeError as exc:
                raise _located(f"init.method: {exc}", blame="init.method model") from None
        return self


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.{0 if n_bytes % 2**30 == 0 else 1}f} GiB"


def _check_memory(cfg: Config) -> None:
    """Refuse data and activations that would not fit, before anything is allocated."""
    model, data = cfg.model, cfg.data
    shape = f"[{', '.join(map(str, model.input_shape))}]"
    per_input = math.prod(model.input_shape)
    # digits holds 1797 examples and an npz what it holds: samples only caps them
    samples = min(data.samples, 1797) if data.name == "digits" else data.samples
    if data.name not in ("digits", "npz") and 4 * samples * per_input > MAX_DATA_BYTES:
        raise _located(
            f"data: {samples:,} samples (data.samples) of input {shape} (model.input_shape) "
            f"need {_gib(4 * samples * per_input)}; the limit is {_gib(MAX_DATA_BYTES)}: "
            "lower data.samples or model.input_shape",
            blame="data.samples model.input_shape",
        )
    if model._activations is None:  # built without validation (model_construct)
        return
    every_layer, widest = model._activations
    batch = min(cfg.train.batch_size, samples)
    needed = 4 * batch * (per_input + every_layer)
    if needed > MAX_ACTIVATION_BYTES:
        raise _located(
            f"train.batch_size: a batch of {batch:,} needs {_gib(needed)} for the activations "
            f"of the model ({per_input + every_layer:,} values per example); the limit is "
            f"{_gib(MAX_ACTIVATION_BYTES)}: lower train.batch_size, model.width, model.depth "
            "or model.input_shape",
            blame="train.batch_size model",
        )
    held_out = max(1, round(samples * data.test_fraction))
    needed = 4 * held_out * (per_input + 2 * widest)  # evaluated in one pass, without grads
    if needed > MAX_ACTIVATION_BYTES:
        raise _located(
            f"data.samples: evaluating the {held_out:,} held-out examples needs "
            f"{_gib(needed)}; the limit is {_gib(MAX_ACTIVATION_BYTES)}: lower data.samples, "
            "data.test_fraction or the model's size",
            blame="data model",
        )


# What a command changes from the field defaults above (which are train's and compare's).
COMMAND_DEFAULTS: dict[str, dict[str, Any]] = {
    # One forward/backward pass: a deep, wide net on isotropic inputs shows what the init does.
    "stats": {
        "model": {"depth": 30, "width": 512, "input_shape": [16]},
        "data": {"name": "gaussian"},
        "train": {"batch_size": 512},
    },
}


# What `--layer conv2d|conv3d` brings with it, so that the switch alone gives a net that
# fits its input and data (a file or --set can still change any of it).
LAYER_DEFAULTS: dict[str, dict[str, Any]] = {
    "dense": {"model": {"type": "dense"}},
    "conv2d": {
        "model": {"type": "conv2d", "input_shape": [1, 16, 16], "depth": 8, "width": 16},
        "data": {"name": "shapes2d"},
    },
    "conv3d": {
        "model": {"type": "conv3d", "input_shape": [1, 8, 8, 8], "depth": 4, "width": 8},
        "data": {"name": "shapes3d"},
    },
}


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and reads 1e-3 as a number (YAML 1.2)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in first_line
            except TypeError:  # an unhashable key: SafeLoader reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    problem=f"duplicate key {key!r} (first on line {first_line[key]})",
                    problem_mark=key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


# PyYAML follows YAML 1.1, where a float needs a dot: without this, 1e-3 is a string.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 -- _Loader is a SafeLoader


def _shown(value: Any) -> str:
    """A value as a short, one-line phrase for `...; got <phrase>`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    if isinstance(value, str):
        return f"a string {text}"
    if isinstance(value, (list, tuple)):
        return f"a list {text}"
    if isinstance(value, dict):
        return f"a mapping {text}"
    return text


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error as one line: `line:column: problem (context)` where yaml knows them."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return " ".join(str(exc).split())
    problem = exc.problem or exc.context or "invalid YAML"
    if exc.problem and exc.context:
        problem += f" ({exc.context})"
    if "'\\t'" in problem:
        problem += "; YAML indents with spaces, never tabs"
    problem = " ".join(problem.split())
    mark = exc.problem_mark or exc.context_mark
    return f"{mark.line + 1}:{mark.column + 1}: {problem}" if mark else problem


def _read_yaml(path: Path) -> dict[str, Any]:
    """The mapping a config file holds; a one-line WinitError for anything else."""
    if path.is_dir():
        raise WinitError(f"{path}: is a directory, not a config file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise WinitError(f"{path}: no such config file") from None
    except OSError as exc:
        raise WinitError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        if b"\0" in raw:
            raise UnicodeDecodeError("utf-8", raw, raw.index(b"\0"), len(raw), "NUL byte")
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WinitError(f"{path}: not a text file; a config is YAML text") from None
    try:
        content = _parse_yaml(text)
    except yaml.YAMLError as exc:
        raise WinitError(f"{path}:{_yaml_problem(exc)}") from None
    if content is None:
        raise WinitError(
            f"{path}: the file is empty; expected sections model:, init:, data:, train:"
        )
    if not isinstance(content, dict):
        raise WinitError(
            f"{path}: expected a mapping of sections (model:, init:, data:, train:) "
            f"at the top; got {_shown(content)}"
        )
    return content


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML config file (one-line WinitError otherwise)."""
    try:
        return _read_yaml(Path(path))
    except WinitError as exc:
        exc.args = (_one_line(str(exc)),)
        raise


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """`top` over `base`: mappings merge key by key, anything else (lists too) replaces."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value` as (["a", "b", "c"], value parsed as YAML)."""
    key, equals, value = text.partition("=")
    key = key.strip()
    if not equals or not key:
        raise WinitError(f"--set needs KEY=VALUE; got {text!r}")
    keys = key.split(".")
    if "" in keys:
        raise WinitError(f"--set {text}: {key!r} has an empty part")
    try:
        return keys, _parse_yaml(value)
    except yaml.YAMLError as exc:
        raise WinitError(f"--set {text}: cannot parse the value: {_yaml_problem(exc)}") from None


def parse_value(text: str) -> Any:
    """A command-line value read as YAML: 30 is an int, 1e-3 a float, [1, 2] a list."""
    try:
        return _parse_yaml(text)
    except yaml.YAMLError as exc:
        raise WinitError(f"cannot parse {text!r}: {_yaml_problem(exc)}") from None


def set_dotted(data: dict[str, Any], keys: Sequence[str], value: Any, source: str) -> None:
    """Set `value` at the path `keys` of `data` in place; list items by index.

    `source` names the setting in an error (`--set model.depth=3`, `grid model.depth`).
    """
    node: Any = data
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        if isinstance(node, dict):
            if not last and not isinstance(node.get(key), (dict, list)):
                node[key] = {}  # absent: left at its defaults (a scalar: pydantic says so)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            key = int(key)
        else:
            where = ".".join(keys[:depth])
            what = f"a list of {len(node)}" if isinstance(node, list) else repr(node)
            raise WinitError(f"{source}: {where} is {what}; it has no {key!r}")
        if last:
            node[key] = value
        else:
            node = node[key]


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of `data` with each `dotted.key=value` set in order; list items by index."""
    data = copy.deepcopy(data)
    for text in overrides:
        keys, value = _parse_override(text)
        set_dotted(data, keys, value, f"--set {text}")
    return data


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The config classes an annotation can hold (through Optional, list, Union, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _step(section: type[BaseModel], key: str) -> list[type[BaseModel]]:
    """The classes behind a field of `section`, or `section` itself if `key` is its type tag."""
    if key in section.model_fields:
        return _models_in(section.model_fields[key].annotation)
    tag = section.model_fields.get("type")
    return [section] if tag is not None and key in get_args(tag.annotation) else []


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The field names valid where a pydantic error location (with union tags) ends."""
    sections: list[type[BaseModel]] = [Config]
    for key in loc[:-1]:
        if isinstance(key, str):
            sections = [found for section in sections for found in _step(section, key)]
    if len(sections) != 1:
        return []
    return [field.alias or name for name, field in sections[0].model_fields.items()]


def _readable_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The location without pydantic's union tags: model.layers.0.units, not ...0.dense.units."""
    return tuple(
        key
        for i, key in enumerate(loc)
        if not (i and isinstance(loc[i - 1], int) and key in LAYER_TYPES)
    )


# pydantic errors about the kind of value (a string where a number belongs, ...), which
# say what was expected but not what was found
_TYPE_ERRORS = {
    "int_type",
    "int_parsing",
    "int_from_float",
    "float_type",
    "float_parsing",
    "bool_type",
    "bool_parsing",
    "string_type",
    "list_type",
    "dict_type",
    "literal_error",
}
_QUOTED = ", ".join(f"'{tag}'" for tag in LAYER_TYPES)


def _describe(error: Mapping[str, Any]) -> str:
    """One pydantic error as `dotted.path: message`."""
    kind, value = error["type"], error.get("input")
    if kind == "located":
        return error["msg"]
    loc = _readable_loc(error["loc"])
    path = ".".join(map(str, loc))
    if kind == "extra_forbidden" and loc in (("grid",), ("seeds",)):
        return f"unknown field {path}: a sweep file's {path}; run the file with winit sweep"
    if kind in ("extra_forbidden", "invalid_key"):
        known = _fields_at(error["loc"])
        parent = "".join(f"{key}." for key in loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean {parent}{close[0]}?" if close else f"expected {', '.join(known)}"
        return f"unknown field {path} ({hint})"
    if kind == "model_type":  # a section that is not a mapping: `model: [1, 2]`
        fields = _fields_at((*error["loc"], ""))
        listed = ", ".join(fields[:5]) + (", ..." if len(fields) > 5 else "")
        return f"{path}: expected a mapping of fields ({listed}); got {_shown(value)}"
    if kind == "dict_type":  # init.params
        return f"{path}: expected a mapping of names to values; got {_shown(value)}"
    if kind in ("model_attributes_type", "union_tag_not_found"):  # a layers item
        return (
            f"{path}: expected a mapping with a type ({_QUOTED}) and that layer's fields; "
            f"got {_shown(value)}"
        )
    message = error["msg"]
    if kind == "literal_error" and isinstance(value, str):
        message += f"; got {_shown(value).removeprefix('a string ')}"
    elif kind in _TYPE_ERRORS:
        message += f"; got {_shown(value)}"
        if isinstance(value, str) and kind.startswith(("int", "float")) and _numeric(value):
            message += " (write numbers without quotes)"
    return f"{path}: {message}" if path else message


def _blame(locs: Sequence[tuple[Any, ...]], source: str, overrides: Sequence[str]) -> str:
    """The last --set touching one of these locations (or a section above), else the file."""
    paths = [[str(key) for key in loc] for loc in locs]
    for text in reversed(overrides):
        keys = text.partition("=")[0].strip().split(".")
        for path in paths:
            shared = min(len(keys), len(path))
            if keys[:shared] == path[:shared]:
                return f"--set {text}"
    return source


def _validate(data: dict[str, Any], source: str, overrides: Sequence[str] = ()) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # A misspelt key also makes the real one "missing": the spelling is the news.
        first = min(errors, key=lambda error: error["type"] != "extra_forbidden")
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        blame = (first.get("ctx") or {}).get("blame")
        locs = [tuple(field.split(".")) for field in blame.split()] if blame else []
        where = _blame(locs or [_readable_loc(first["loc"])], source, overrides)
        raise WinitError(f"{where}: {_describe(first)}{more}") from None


def config_from_data(data: dict[str, Any], source: str = "config") -> Config:
    """A Config from plain data (a resolved config with changes), validated like a file."""
    return _validate(copy.deepcopy(data), source)


def _command_defaults(command: str) -> dict[str, Any]:
    return copy.deepcopy(COMMAND_DEFAULTS.get(command, {}))


def default_config(command: str = "train") -> Config:
    """The built-in config of a command (stats, train, compare, ...), used without a file."""
    return _validate({"name": "default", **_command_defaults(command)}, "defaults")


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    command: str = "train",
    layer: str | None = None,
    content: Mapping[str, Any] | None = None,
) -> Config:
    """The command's defaults, `layer`'s defaults, the YAML file, then each `--set` override.

    `content`: the file's mapping, already read (read_config_file) and perhaps trimmed of
    keys that are not config (a sweep's grid); `path` then only names it.
    """
    try:
        return _load(path, overrides, command, layer, content)
    except WinitError as exc:
        # user text (a key, a --set, a file name) may hold a line break: the error is one line
        exc.args = (_one_line(str(exc)),)
        raise


def _one_line(text: str) -> str:
    """`text` with line breaks and other unprintable characters escaped, as repr() does."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _load(
    path: str | Path | None,
    overrides: Sequence[str],
    command: str,
    layer: str | None,
    content: Mapping[str, Any] | None = None,
) -> Config:
    data = _command_defaults(command)
    if layer is not None:
        if layer not in LAYER_DEFAULTS:
            raise WinitError(f"--layer must be one of {', '.join(LAYER_DEFAULTS)}; got {layer!r}")
        data = _deep_merge(data, copy.deepcopy(LAYER_DEFAULTS[layer]))
    source, name = "defaults", "default"
    if path is not None:
        source, name = str(path), Path(path).stem
        file_data = _read_yaml(Path(path)) if content is None else copy.deepcopy(dict(content))
        data = _deep_merge(data, file_data)
    if data.get("name") is None:
        data["name"] = name
    return _validate(apply_overrides(data, overrides), source, overrides)


def config_data(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain YAML/JSON data, with the keys a config file uses."""
    return cfg.model_dump(mode="json", by_alias=True)


class _Dumper(yaml.SafeDumper):
    """Block-style sections, but lists of plain values inline: `input_shape: [1, 16, 16]`."""


def _represent_list(dumper: yaml.SafeDumper, items: list[Any]) -> yaml.Node:
    inline = not any(isinstance(item, (dict, list)) for item in items)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=inline)


_Dumper.add_representer(list, _represent_list)


def to_yaml(data: Any) -> str:
    """Plain data as YAML in the style of winit's config files."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def config_to_yaml(cfg: Config) -> str:
    """The resolved config as YAML that load_config reads back to the same config."""
    return to_yaml(config_data(cfg))


def config_hash(cfg: Config) -> str:
    """12 hex digits identifying the experiment: sha256 of its canonical JSON, name excluded."""
    canonical = json.dumps(
        {k: v for k, v in config_data(cfg).items() if k != "name"},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _draft7(node: Any) -> Any:
    """Pydantic's 2020-12 schema with `$defs` renamed to draft-7's `definitions`."""
    if isinstance(node, dict):
        return {("definitions" if k == "$defs" else k): _draft7(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_draft7(item) for item in node]
    if isinstance(node, str) and node.startswith("#/$defs/"):
        return "#/definitions/" + node.removeprefix("#/$defs/")
    return node


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 7) of a config file, for editors and validators."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        **_draft7(Config.model_json_schema()),
    }
