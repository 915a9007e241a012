"""Configs in and out: config files, `--set` overrides, errors people can act on, and the
YAML and hash a run directory keeps (the YAML itself is read and written by yamlio.py).

A file is merged over the command's defaults, then short options and each `--set` apply
in order, and pydantic validates the result (config.py). Every mistake becomes a
WinitError naming the file (or the `--set` to blame) and the field path; a config with
several mistakes lists each on a line of its own, in pydantic's order with misspelt keys
first. No torch.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from .command_defaults import COMMAND_DEFAULTS, LAYER_DEFAULTS
from .config import (
    LATER_FIELDS,
    LATER_INIT_FIELDS,
    LATER_TRAIN_FIELDS,
    LAYER_TYPES,
    MODULE_FIELDS,
    STACK_FIELDS,
    TRACKED_COMMANDS,
    TRACKER_FIELDS,
    Config,
)
from .data_defaults import shape_for
from .datasets import SHIPPED
from .errors import ConfigErrors, WinitError
from .limits import clip, excerpt
from .printable import printable
from .yamlio import parse_yaml, read_yaml, to_yaml, value_phrase, yaml_problem


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML config file (one-line WinitError otherwise)."""
    try:
        return read_yaml(Path(path))
    except WinitError as exc:
        exc.args = (printable(str(exc)),)
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
        raise WinitError(f"--set needs KEY=VALUE; got {excerpt(text)}")
    keys = key.split(".")
    if "" in keys:
        raise WinitError(f"{set_label(text)}: {excerpt(key)} has an empty part")
    try:
        return keys, parse_yaml(value)
    except yaml.YAMLError as exc:
        problem = yaml_problem(exc)
        raise WinitError(f"{set_label(text)}: cannot parse the value: {problem}") from None


def set_label(text: str) -> str:
    """How an error names a `--set` (cut short: the value may be long)."""
    return f"--set {clip(text)}"


def parse_value(text: str) -> Any:
    """A command-line value read as YAML: 30 is an int, 1e-3 a float, [1, 2] a list."""
    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        raise WinitError(f"cannot parse {excerpt(text)}: {yaml_problem(exc)}") from None


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
        elif isinstance(node, list) and _index(key) < len(node):
            key = int(key)
        else:
            where = ".".join(keys[:depth])
            what = f"a list of {len(node)}" if isinstance(node, list) else excerpt(node)
            raise WinitError(f"{source}: {where} is {what}; it has no {excerpt(key)}")
        if last:
            node[key] = value
        else:
            node = node[key]


def _index(key: str) -> int:
    """The list index a dotted key's part names (`layers.2`), else one past any list. ASCII
    digits only, and few of them: int() of '²', or of 5,000 digits, raises."""
    return int(key) if key.isascii() and key.isdigit() and len(key) <= 9 else 1 << 62


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of `data` with each `dotted.key=value` set in order; list items by index."""
    data = copy.deepcopy(data)
    for text in overrides:
        keys, value = _parse_override(text)
        set_dotted(data, keys, value, set_label(text))
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


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _describe(error: Mapping[str, Any]) -> str:
    """One pydantic error as `dotted.path: message`."""
    kind, value = error["type"], error.get("input")
    if kind == "located":
        return error["msg"]
    loc = _readable_loc(error["loc"])
    path = ".".join(clip(str(key), 40) for key in loc)  # a key may be 100,000 characters
    if kind == "extra_forbidden" and loc in (("grid",), ("seeds",)):
        return f"unknown field {path}: a sweep file's {path}; run the file with winit sweep"
    if kind in ("extra_forbidden", "invalid_key"):
        known = _fields_at(error["loc"])
        parent = "".join(f"{clip(str(key), 40)}." for key in loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean {parent}{close[0]}?" if close else f"expected {', '.join(known)}"
        return f"unknown field {path} ({hint})"
    if kind == "model_type":  # a section that is not a mapping: `model: [1, 2]`
        fields = _fields_at((*error["loc"], ""))
        listed = ", ".join(fields[:5]) + (", ..." if len(fields) > 5 else "")
        return f"{path}: expected a mapping of fields ({listed}); got {value_phrase(value)}"
    if kind == "dict_type":  # init.params
        return f"{path}: expected a mapping of names to values; got {value_phrase(value)}"
    if kind in ("model_attributes_type", "union_tag_not_found"):  # a layers item
        return (
            f"{path}: expected a mapping with a type ({_QUOTED}) and that layer's fields; "
            f"got {value_phrase(value)}"
        )
    # pydantic may quote the input; an unknown layer type's message lists every type
    message = clip(error["msg"], 300 if kind == "union_tag_invalid" else 200)
    if kind == "literal_error" and isinstance(value, str):
        message += f"; got {value_phrase(value).removeprefix('a string ')}"
    elif kind in _TYPE_ERRORS:
        message += f"; got {value_phrase(value)}"
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
                return set_label(text)
    return source


def _validate(data: dict[str, Any], source: str, overrides: Sequence[str] = ()) -> Config:
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        # A misspelt key also makes the real one "missing": the spelling is the news.
        errors = sorted(exc.errors(), key=lambda error: error["type"] != "extra_forbidden")
        lines: list[str] = []
        for error in errors:
            blame = (error.get("ctx") or {}).get("blame")
            locs = [tuple(field.split(".")) for field in blame.split()] if blame else []
            where = _blame(locs or [_readable_loc(error["loc"])], source, overrides)
            line = printable(f"{where}: {_describe(error)}")
            if line not in lines:
                lines.append(line)
        raise ConfigErrors(lines) from None
    if cfg.model.module is not None and cfg.init.parametrization != "sp":
        # a module's readout and width show in its shapes at other widths: read them now,
        # before any run starts (torch is imported already: the module was traced)
        from .mup_shapes import parametrization_of

        try:
            parametrization_of(cfg)
        except WinitError as exc:
            fields = [("model", "readout"), ("model", "width_arg"), ("model", "module")]
            where = _blame(fields, source, overrides)
            raise ConfigErrors([printable(f"{where}: {exc}")]) from None
    return cfg


def config_from_data(data: dict[str, Any], source: str = "config") -> Config:
    """A Config from plain data (a resolved config with changes), validated like a file."""
    return _validate(copy.deepcopy(data), source)


def _command_defaults(command: str) -> dict[str, Any]:
    return copy.deepcopy(COMMAND_DEFAULTS.get(command, {}))


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
    except ConfigErrors:
        raise  # a line per problem, each escaped already
    except WinitError as exc:
        # user text (a key, a --set, a file name) may hold a line break: the error is one line
        exc.args = (printable(str(exc)),)
        raise


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
            raise WinitError(
                f"--layer must be one of {', '.join(LAYER_DEFAULTS)}; got {excerpt(layer)}"
            )
        data = _deep_merge(data, copy.deepcopy(LAYER_DEFAULTS[layer]))
    defaults = copy.deepcopy(data)
    source, name = "defaults", "default"
    file_data: dict[str, Any] = {}
    if path is not None:
        source, name = str(path), Path(path).stem
        file_data = read_yaml(Path(path)) if content is None else copy.deepcopy(dict(content))
        data = _deep_merge(data, file_data)
    if data.get("name") is None:
        data["name"] = name
    data = apply_overrides(data, overrides)
    # model.type: transformer brings what --layer transformer does (a token task, an input
    # that fits it), under what the file and the --sets say
    model = data.get("model")
    stack = isinstance(model, dict) and model.get("module") is None and model.get("layers") is None
    if layer is None and stack and model.get("type") == "transformer":
        return _load(path, overrides, command, "transformer", file_data if path else None)
    given = given_keys(file_data, overrides)
    _drop_unwanted_defaults(data, defaults, given, layer)
    cfg = _validate(data, source, overrides)
    if cfg.log and command not in TRACKED_COMMANDS:
        raise WinitError(
            f"log: {', '.join(cfg.log)}: winit {command} does not log to trackers yet "
            f"({', '.join(TRACKED_COMMANDS[:-1])} and {TRACKED_COMMANDS[-1]} do)"
        )
    return cfg


def given_keys(file_data: Mapping[str, Any], overrides: Sequence[str]) -> list[str]:
    """The dotted keys the file gives values to, and those the --sets give."""
    keys: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        if not isinstance(node, Mapping):
            keys.append(prefix.rstrip("."))
            return
        for key, value in node.items():
            walk(value, f"{prefix}{key}.")

    walk(file_data, "")
    keys += [".".join(_parse_override(text)[0]) for text in overrides]
    return keys


def _drop_unwanted_defaults(
    data: dict[str, Any], defaults: Mapping[str, Any], given: Sequence[str], layer: str | None
) -> None:
    """Take out what a command's or --layer's defaults put in model that does not fit what
    the user asked for: the stack of `winit stats` under a model.module, and its input shape
    where the dataset ships with its own (config.py then fills the dataset's in)."""
    model, dataset = data.get("model"), data.get("data")
    if not isinstance(model, dict):
        return
    module = model.get("module") is not None
    if module and layer is not None:
        raise WinitError(
            "--layer builds a stack of winit's; with --model (model.module) your module is the "
            "network: give one of them"
        )
    name = dataset.get("name") if isinstance(dataset, dict) else None
    # the dataset's own shape for this model, where it has one (else the default stays)
    refilled = isinstance(name, str) and name in SHIPPED and shape_for(model, name) is not None
    for key in defaults.get("model", {}):
        field = f"model.{key}"
        if any(field == k or field.startswith(f"{k}.") or k.startswith(f"{field}.") for k in given):
            continue
        if module or (key == "input_shape" and refilled):
            model.pop(key, None)


def config_data(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain YAML/JSON data, with the keys a config file uses: for a
    built stack without model.module and model.args (so that configs from before they
    existed keep their hash), for a user's module without the stack's fields."""
    unused = set(STACK_FIELDS) if cfg.model.module is not None else set(MODULE_FIELDS)
    unused |= {k for k, default in LATER_FIELDS.items() if getattr(cfg.model, k) == default}
    init = LATER_INIT_FIELDS.items()
    init_unused = {k for k, default in init if getattr(cfg.init, k) == default}
    train = LATER_TRAIN_FIELDS.items()
    train_unused = {k for k, default in train if getattr(cfg.train, k) == default}
    exclude: dict[str, Any] = {"model": unused, "init": init_unused, "train": train_unused}
    exclude |= {k: True for k, default in TRACKER_FIELDS.items() if getattr(cfg, k) == default}
    return cfg.model_dump(mode="json", by_alias=True, exclude=exclude)


def config_to_yaml(cfg: Config) -> str:
    """The resolved config as YAML that load_config reads back to the same config."""
    return to_yaml(config_data(cfg))


def config_hash(cfg: Config) -> str:
    """12 hex digits identifying the experiment: sha256 of its canonical JSON, the name and
    the trackers (where it is also shown) excluded."""
    canonical = json.dumps(
        {k: v for k, v in config_data(cfg).items() if k != "name" and k not in TRACKER_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]
