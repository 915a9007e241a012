"""The classic results of the init literature, reproduced by winit itself.

Each reproduction is a module here: it starts from its config in weightinit_cli/papers/
(configs/papers/ in the repository), runs winit's own experiments on it, and returns a
Finding: the paper's claim, what winit measured, whether they agree, the numbers, and
charts as data (plots.py draws them). Nothing prints here. `fast=True` runs the small
version the tests use; the full one is larger and slower.
"""

from __future__ import annotations

import difflib

from ..errors import WinitError
from ..limits import excerpt
from . import (
    brock2021,
    fixup2019,
    glorot2010,
    gpt2_residual,
    hanin2018,
    he2015,
    mishkin2016,
    pennington2017,
    saxe2013,
    schoenholz2017,
    yang2021,
    yang2021_transformer,
    zero_symmetry,
)
from .finding import Finding, Reproduction

REPRODUCTIONS: dict[str, Reproduction] = {
    module.REPRODUCTION.name: module.REPRODUCTION
    for module in (
        glorot2010,
        he2015,
        saxe2013,
        hanin2018,
        schoenholz2017,
        mishkin2016,
        zero_symmetry,
        brock2021,
        fixup2019,
        gpt2_residual,
        pennington2017,
        yang2021,
        yang2021_transformer,
    )
}


def get_reproduction(name: str) -> Reproduction:
    if name not in REPRODUCTIONS:
        close = difflib.get_close_matches(name, list(REPRODUCTIONS), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise WinitError(
            f"unknown reproduction {excerpt(name)}; {hint}one of {', '.join(REPRODUCTIONS)}, or all"
        )
    return REPRODUCTIONS[name]


__all__ = ["REPRODUCTIONS", "Finding", "Reproduction", "get_reproduction"]
