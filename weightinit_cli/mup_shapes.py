"""The NTK or µP of a config's network (parametrization.py holds the rules): its parameter
shapes at its width, at model.base_width and at twice that, built on the meta device and
compared, as mup's set_base_shapes compares a model with its base and delta. A stack is
rebuilt at another model.width; a model.module with another width argument
(ModelConfig.width_argument)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import WinitError
from .parametrization import Parametrization, Shape, base_shape, parametrize
from .scaled_width import width_of

if TYPE_CHECKING:
    from torch import nn

    from .config import Config


@dataclass(frozen=True)
class Built:
    """What one build of the network shows: its parameter shapes, each Linear/conv bias's
    weight name, the Linear/conv and embedding weights' names, the Linear layers' names,
    and the modules reached under more than one name (shared or aliased)."""

    shapes: dict[str, Shape]
    bias_fan_in: dict[str, str]
    layer_weights: frozenset[str]
    embeddings: frozenset[str]
    linears: list[str]
    plain_linears: frozenset[str]  # exactly nn.Linear: what µP's Readout can replace
    aliased: frozenset[str]


def _built(cfg: Config, width: int) -> nn.Module:
    """The config's network at `width`, on the meta device (no memory, no random draws);
    a module whose constructor cannot run there (it reads a value, say) on the CPU."""
    import torch

    m = cfg.model
    if m.module is not None:
        from .user_model import build

        arg = m.width_argument
        try:
            try:
                with torch.device("meta"):
                    return build(m.module, {**m.args, arg: width})
            except WinitError:
                with torch.random.fork_rng(devices=[]):
                    return build(m.module, {**m.args, arg: width})
        except WinitError as exc:
            if width == width_of(m):
                raise
            raise WinitError(
                f"model.base_width: the module at model.args.{arg} = {width} (model.base_width "
                f"or twice it, where µP and NTK read its shapes): {exc}"
            ) from None
    from .methods import METHODS
    from .models import build_model

    stack = m.model_copy(update={"width": width})
    stack.__dict__.pop("plan", None)  # the copy's plan is planned anew, at `width`
    plan = stack.plan
    with torch.device("meta"):
        return build_model(plan, gate=METHODS[cfg.init.method].gate)


def _read(cfg: Config, width: int) -> Built:
    from torch import nn

    model = _built(cfg, width)
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    modules = list(model.named_modules())
    layers = [(n, m) for n, m in modules if isinstance(m, nn.Linear | nn.modules.conv._ConvNd)]
    names: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        names.setdefault(id(module), []).append(name)
    return Built(
        shapes=shapes,
        bias_fan_in={f"{n}.bias": f"{n}.weight" for n, m in layers if m.bias is not None},
        layer_weights=frozenset(f"{n}.weight" for n, _ in layers),
        embeddings=frozenset(f"{n}.weight" for n, m in modules if isinstance(m, nn.Embedding)),
        linears=[n for n, m in layers if isinstance(m, nn.Linear) and f"{n}.weight" in shapes],
        plain_linears=frozenset(n for n, m in layers if type(m) is nn.Linear),
        aliased=frozenset(n for group in names.values() if len(group) > 1 for n in group),
    )


def _module_readout(
    cfg: Config, at_width: Built, base: Built, delta: Built, base_width: int
) -> str | None:
    """A module's readout: model.readout, or the one Linear whose fan_in is a width and
    whose fan_out is not (None under NTK, which needs none, where there is not one)."""
    sizes = at_width.shapes
    if not any(base.shapes[n] != delta.shapes[n] for n in sizes):
        raise WinitError(
            f"model.width_arg: model.args.{cfg.model.width_argument} = {base_width} and = "
            f"{2 * base_width} give the same parameter shapes; it does not set the module's "
            "width"
        )
    if cfg.model.readout is not None:
        return cfg.model.readout

    def is_output(name: str) -> bool:
        w = f"{name}.weight"
        fan_out, fan_in = base_shape(sizes[w], base.shapes[w], delta.shapes[w])[:2]
        return fan_in is not None and fan_out is None

    outputs = [n for n in at_width.linears if is_output(n)]
    if len(outputs) == 1:
        return outputs[0]
    if cfg.init.parametrization == "ntk" and cfg.init.readout != "zero":
        return None
    found = f"{len(outputs)} ({', '.join(outputs)})" if outputs else "none"
    raise WinitError(
        "model.readout: winit tells a module's readout as the one Linear whose fan_in grows "
        f"with the width and whose fan_out does not, and finds {found}; name it with "
        "model.readout"
    )


def _replaceable(readout: str, built: Built) -> None:
    """µP replaces the readout with a Readout (models.parametrize_model): it must be a plain
    nn.Linear reached under one name."""
    if readout in built.aliased:
        raise WinitError(
            f"model.readout: {readout} is reached under more than one name in the module; µP "
            "replaces it with its readout, which would leave the other names on the old layer"
        )
    if readout not in built.plain_linears:
        raise WinitError(
            f"model.readout: {readout} is not a plain nn.Linear; µP's readout multiplier "
            "replaces one (a subclass's own forward would be lost)"
        )


# parametrization_of's answers, by what they depend on: the network (and a module file's
# version) and the init fields; a coordcheck's seeds and a sweep's trials ask again
_CACHE: dict[str, Parametrization] = {}
CACHE_SIZE = 64


def _cache_key(cfg: Config) -> str:
    from .user_model import spec_version

    m = cfg.model
    version = spec_version(m.module) if m.module is not None else None
    init = cfg.init.model_dump(mode="json", include={"method", "parametrization", "readout"})
    return json.dumps([m.model_dump(mode="json"), init, version], sort_keys=True, default=repr)


def parametrization_of(cfg: Config) -> Parametrization | None:
    """The config's NTK or µP (None under SP): its network against itself at
    model.base_width, read once per network (config validation refused the fields it cannot
    scale; a module's shapes that tell no width or no readout are a WinitError here, which
    loading raises when the config is loaded)."""
    if cfg.init.parametrization == "sp":
        return None
    key = _cache_key(cfg)
    if key not in _CACHE:
        if len(_CACHE) >= CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _parametrization(cfg)
    return _CACHE[key]


def _parametrization(cfg: Config) -> Parametrization:
    width = width_of(cfg.model)
    base_width = cfg.model.base_width or width
    at_width, base, delta = (_read(cfg, w) for w in (width, base_width, 2 * base_width))
    if set(base.shapes) != set(at_width.shapes) or set(delta.shapes) != set(at_width.shapes):
        raise WinitError(  # only a module's can differ
            f"model.width_arg: model.args.{cfg.model.width_argument} = {base_width} and = "
            f"{2 * base_width} change which parameters the module has, not only their "
            "shapes; it is no width"
        )
    if cfg.model.module is not None:
        readout = _module_readout(cfg, at_width, base, delta, base_width)
    else:
        readout = cfg.model.plan.weighted[-1].name
    if readout is not None and cfg.init.parametrization == "mup":
        _replaceable(readout, at_width)
    return parametrize(
        at_width.shapes, base.shapes, delta.shapes, readout=readout, width=width,
        base_width=base_width, bias_fan_in=at_width.bias_fan_in,
        zero_readout=cfg.init.readout == "zero", embeddings=at_width.embeddings,
        layer_weights=at_width.layer_weights, name=cfg.init.parametrization,
    )  # fmt: skip
