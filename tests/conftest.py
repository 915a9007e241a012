"""Shared fixtures: every test that makes runs writes them under its own tmp_path."""

import pytest


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """The runs root for this test ($WINIT_RUNS_DIR), not yet created."""
    root = tmp_path / "runs"
    monkeypatch.setenv("WINIT_RUNS_DIR", str(root))
    return root
