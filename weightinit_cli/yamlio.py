"""YAML in and out: a SafeLoader that measures a text before it builds it (nesting, values
with aliases expanded, the size of numbers), refuses duplicate keys and reads 1e-3 as a
number; its errors as one line; and the dumper that writes winit's config style.

loading.py turns what is read here into a validated config. No torch, no pydantic.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import WinitError
from .limits import MAX_CONFIG_BYTES, MAX_NESTING, MAX_VALUES, excerpt, read_capped


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
                    problem=f"duplicate key {excerpt(key)} (first on line {first_line[key]})",
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


class _TooBig(yaml.YAMLError):
    """YAML refused before it is built: nested too deep, or too many values once aliases
    are expanded (a 400-byte alias bomb holds billions)."""


_OPEN = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSE = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def _check_size(text: str) -> None:
    """Count what `text` would build, from the parser's events, before building any of it.

    The parser is not recursive, so 100,000 brackets cost a loop here instead of a
    RecursionError in the composer. An alias counts as many values as its anchor holds.
    """
    # anchor -> (values it holds, levels it nests); while its mapping or list is open, that node
    anchored: dict[str, tuple[int, int] | list[Any]] = {}
    # per open mapping or list: [anchor, values inside it and itself, levels below it]
    open_nodes: list[list[Any]] = []
    total = 0

    def count(values: int, levels: int = 0) -> None:
        nonlocal total
        if len(open_nodes) + levels > MAX_NESTING:  # an alias brings its anchor's levels
            raise _TooBig(f"nested deeper than {MAX_NESTING} levels")
        if open_nodes:
            open_nodes[-1][1] += values
            open_nodes[-1][2] = max(open_nodes[-1][2], levels)
        total += values
        if total > MAX_VALUES:
            raise _TooBig(
                f"more than {MAX_VALUES:,} values once its aliases are expanded; "
                "a config needs a few dozen"
            )

    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, _OPEN):
            if len(open_nodes) >= MAX_NESTING:
                raise _TooBig(f"nested deeper than {MAX_NESTING} levels")
            total += 1
            node = [event.anchor, 1, 0]
            open_nodes.append(node)
            if event.anchor is not None:
                anchored[event.anchor] = node
        elif isinstance(event, _CLOSE):
            closed = open_nodes.pop()
            anchor, values, below = closed
            node_levels = below + 1
            if anchor is not None and anchored.get(anchor) is closed:
                anchored[anchor] = (values, node_levels)
            if open_nodes:  # in the total already, value by value
                open_nodes[-1][1] += values
                open_nodes[-1][2] = max(open_nodes[-1][2], node_levels)
        elif isinstance(event, yaml.ScalarEvent):
            plain = event.style is None and _NUMBER.match(event.value)
            if len(event.value) > MAX_NUMBER_CHARS and (plain or event.tag in _NUMBER_TAGS):
                raise _TooBig(f"a number of more than {MAX_NUMBER_CHARS} characters")
            if event.anchor is not None:
                anchored[event.anchor] = (1, 0)
            count(1)
        elif isinstance(event, yaml.AliasEvent):
            # an unknown anchor: the composer says so
            found = anchored.get(event.anchor, (1, 0))
            if isinstance(found, list):
                raise _TooBig(
                    f"the alias *{excerpt(event.anchor)[1:-1]} refers to a mapping or list it is in"
                )
            count(*found)


# a plain scalar YAML may read as a number: int() and float() of a long one are slow or
# refused (4,300 digits), and a number that long means nothing to a config anyway
MAX_NUMBER_CHARS = 400
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")  # !!int "...", quoted
_NUMBER = re.compile(
    r"[-+]?(?:0x[0-9a-fA-F_]+|0o?[0-7_]+|0b[01_]+"
    r"|(?:[0-9][0-9_:]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?)$"
)


def parse_yaml(text: str) -> Any:
    _check_size(text)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 -- _Loader is a SafeLoader
    except OverflowError:  # a base-60 float (1:0:0:...:0.0) past float's range
        raise _TooBig("a number too large for a float") from None
    except ValueError as err:
        if "digits" in str(err):  # int() refuses numbers of more than 4,300 digits
            raise _TooBig(f"a number of more than {MAX_NUMBER_CHARS} characters") from None
        raise


def value_phrase(value: Any) -> str:
    """A value as a short, one-line phrase for `...; got <phrase>`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    text = excerpt(value)
    if isinstance(value, str):
        return f"a string {text}"
    if isinstance(value, (list, tuple)):
        return f"a list {text}"
    if isinstance(value, dict):
        return f"a mapping {text}"
    return text


def yaml_problem(exc: yaml.YAMLError) -> str:
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


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping a config file holds; a one-line WinitError for anything else."""
    if path.is_dir():
        raise WinitError(f"{path}: is a directory, not a config file")
    try:
        raw = read_capped(path, MAX_CONFIG_BYTES, "config file")
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
        content = parse_yaml(text)
    except yaml.YAMLError as exc:
        where = f"{path}:" if getattr(exc, "problem_mark", None) else f"{path}: "
        raise WinitError(where + yaml_problem(exc)) from None
    if content is None:
        raise WinitError(
            f"{path}: the file is empty; expected sections model:, init:, data:, train:"
        )
    if not isinstance(content, dict):
        raise WinitError(
            f"{path}: expected a mapping of sections (model:, init:, data:, train:) "
            f"at the top; got {value_phrase(content)}"
        )
    return content


class _Dumper(yaml.SafeDumper):
    """Block-style sections, but lists of plain values inline: `input_shape: [1, 16, 16]`."""


def _represent_list(dumper: yaml.SafeDumper, items: list[Any]) -> yaml.Node:
    inline = not any(isinstance(item, (dict, list)) for item in items)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=inline)


_Dumper.add_representer(list, _represent_list)


def to_yaml(data: Any) -> str:
    """Plain data as YAML in the style of winit's config files."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
