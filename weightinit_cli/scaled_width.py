"""Which number is a network's width: model.width for a stack, for a model.module the
model.args entry named by model.width_arg (default `width`; ModelConfig.width_argument).
What varies the width (coordcheck's ladder, transfer's axis) sets that key; NTK and µP
(mup_shapes) rebuild the network with it at model.base_width and twice that. Pure Python."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import WinitError

if TYPE_CHECKING:
    from .config import Config, ModelConfig


def width_key(model: ModelConfig) -> str:
    """The dotted config key that sets the width: model.width, or model.args.NAME."""
    if model.module is None:
        return "model.width"
    arg = model.width_argument
    if arg is None or arg not in model.args:
        raise WinitError(
            "model.width_arg: winit varies a model.module's width through one of model.args; "
            f"pass it (--model-arg {arg or 'width'}=64), and name it with model.width_arg "
            "where it is not `width`"
        )
    return f"model.args.{arg}"


def width_of(model: ModelConfig) -> int:
    """The network's width: model.width, or the module's width argument."""
    if model.module is None:
        return model.width
    return model.args[width_key(model).removeprefix("model.args.")]


def readout_layer(cfg: Config) -> str:
    """The layer init.readout zero sets to 0: model.readout, or the last dense (Linear)
    layer, or else the last weighted one."""
    if cfg.model.readout is not None:
        return cfg.model.readout
    weighted = cfg.model.plan.weighted
    dense = [layer for layer in weighted if layer.kind == "dense"]
    return (dense or weighted)[-1].name


__all__ = ["readout_layer", "width_key", "width_of"]
