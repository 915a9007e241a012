"""The NTK or µP of a config's network (parametrization.py holds the rules): its parameter
shapes at its width, at model.base_width and at twice that, built on the meta device and
compared, as mup's set_base_shapes compares a model with its base and delta. A stack is
rebuilt at another model.width; a model.module with another width argument
(scaled_width.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import WinitError
from .parametrization import Parametrization, Shape, base_shape, parametrize
from .scaled_width import width_of

if TYPE_CHECKING:
    from torch import nn

    from .config import Config

Shapes = tuple[dict[str, Shape], dict[str, str], frozenset[str], list[str]]


def _built(cfg: Config, width: int) -> nn.Module:
    """The config's network at `width`, on the meta device (no memory, no random draws);
    a module whose constructor cannot run there (it reads a value, say) on the CPU."""
    import torch

    m = cfg.model
    if m.module is not None:
        from .user_model import build

        args = {**m.args, m.width_argument: width}
        try:
            with torch.device("meta"):
                return build(m.module, args)
        except WinitError:
            with torch.random.fork_rng(devices=[]):
                return build(m.module, args)
    from .methods import METHODS
    from .models import build_model

    stack = m.model_copy(update={"width": width})
    stack.__dict__.pop("plan", None)  # the copy's plan is planned anew, at `width`
    plan = stack.plan
    with torch.device("meta"):
        return build_model(plan, gate=METHODS[cfg.init.method].gate)


def _shapes(cfg: Config, width: int) -> Shapes:
    """The parameter shapes of the config's network at `width`, each Linear/conv bias's
    weight name, the embedding weights' names and the Linear layers' names."""
    from torch import nn

    model = _built(cfg, width)
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    modules = list(model.named_modules())
    fans = {
        f"{name}.bias": f"{name}.weight"
        for name, module in modules
        if isinstance(module, nn.Linear | nn.modules.conv._ConvNd) and module.bias is not None
    }
    embeddings = frozenset(f"{n}.weight" for n, m in modules if isinstance(m, nn.Embedding))
    linears = [n for n, m in modules if isinstance(m, nn.Linear) and f"{n}.weight" in shapes]
    return shapes, fans, embeddings, linears


def _module_readout(
    cfg: Config, shapes: Shapes, base: dict[str, Shape], delta: dict[str, Shape], base_width: int
) -> str:
    """A module's readout: model.readout, or the one Linear whose fan_in is a width and
    whose fan_out is not."""
    sizes, _, _, linears = shapes
    if not any(base[n] != delta[n] for n in sizes):
        arg = cfg.model.width_argument
        raise WinitError(
            f"model.width_arg: model.args.{arg} = {base_width} and = {2 * base_width} give "
            "the same parameter shapes; it does not set the module's width"
        )
    if cfg.model.readout is not None:
        return cfg.model.readout

    def is_output(name: str) -> bool:
        w = f"{name}.weight"
        fan_out, fan_in = base_shape(sizes[w], base[w], delta[w])[:2]
        return fan_in is not None and fan_out is None

    outputs = [n for n in linears if is_output(n)]
    if len(outputs) != 1:
        found = f"{len(outputs)} ({', '.join(outputs)})" if outputs else "none"
        raise WinitError(
            "model.readout: winit tells a module's readout as the one Linear whose fan_in "
            f"grows with the width and whose fan_out does not, and finds {found}; name it "
            "with model.readout"
        )
    return outputs[0]


# parametrization_of's answers by the resolved config: a run, a coordcheck's widths and a
# sweep's trials ask again for the same config
_CACHE: dict[str, Parametrization] = {}
CACHE_SIZE = 64


def parametrization_of(cfg: Config) -> Parametrization | None:
    """The config's NTK or µP (None under SP): its network against itself at
    model.base_width, read once per resolved config (config validation refused the fields
    it cannot scale; a module's shapes that do not tell a width or a readout are a
    WinitError here, which loading raises when the config is loaded)."""
    if cfg.init.parametrization == "sp":
        return None
    key = cfg.model_dump_json()
    if key not in _CACHE:
        if len(_CACHE) >= CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _parametrization(cfg)
    return _CACHE[key]


def _parametrization(cfg: Config) -> Parametrization:
    width = width_of(cfg.model)
    base_width = cfg.model.base_width or width
    at_width = _shapes(cfg, width)
    base = _shapes(cfg, base_width)[0]
    delta = _shapes(cfg, 2 * base_width)[0]
    shapes, fans, embeddings, _ = at_width
    if set(base) != set(shapes) or set(delta) != set(shapes):  # only a module's can differ
        raise WinitError(
            f"model.width_arg: model.args.{cfg.model.width_argument} = {base_width} and = "
            f"{2 * base_width} change which parameters the module has, not only their "
            "shapes; it is no width"
        )
    if cfg.model.module is not None:
        readout = _module_readout(cfg, at_width, base, delta, base_width)
    else:
        readout = cfg.model.plan.weighted[-1].name
    kwargs: dict[str, Any] = {"bias_fan_in": fans, "embeddings": embeddings}
    return parametrize(
        shapes, base, delta, readout=readout, width=width, base_width=base_width,
        zero_readout=cfg.init.readout == "zero", name=cfg.init.parametrization, **kwargs,
    )  # fmt: skip
