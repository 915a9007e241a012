"""The device a run asks for, resolved: cpu, cuda, or for auto whichever is present."""

from __future__ import annotations

from .errors import WinitError


def resolve_device(requested: str) -> str:
    """cpu, cuda, or for auto whichever is present; cuda without a GPU is a user error."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise WinitError("device: cuda was asked for, but torch sees no CUDA GPU; use cpu or auto")
    return requested
