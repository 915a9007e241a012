"""Your own network: load an nn.Module from `path/to/file.py:NAME` or `package.module:NAME`,
build it, and plan it by walking its modules along one traced forward pass.

Loading a file runs its code, as `python file.py` would: winit executes it once per
process (keyed by its path and modification time) and imports a package the usual way.
NAME is an nn.Module class or any callable returning a module (`torchvision.models:resnet18`),
called with `model.args` as keyword arguments. Every way this can fail is one WinitError
naming `model.module` (or `model.args`), with the user's exception cut to one line.

The plan (plan.NetworkPlan) holds the modules the traced forward called, in the order it
first called them, each with the shapes it saw. How tensors flowed between the calls
decides the rest (a tensor changed in place on the way, by `out += x`, breaks the flow):
the activation after a weighted layer is the activation module that consumes its output
(past dropout, normalization, pooling and flatten, at whichever call of a shared module);
an output that goes anywhere else (a functional op, a residual sum, two consumers) hides
it, and the layer's own output is measured and predicted instead. A weighted layer is
chained to the one before only when its input is exactly that layer's activated output.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ShapeError, WinitError
from .limits import clip, excerpt
from .plan import CHAINING, TRANSPARENT, Layer, NetworkPlan, Shape, taps_inside

if TYPE_CHECKING:
    from torch import nn

FIELD = "model.module"
# files already executed in this process: (path, mtime, size) -> module
_LOADED: dict[tuple[str, int, int], Any] = {}
_PLANS: dict[tuple[Any, ...], NetworkPlan] = {}


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return clip(f"{type(exc).__name__}: {first}" if first else type(exc).__name__, 200)


def parse_spec(spec: str) -> tuple[str, str]:
    """(the file or module, the NAME) of `file.py:NAME` or `package.module:NAME`."""
    where, colon, name = spec.rpartition(":")
    if not colon or not where.strip() or not name.strip():
        raise WinitError(
            f"{FIELD}: needs path/to/file.py:NAME or package.module:NAME; got {excerpt(spec)}"
        )
    if not all(part.isidentifier() for part in name.split(".")):
        raise WinitError(f"{FIELD}: {excerpt(name)} is not a Python name (in {excerpt(spec)})")
    return where, name


def _is_file(where: str) -> bool:
    return where.endswith(".py") or os.sep in where or "/" in where


def _file_version(where: str) -> tuple[str, int, int] | None:
    """(the resolved path, its modification time, its size): a file edited since is a new
    version (run, and planned, again). None where it cannot be read."""
    path = Path(where)
    try:
        status = path.stat()
    except OSError:
        return None
    return str(path.resolve()), status.st_mtime_ns, status.st_size


def _run_file(where: str) -> Any:
    path = Path(where)
    if path.is_dir():
        raise WinitError(f"{FIELD}: {excerpt(where)} is a directory, not a .py file")
    key = _file_version(where)
    if key is None:
        raise WinitError(f"{FIELD}: no such file: {excerpt(where)}")
    if key in _LOADED:
        return _LOADED[key]
    name = f"winit_user_model_{len(_LOADED)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise WinitError(f"{FIELD}: cannot load {excerpt(where)} as Python (name it .py)")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    if folder not in sys.path:  # as `python file.py` has it: its siblings import
        sys.path.insert(0, folder)
    sys.modules[name] = module  # dataclasses and pickling look a module up by its name
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # the user's code: SystemExit too
        del sys.modules[name]
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise WinitError(f"{FIELD}: running {excerpt(where)} failed: {one_line(exc)}") from None
    _LOADED[key] = module
    return module


def _import(where: str) -> Any:
    if not all(part.isidentifier() for part in where.split(".")):
        raise WinitError(
            f"{FIELD}: {excerpt(where)} is neither a .py file nor a dotted module name"
        )
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name is not None and where.startswith(exc.name):
            raise WinitError(
                f"{FIELD}: no module named {excerpt(exc.name)} (is it installed? "
                f"a file needs its path: {where.replace('.', '/')}.py)"
            ) from None
        raise WinitError(f"{FIELD}: importing {where} failed: {one_line(exc)}") from None
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise WinitError(f"{FIELD}: importing {where} failed: {one_line(exc)}") from None


def spec_version(spec: str) -> tuple[str, int, int] | None:
    """The version of a file spec's file (_file_version), None for a package's module: what
    a cache of anything built from the spec is keyed by."""
    where = parse_spec(spec)[0]
    return _file_version(where) if _is_file(where) else None


def file_digest(spec: str) -> dict[str, str] | None:
    """{"path": the absolute path, "sha256": of its bytes} of a file spec's file (None for a
    package's module, or a file that cannot be read)."""
    import hashlib

    where = parse_spec(spec)[0]
    if not _is_file(where):
        return None
    try:
        data = Path(where).read_bytes()
    except OSError:
        return None
    return {"path": str(Path(where).resolve()), "sha256": hashlib.sha256(data).hexdigest()}


def load_factory(spec: str) -> Callable[..., Any]:
    """The class or callable that `spec` names (running its file, or importing its module)."""
    where, name = parse_spec(spec)
    module = _run_file(where) if _is_file(where) else _import(where)
    target: Any = module
    for part in name.split("."):
        if not hasattr(target, part):
            from torch import nn

            found = sorted(
                n
                for n, v in vars(module).items()
                if not n.startswith("_")
                and (isinstance(v, type) and issubclass(v, nn.Module) or callable(v))
                and getattr(v, "__module__", None) == module.__name__
            )
            listed = clip(", ".join(found) or "nothing", 120)
            raise WinitError(f"{FIELD}: {excerpt(where)} has no {name!r} (it defines: {listed})")
        target = getattr(target, part)
    if not callable(target):
        raise WinitError(
            f"{FIELD}: {name} is a {type(target).__name__}, not an nn.Module class "
            "or a callable returning one"
        )
    return target


def build(spec: str, args: Mapping[str, Any]) -> nn.Module:
    """The user's module: NAME(**args), checked to be an nn.Module with parameters."""
    from torch import nn

    factory = load_factory(spec)
    name = parse_spec(spec)[1]
    try:
        model = factory(**args)
    except TypeError as exc:
        field = "model.args" if args else FIELD
        raise WinitError(f"{field}: calling {name}(...) failed: {one_line(exc)}") from None
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise WinitError(f"{FIELD}: building {name} failed: {one_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise WinitError(
            f"{FIELD}: {name} gave a {type(model).__name__}, not an nn.Module "
            "(name an nn.Module class or a callable returning one)"
        )
    if not any(True for _ in model.parameters()):
        raise WinitError(f"{FIELD}: {name} has no weights (no parameters) to initialize")
    return model


# --------------------------------------------------------------------------- tracing


@dataclass
class _Call:
    """One call of a module in the traced forward."""

    name: str
    module: Any
    in_shape: Shape | None
    out_shape: Shape | None
    source: int | None  # the call whose output was this call's input, unchanged since
    layer: int  # the plan layer of this module (the index of its first call among them)
    is_output: bool = False


def _shape(value: Any) -> Shape | None:
    import torch

    if isinstance(value, torch.Tensor):
        return tuple(value.shape[1:])
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return tuple(value[0].shape[1:])
    return None


def _first_tensor(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return value[0] if value else None
    return value


def _dims(shape: Sequence[int]) -> str:
    return f"[{', '.join(map(str, shape))}]"


def _trace(model: nn.Module, input_shape: Shape) -> tuple[list[_Call], list[_Call], Any]:
    """Run one forward on a batch of 2 and record every call of every module that has
    parameters of its own or no children, with the data flow between them: (every call,
    the first call of each module, the output).

    A call's source is the call whose output tensor it took as its input, if that tensor is
    unchanged since (its version counter says whether an in-place op such as `out += x` or
    `h.tanh_()` changed it in between: then the flow is not known)."""
    import torch

    watched = {
        n
        for n, m in model.named_modules()
        if n and (not list(m.children()) or any(True for _ in m.parameters(recurse=False)))
    }
    calls: list[_Call] = []
    firsts: dict[str, _Call] = {}
    producer: dict[int, tuple[int, int]] = {}  # id of an output -> (its call, its version)
    alive: list[Any] = []  # keeps traced tensors alive, so that their ids stay theirs
    entered: list[tuple[str, Any, Any, int | None]] = []  # modules in progress

    def before(name: str):
        def hook(module: Any, inputs: tuple) -> None:
            first = inputs[0] if inputs else None
            if first is None and isinstance(module, _weighted()):
                raise ShapeError(
                    f"{FIELD}: {name} ({type(module).__name__}) is called with its input as a "
                    f"keyword argument; winit's hooks see positional ones: call {name}(x)"
                )
            found = producer.get(id(first)) if isinstance(first, torch.Tensor) else None
            source = found[0] if found and found[1] == first._version else None
            entered.append((name, module, first, source))

        return hook

    def after(name: str):
        def hook(module: Any, inputs: tuple, output: Any) -> None:
            _, _, first_in, source = entered.pop()
            if name not in watched:
                return
            layer = firsts[name].layer if name in firsts else len(firsts)
            call = _Call(name, module, _shape(first_in), _shape(output), source, layer)
            calls.append(call)
            firsts.setdefault(name, call)
            first_out = _first_tensor(output)
            if isinstance(first_out, torch.Tensor):
                producer[id(first_out)] = (len(calls) - 1, first_out._version)
                alive.append(first_out)

        return hook

    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(before(name)))
        handles.append(module.register_forward_hook(after(name)))
    root = type(model).__name__
    x = torch.randn((2, *input_shape), generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            output = model(x)
    except ShapeError:
        raise
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        where = ""
        if entered and entered[-1][0]:
            name, module, got, _ = entered[-1]
            shape = f" on an input of {_dims(got.shape)}" if hasattr(got, "shape") else ""
            where = f" in {name} ({type(module).__name__}){shape}"
        raise ShapeError(
            f"{FIELD}: the forward of {root} failed{where} for model.input_shape "
            f"{_dims(input_shape)} (a batch of {_dims((2, *input_shape))}): {one_line(exc)}"
        ) from None
    finally:
        for handle in handles:
            handle.remove()
    if not isinstance(output, torch.Tensor):
        raise ShapeError(
            f"{FIELD}: {root} returns a {type(output).__name__}; winit trains classifiers, "
            "whose forward returns one tensor of [batch, classes]"
        )
    if not output.is_floating_point():
        raise ShapeError(
            f"{FIELD}: {root} outputs {str(output.dtype).removeprefix('torch.')} values; "
            "a classifier outputs float logits"
        )
    if output.dim() != 2 or output.shape[0] != 2:
        raise ShapeError(
            f"{FIELD}: {root} outputs {_dims(output.shape)} for a batch of 2; "
            "a classifier outputs [batch, classes]"
        )
    made = producer.get(id(output))
    if made is not None and made[1] == output._version:
        calls[made[0]].is_output = True
    return calls, list(firsts.values()), output


def _weighted() -> tuple[type, ...]:
    from .apply import WEIGHTED_LAYERS

    return WEIGHTED_LAYERS


def _layer(index: int, call: _Call) -> Layer:
    from torch import nn

    from .apply import ACTIVATION_MODULES, WEIGHTED_LAYERS, kind_of

    module = call.module
    weighted = isinstance(module, WEIGHTED_LAYERS)
    slope = module.negative_slope if isinstance(module, nn.LeakyReLU) else 0.0
    inside = 1.0
    conv = isinstance(module, nn.modules.conv._ConvNd) and not module.transposed
    if conv and module.padding_mode == "zeros" and call.in_shape is not None:
        kernel = module.kernel_size
        padding = module.padding
        if padding == "same":  # torch pads (k-1)·d//2 before, the rest after: near enough
            padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, module.dilation, strict=True))
        if padding != "valid":
            inside = taps_inside(call.in_shape[1:], kernel, module.stride, padding, module.dilation)
    return Layer(
        index,
        call.name,
        kind_of(module),
        call.in_shape,
        call.out_shape,
        weight_shape=tuple(module.weight.shape) if weighted else None,
        groups=getattr(module, "groups", 1),
        params=sum(p.numel() for p in module.parameters(recurse=False)),
        activation=ACTIVATION_MODULES.get(type(module)),
        negative_slope=slope,
        taps_inside=inside,
    )


def _linked(layers: list[Layer], calls: list[_Call]) -> tuple[Layer, ...]:
    """Each weighted layer with the activation that consumes its first call's output (by
    data flow: a shared activation module is found at whichever call it is) and whether
    its input is exactly the activated output of the weighted layer before."""
    consumers: dict[int, list[int]] = {}
    first_call: dict[int, int] = {}
    for i, call in enumerate(calls):
        first_call.setdefault(call.layer, i)
        if call.source is not None:
            consumers.setdefault(call.source, []).append(i)
    out = list(layers)
    previous: Layer | None = None
    for i, layer in enumerate(out):
        if not layer.weighted:
            continue
        found: dict[str, Any] = {"activation": None, "activation_layer": None}
        at, source, through = first_call[i], "module", []
        while True:
            after = consumers.get(at, [])
            if len(after) != 1:  # a sum, a functional op, two branches, or nothing traced
                source = "module" if not after and calls[at].is_output else "assumed"
                break
            at = after[0]
            reached = out[calls[at].layer]
            if reached.kind == "activation":
                found.update(
                    activation=reached.activation,
                    activation_layer=reached.name,
                    negative_slope=reached.negative_slope,
                    through=tuple(through),
                )
                break
            if reached.kind not in TRANSPARENT:
                source = "assumed"
                break
            through.append(reached.kind)
        chained, back, between = False, calls[first_call[i]].source, []
        while back is not None and out[calls[back].layer].kind in CHAINING:
            between.append(out[calls[back].layer])
            back = calls[back].source
        if previous is not None and back is not None and back == first_call[previous.index]:
            acts = [b.name for b in between if b.kind == "activation"]
            chained = acts == ([previous.activation_layer] if previous.activation_layer else [])
        out[i] = replace(layer, chained=chained, activation_source=source, **found)
        previous = out[i]
    return tuple(out)


def plan_model(model: nn.Module, input_shape: Sequence[int]) -> NetworkPlan:
    """The plan of a built user module, from one traced forward on `input_shape`."""
    shape = tuple(input_shape)
    calls, firsts, output = _trace(model, shape)
    layers = [_layer(i, call) for i, call in enumerate(firsts)]
    if not any(layer.weighted for layer in layers):
        raise ShapeError(
            f"{FIELD}: the forward of {type(model).__name__} calls no Linear or conv module, "
            "the layers winit measures"
        )
    return NetworkPlan(
        shape,
        _linked(layers, calls),
        output_shape=tuple(output.shape[1:]),
        total_parameters=sum(p.numel() for p in model.parameters()),
    )


def plan_of(spec: str, args: Mapping[str, Any], input_shape: Sequence[int]) -> NetworkPlan:
    """The plan of the module `spec` builds with `args` (built once per process for the
    same spec, arguments and input shape)."""
    import json

    import torch

    version = spec_version(spec)
    key = (spec, version, json.dumps(args, sort_keys=True, default=repr), tuple(input_shape))
    if key not in _PLANS:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build(spec, args)
        _PLANS[key] = plan_model(model, input_shape)
    return _PLANS[key]
