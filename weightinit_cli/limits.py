"""The bounds every input is checked against before it is expanded, and the readers that
apply them.

A config file, a `--set` value, a sweep's grid, a run directory's JSON and a user's .npz
are all small on disk and can be huge once read: an alias bomb of 400 bytes, a header
that claims 10^12 values, 10,000 nested brackets. Each is measured first (bytes, nesting,
values after aliases, array sizes from headers) and refused with one line that shows at
most a short excerpt of the value. No torch, no NumPy.
"""

from __future__ import annotations

import json
import os
import reprlib
import stat
from pathlib import Path
from typing import Any

from .errors import WinitError

MAX_CONFIG_BYTES = 1 << 20  # a config or sweep file: 1 MiB (winit's own are under 2 KiB)
MAX_NESTING = 32  # mappings and lists inside each other (a config needs 4)
MAX_VALUES = 100_000  # scalars, lists and mappings once aliases are expanded
MAX_JSON_BYTES = 64 << 20  # a run directory's meta.json, summary.json (compare: ~100 KiB)
MAX_CSV_BYTES = 256 << 20  # a run's metrics.csv or layers.csv
MAX_ARRAY_VALUES = 1 << 27  # an .npz array: 134M values (CIFAR-10's 50,000 images fit)
MAX_ARRAY_BYTES = 1 << 30  # an .npz array's bytes once unpacked: 1 GiB
FLOAT32_MAX = 3.4028234663852886e38  # torch computes in float32: beyond this is inf
EXCERPT_CHARS = 40  # the most of a value an error message shows


def size_text(n: float) -> str:
    """Bytes as people say them: 1 MiB, 64 MiB, 4 GiB, 12.5 GiB."""
    if n >= 1 << 30:
        return f"{n / 2**30:,.{0 if n % 2**30 == 0 else 1}f} GiB"
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n:,} bytes"


def read_capped(path: str | Path, limit: int, what: str, regular_only: bool = False) -> bytes:
    """The bytes of `path`, read only up to `limit` (a device like /dev/zero never ends).

    `what` names the file in errors ("config file", "JSON file"). `regular_only`: refuse
    anything but a regular file (a named pipe in a run directory would block forever;
    a config may come from a pipe). OSError passes through: the caller says what a
    missing or unreadable file means for it.
    """
    flags = os.O_RDONLY | (os.O_NONBLOCK if regular_only else 0)
    with os.fdopen(os.open(path, flags), "rb") as f:
        if regular_only and not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise WinitError(f"{path}: not a regular file, so not a {what} winit wrote")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise WinitError(f"{path}: larger than {size_text(limit)}, the limit for a {what}")
    return data


CLIP_CHARS = 80  # the most of a command-line argument an error message repeats


def clip(text: str, limit: int = CLIP_CHARS) -> str:
    """`text` cut to `limit` characters, "..." marking the cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


_excerpt = reprlib.Repr()
_excerpt.maxlevel = 3
_excerpt.maxlist = _excerpt.maxtuple = _excerpt.maxdict = _excerpt.maxset = 4
_excerpt.maxstring = _excerpt.maxother = EXCERPT_CHARS
_excerpt.maxlong = 24


def excerpt(value: Any) -> str:
    """repr(value), cut to a short excerpt without building the whole repr first (the repr
    of an alias bomb's value would not fit in memory)."""
    try:
        text = _excerpt.repr(value)
    except ValueError:  # repr() of an int of more than 4,300 digits
        text = f"an integer of {value.bit_length():,} bits" if isinstance(value, int) else "?"
    return clip(text, EXCERPT_CHARS)


def read_json(path: str | Path, limit: int = MAX_JSON_BYTES) -> Any:
    """The JSON data of a file winit wrote, or a one-line WinitError saying why it cannot be
    trusted: missing, too big, not UTF-8, not JSON, or nested too deep. (JSON has no
    aliases: its bytes bound its values, however long the run it describes.)"""
    path = Path(path)
    try:
        raw = read_capped(path, limit, "JSON file", regular_only=True)
    except FileNotFoundError:
        raise WinitError(f"{path}: missing") from None
    except IsADirectoryError:
        raise WinitError(f"{path}: is a directory, not a JSON file") from None
    except OSError as err:
        raise WinitError(f"{path}: cannot read it ({err.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WinitError(f"{path}: not UTF-8 text, so not JSON winit wrote") from None
    try:
        data = json.loads(text)
    except RecursionError:  # the parser recurses: 10,000 brackets reach the limit
        raise WinitError(f"{path}: nested deeper than {MAX_NESTING} levels") from None
    except ValueError as err:
        raise WinitError(f"{path}: not valid JSON ({err})") from None
    _check_json_depth(data, path)
    return data


def _check_json_depth(data: Any, path: Path) -> None:
    """Parsed JSON nests no deeper than MAX_NESTING (it shares no parts, unlike YAML:
    only the mappings and lists need a look, each once)."""
    stack: list[tuple[Any, int]] = [(data, 0)] if isinstance(data, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        if depth >= MAX_NESTING:
            raise WinitError(f"{path}: nested deeper than {MAX_NESTING} levels")
        items = node.values() if isinstance(node, dict) else node
        stack.extend((item, depth + 1) for item in items if isinstance(item, (dict, list)))
