"""The µP of a config's network (parametrization.py holds the rules): its parameter shapes
at its width, at model.base_width and at twice that, built on the meta device and compared,
as mup's set_base_shapes compares a model with its base and delta."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .parametrization import Parametrization, Shape, parametrize

if TYPE_CHECKING:
    from .config import Config


def _shapes(cfg: Config, width: int) -> tuple[dict[str, Shape], dict[str, str], frozenset[str]]:
    """The parameter shapes of the config's stack at `width` (built on the meta device),
    each Linear/conv bias's weight name, and the embedding weights' names."""
    import torch
    from torch import nn

    from .methods import METHODS
    from .models import build_model

    stack = cfg.model.model_copy(update={"width": width})
    stack.__dict__.pop("plan", None)  # the copy's plan is planned anew, at `width`
    plan = stack.plan
    with torch.device("meta"):
        model = build_model(plan, gate=METHODS[cfg.init.method].gate)
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    fans = {
        f"{name}.bias": f"{name}.weight"
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear | nn.modules.conv._ConvNd) and module.bias is not None
    }
    modules = model.named_modules()
    embeddings = frozenset(f"{n}.weight" for n, m in modules if isinstance(m, nn.Embedding))
    return shapes, fans, embeddings


def parametrization_of(cfg: Config) -> Parametrization | None:
    """The config's µP (None under SP): its stack against itself at model.base_width."""
    if cfg.init.parametrization == "sp":
        return None  # (config validation refused the networks µP cannot scale)
    width = cfg.model.width
    base_width = cfg.model.base_width or width
    shapes, fans, embeddings = _shapes(cfg, width)
    base, _, _ = _shapes(cfg, base_width)
    delta, _, _ = _shapes(cfg, 2 * base_width)
    readout = cfg.model.plan.weighted[-1].name
    return parametrize(
        shapes, base, delta, readout=readout, width=width, base_width=base_width,
        bias_fan_in=fans, zero_readout=cfg.init.readout == "zero", embeddings=embeddings,
    )  # fmt: skip
