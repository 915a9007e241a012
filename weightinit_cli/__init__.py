"""winit: see what a weight-initialization method does to your network.

The public library API. Imports are lazy so that ``import weightinit_cli`` (and
``winit --help``) never import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.2.0"

_LAZY = {
    "apply_weight_init": "weightinit_cli.apply",
    "weight_stats": "weightinit_cli.probe",
    "print_weight_stats": "weightinit_cli.render.results",
    "calculate_gain": "weightinit_cli.fans",
    "fan_in_and_fan_out": "weightinit_cli.fans",
    "canonical_name": "weightinit_cli.methods",
    "expected_std": "weightinit_cli.initspec",
    "InitSpec": "weightinit_cli.initspec",
    "METHODS": "weightinit_cli.methods",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'weightinit_cli' has no attribute {name!r}")
