"""User text made safe to show on one line of a terminal or a plot: names, paths, values
from a config or a run directory. No Rich, no NumPy: the Error lines use it too."""

from __future__ import annotations

import re

from .limits import clip

# What must not reach a terminal as it is: C0 and C1 control characters (ESC starts a
# colour or cursor sequence, CR rewrites the line, BEL rings), DEL, line and paragraph
# separators, the bidirectional overrides that reorder what is shown, and lone
# surrogates (an undecodable byte of a file name, which no encoder can write).
_UNPRINTABLE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte
        return f"\\x{code - 0xDC00:02x}"
    return match.group().encode("unicode_escape").decode("ascii")


def printable(text: object) -> str:
    """`text` (a name, a path, a value the user gave) with every character that would act
    on the terminal written as Python writes it: ESC as \\x1b, a newline as \\n, an
    undecodable file-name byte as \\xff. Everything else is left as it is."""
    text = str(text)
    return _UNPRINTABLE.sub(_escaped, text) if _UNPRINTABLE.search(text) else text


def shown(text: str, limit: int = 40) -> str:
    """Text from a user's file as a short excerpt: printable, cut to `limit` (only its
    start is looked at: a cell may be long)."""
    return clip(printable(text[: limit + 1]), limit)
