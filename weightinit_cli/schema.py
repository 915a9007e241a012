"""The JSON Schema (draft 7) of a config file, generated from the config classes.

It ships as weightinit_cli/schema.json (and winit.schema.json at the root, which the
configs' modeline points editors to); `winit schema` prints the shipped copy without
importing pydantic, and a test checks that the copy is what this generates.
"""

from __future__ import annotations

from typing import Any

from .config import Config


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
