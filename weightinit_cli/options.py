"""The command-line options that stats, train, compare and sweep share, declared once.

`config_options` adds them to a command's own parameters (through the signature Typer
reads) and hands them to the command as one ConfigOptions value, which turns them into
the command's config: the file, then each short option as a `--set`, then the `--set`s.
Imports only typer, so that `winit --help` stays fast.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from .config import Config
    from .initspec import InitSpec

F = TypeVar("F", bound=Callable[..., Any])

# Each short option is a `--set` of this config field.
SHORTCUTS = {
    "method": "init.method",
    "backend": "init.backend",
    "activation": "model.activation",
    "depth": "model.depth",
    "width": "model.width",
    "seed": "seed",
    "batch_size": "train.batch_size",
    "steps": "train.steps",
    "data": "data.name",
}


def _option(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Parameter(name, kind, default=default, annotation=annotation)


SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Any config field: --set model.depth=30 (repeatable)."),
]
SHARED = [
    _option(
        "config_opt",
        Annotated[
            Path | None,
            typer.Option("--config", "-c", help="The same, as an option.", show_default=False),
        ],
    ),
    _option(
        "method",
        Annotated[
            str | None, typer.Option("--method", "-m", help="Init method or alias (winit methods).")
        ],
    ),
    _option(
        "backend",
        Annotated[str | None, typer.Option(help="scratch (NumPy) or torch (torch.nn.init).")],
    ),
    _option(
        "activation",
        Annotated[
            str | None,
            typer.Option(help="linear relu leaky_relu tanh sigmoid selu gelu elu silu."),
        ],
    ),
    _option(
        "layer",
        Annotated[
            str | None,
            typer.Option(
                "--layer",
                help="dense, conv2d, conv3d or transformer stack (with a fitting input and data).",
            ),
        ],
    ),
    _option(
        "model",
        Annotated[
            str | None,
            typer.Option(
                "--model",
                help="Your own nn.Module: FILE.py:NAME or package.module:NAME (a class or a "
                "function returning one). Loading a file RUNS ITS CODE.",
            ),
        ],
    ),
    _option(
        "model_arg",
        Annotated[
            list[str] | None,
            typer.Option(
                "--model-arg", help="A keyword argument for --model: KEY=VALUE (YAML; repeatable)."
            ),
        ],
    ),
    _option(
        "input_shape",
        Annotated[
            str | None,
            typer.Option("--input-shape", help="The input shape without the batch: 3,32,32."),
        ],
    ),
    _option(
        "data",
        Annotated[str | None, typer.Option("--data", help="The dataset (data.name).")],
    ),
    _option("depth", Annotated[int | None, typer.Option(help="Hidden layers.")]),
    _option(
        "width",
        Annotated[int | None, typer.Option(help="Units (dense) or channels (conv) per layer.")],
    ),
    _option(
        "seed", Annotated[int | None, typer.Option(help="Random seed (same seed, same numbers).")]
    ),
    _option(
        "batch_size",
        Annotated[int | None, typer.Option("--batch-size", help="Examples per batch.")],
    ),
    _option(
        "steps", Annotated[int | None, typer.Option(help="Training steps (0: statistics only).")]
    ),
    _option("set_", SetOpt),
]


# The options of one command each (and the config file argument, which two share).
ConfigArg = Annotated[
    Path | None, typer.Argument(help="A YAML experiment config (see configs/).", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (the schema in README).")]
SppOpt = Annotated[
    bool,
    typer.Option(
        "--spp",
        help="Signal propagation (Brock et al. 2021): per conv layer, or per residual block.",
    ),
]


def _no_dangling_link(value: Path | None) -> Path | None:
    """Refuse a directory path through a symbolic link to nowhere (it, or a folder above
    it): nothing could be created there, and the error would come only after the run."""
    try:
        for step in [] if value is None else [*reversed(value.parents), value]:
            if step.is_symlink() and not step.exists():
                target = os.readlink(step)
                raise typer.BadParameter(
                    f"{step} is a symbolic link to {target}, which does not exist"
                )
    except OSError:  # unreadable on the way: creating the directory will say so
        pass
    return value


def _followed(value: Path | None) -> Path | None:
    """--out through a symbolic link to a directory: that directory (a run written whole
    is renamed into place, which cannot replace a link)."""
    value = _no_dangling_link(value)
    try:
        if value is not None and value.is_symlink() and value.is_dir():
            return value.resolve()
    except OSError:
        pass
    return value


OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        callback=_followed,
        help="Also write CSV, config, JSON and plots into this new directory.",
    ),
]
LogOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--log",
        help="Also log the run to a tracker: tensorboard or mlflow (repeatable; config key log).",
        show_default=False,
    ),
]
LogDirOpt = Annotated[
    str | None,
    typer.Option("--log-dir", help="Where TensorBoard writes (default: the run directory's tb/)."),
]


def log_sets(trackers: list[str] | None, log_dir: str | None) -> list[str]:
    """--log and --log-dir as the `--set`s they stand for (the config validates them)."""
    import json

    sets = [] if trackers is None else [f"log={json.dumps(trackers)}"]
    return sets + ([] if log_dir is None else [f"log_dir={json.dumps(log_dir)}"])


RunsDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--runs-dir",
        callback=_no_dangling_link,
        help="Where run directories go (default $WINIT_RUNS_DIR or runs/).",
    ),
]
MethodNameArg = Annotated[
    str | None, typer.Argument(help="Show one method in detail (a name or alias).")
]
TableJsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
MethodsOpt = Annotated[
    list[str] | None,
    typer.Option("--methods", help="Methods to compare (default: xavier he zero)."),
]
ExtraMethodsArg = Annotated[
    list[str] | None, typer.Argument(help="More methods after --methods.", show_default=False)
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", help="A method's parameter: --param he.mode=fan_out."),
]
CompareJobsOpt = Annotated[
    int | None,
    typer.Option(min=1, help="Methods run at once, one torch thread each (default: cores)."),
]
CoordcheckJobsOpt = Annotated[
    int | None,
    typer.Option(
        "--jobs", "-j", min=1, help="Networks at once, one torch thread each (default: cores)."
    ),
]
RunDirArg = Annotated[Path, typer.Argument(help="A run directory written by winit.")]
ReproductionArg = Annotated[
    str | None, typer.Argument(help="A reproduction (see --list), or all.", show_default=False)
]
ListOpt = Annotated[bool, typer.Option("--list", help="List the reproductions.")]
FullOpt = Annotated[
    bool, typer.Option("--full", help="The full-size version (slower) instead of the fast one.")
]
SweepFileArg = Annotated[
    Path | None,
    typer.Argument(
        help="A sweep file: a config plus grid: (field paths to lists).", show_default=False
    ),
]
GridOpt = Annotated[
    list[str] | None,
    typer.Option("--grid", "-g", help="An axis: --grid model.depth=5,10,20 (repeatable)."),
]
SeedsOpt = Annotated[
    int | None,
    typer.Option(min=1, help="Seeds per grid point (--seed, +1, ...), for mean ± std."),
]
SweepJobsOpt = Annotated[
    int | None,
    typer.Option("--jobs", "-j", min=1, help="Trials at once (default: the cores, or Ray's CPUs)."),
]
SweepBackendOpt = Annotated[
    str,
    typer.Option(help="local (worker processes) or ray (pip install 'weightinit-cli[ray]')."),
]
AddressOpt = Annotated[
    str | None,
    typer.Option(help="The Ray cluster to join (default $RAY_ADDRESS, else a local Ray)."),
]
FreshOpt = Annotated[
    bool, typer.Option("--fresh", help="Start a new sweep directory instead of resuming.")
]
FullTrialsOpt = Annotated[
    bool,
    typer.Option(
        "--full-trials",
        help="Each trial also writes loss.png and its layers after training (slower).",
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show the grid and where it would run; run nothing.")
]
CriticalActivationOpt = Annotated[str, typer.Option(help="The activation.")]


def _finite(value: float | None) -> float | None:
    """Refuse inf and nan, which typer's min= lets through (inf >= 0)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number; got {value}")
    return value


BiasVarOpt = Annotated[
    float, typer.Option("--bias-var", min=0.0, callback=_finite, help="Bias variance σ_b².")
]
WeightVarOpt = Annotated[
    float | None,
    typer.Option("--weight-var", min=0.0, callback=_finite, help="Also describe this σ_w²."),
]
SlopeOpt = Annotated[float, typer.Option(callback=_finite, help="leaky_relu's slope.")]


@dataclass(frozen=True)
class ConfigOptions:
    """What the shared options said."""

    config: Path | None  # --config
    layer: str | None  # --layer
    sets: tuple[str, ...]  # the short options as `--set`s, then the `--set`s (which win)

    def path(self, argument: Path | None) -> Path | None:
        """The config file: the command's argument or --config, not both."""
        from .errors import WinitError

        if argument is not None and self.config is not None:
            raise WinitError("give the config either as an argument or with --config, not both")
        return argument or self.config

    def load(self, command: str, argument: Path | None = None, first: Sequence[str] = ()) -> Config:
        """The command's config: its defaults, --layer's, the file, the short options, --set
        (after `first`, the sets a command's own options stand for, so that a --set wins)."""
        from .loading import load_config

        return load_config(self.path(argument), [*first, *self.sets], command, self.layer)


def parametrization_sets(parametrization: str | None) -> list[str]:
    """-p/--parametrization as the --set it stands for."""
    return [] if parametrization is None else [f"init.parametrization={parametrization}"]


def model_sets(spec: str | None, args: list[str] | None, input_shape: str | None) -> list[str]:
    """--model, --model-arg and --input-shape as the `--set`s they stand for."""
    import json

    from .errors import WinitError
    from .limits import excerpt

    sets = [] if spec is None else [f"model.module={json.dumps(spec)}"]
    for text in args or []:
        key, equals, value = text.partition("=")
        if not equals or not key.strip() or "." in key:
            raise WinitError(f"--model-arg: needs KEY=VALUE with a plain KEY; got {excerpt(text)}")
        sets.append(f"model.args.{key.strip()}={value}")
    if input_shape is not None:
        sets.append(f"model.input_shape=[{input_shape.strip().strip('[]')}]")
    return sets


def config_options(
    *, without: tuple[str, ...] = (), steps_help: str | None = None
) -> Callable[[F], F]:
    """Give a command the shared options (all but `without`), in the place of its
    `options: ConfigOptions` parameter, which receives them as one value."""
    shared = [p for p in SHARED if p.name not in without]
    if steps_help is not None:
        shared = [
            _option(p.name, Annotated[int | None, typer.Option(help=steps_help)])
            if p.name == "steps"
            else p
            for p in shared
        ]

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        params = list(signature.parameters.values())
        at = [p.name for p in params].index("options")

        @functools.wraps(command)
        def with_options(*args: Any, **kwargs: Any) -> Any:
            given = {p.name: kwargs.pop(p.name) for p in shared}
            sets = [
                f"{SHORTCUTS[k]}={v}" for k, v in given.items() if k in SHORTCUTS and v is not None
            ]
            sets += model_sets(given.get("model"), given.get("model_arg"), given.get("input_shape"))
            options = ConfigOptions(
                given["config_opt"], given.get("layer"), (*sets, *(given["set_"] or []))
            )
            return command(*args, options=options, **kwargs)

        parameters = [*params[:at], *shared, *params[at + 1 :]]
        with_options.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        return with_options  # type: ignore[return-value]

    return decorate


def method_specs(cfg: Config, methods: list[str], params: list[str]) -> list[InitSpec]:
    """compare's inits from `--methods` and `--param METHOD.KEY=VALUE`, each with the
    config's gain, bias and backend."""
    from .errors import WinitError
    from .limits import clip, excerpt
    from .loading import parse_value
    from .methods import canonical_name, resolve_params

    def named(option: str, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except WinitError as err:
            raise WinitError(f"{option}: {err}") from None

    canonical = [named(f"--methods {clip(m)}", canonical_name, m) for m in methods]
    repeated = sorted({m for m in canonical if canonical.count(m) > 1})
    if repeated:
        raise WinitError(f"--methods names {', '.join(repeated)} more than once")
    by_method: dict[str, dict[str, Any]] = {m: {} for m in canonical}
    for text in params:
        key, sep, value = text.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise WinitError(
                f"--param needs METHOD.KEY=VALUE, e.g. he.mode=fan_out; got {excerpt(text)}"
            )
        option = f"--param {clip(text)}"
        target = named(option, canonical_name, method)
        if target not in by_method:
            raise WinitError(f"{option}: {target} is not one of --methods")
        by_method[target][name] = named(option, parse_value, value)
        named(option, resolve_params, target, {name: by_method[target][name]})
    specs = [cfg.init.spec_for(method, values) for method, values in by_method.items()]
    for spec in specs:  # before any run starts
        named("--methods", spec.check_residual, cfg.model.plan, cfg.model.module is None, "")
    return specs


def invocation(ctx: typer.Context) -> str:
    """The running command as a command line, rebuilt from what was parsed."""
    import shlex

    parts = [ctx.command_path]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if value is None or value is False or value == () or value == []:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        if param.param_type_name == "argument":
            parts += [shlex.quote(str(v)) for v in values]
        elif getattr(param, "is_flag", False):
            parts.append(param.opts[0])
        else:
            for v in values:
                parts += [param.opts[0], shlex.quote(str(v))]
    return " ".join(parts)


# winit coordcheck's own options (its --steps are coordinate-check steps, not train.steps)
WidthsOpt = Annotated[
    str | None,
    typer.Option(
        "--widths", help="The width ladder: 64,128,256 (default 64,128,256,512,1024,2048)."
    ),
]
CoordStepsOpt = Annotated[
    int, typer.Option("--steps", min=1, max=1000, help="Optimizer steps measured (t=1: at init).")
]
CoordSeedsOpt = Annotated[
    int,
    typer.Option("--seeds", min=1, max=100, help="Seeds per width (--seed, +1, ...), averaged."),
]
CoordStatOpt = Annotated[
    str, typer.Option("--stat", help="l1 (mean |x|, mup's), l2 (root mean square) or std.")
]


# winit transfer's own options (its grid is width x lr; --seeds replicate each point)
TransferWidthsOpt = Annotated[
    str | None, typer.Option("--widths", help="The widths: 64,128,256 (default 64,128,256,512).")
]
LrsOpt = Annotated[
    str | None,
    typer.Option(
        "--lrs", help="Learning rates: 2^-14..2^-4 (each power of two) or 0.001,2^-8 (default "
        "2^-12..2^-2)."
    ),
]  # fmt: skip
TransferSeedsOpt = Annotated[
    int, typer.Option("--seeds", min=1, max=100, help="Seeds per (width, lr) point, averaged.")
]
SpectrumInputsOpt = Annotated[
    int,
    typer.Option("--inputs", min=1, help="Inputs of the run's data the Jacobian is taken at."),
]
ParametrizationOpt = Annotated[
    str | None,
    typer.Option("--parametrization", "-p", help="sp, ntk or mup (init.parametrization)."),
]
RayOpt = Annotated[
    bool, typer.Option("--ray", help="Run the trials on Ray (pip install 'weightinit-cli[ray]').")
]
