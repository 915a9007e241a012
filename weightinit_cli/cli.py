"""The `winit` command: parse options -> config -> experiment -> render. Thin.

Only typer is imported at module level; every command imports what it needs, so
`winit --help` and `winit methods` never import torch.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from . import __version__

app = typer.Typer(
    name="winit",
    help="See what a weight-initialization method does to your network.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error for a user's mistake and exit; never a traceback."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def user_errors(fn: F) -> F:
    """Turn WinitError raised anywhere below a command into `Error: ...` and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .errors import WinitError

        try:
            return fn(*args, **kwargs)
        except WinitError as err:
            fail(str(err), err.exit_code)

    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"winit {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """See what a weight-initialization method does to your network."""


@app.command()
@user_errors
def methods(
    name: Annotated[
        str | None, typer.Argument(help="Show one method in detail (a name or alias).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the init methods: formula, aliases, what they suit, the paper."""
    from .methods import METHODS, get_method

    chosen = [get_method(name)] if name else list(METHODS.values())
    if as_json:
        data = [m.to_dict() for m in chosen]
        print_json(data[0] if name else data)
        return
    from rich.console import Console

    from .render import method_detail, methods_table

    Console().print(method_detail(chosen[0]) if name else methods_table(chosen))


# Options shared by the experiment commands. Each short option is a `--set` in disguise.
ConfigArg = Annotated[
    Path | None, typer.Argument(help="A YAML experiment config (see configs/).", show_default=False)
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="The same, as an option.", show_default=False)
]
MethodOpt = Annotated[
    str | None, typer.Option("--method", "-m", help="Init method or alias (winit methods).")
]
BackendOpt = Annotated[str | None, typer.Option(help="scratch (NumPy) or torch (torch.nn.init).")]
ActivationOpt = Annotated[
    str | None, typer.Option(help="linear relu leaky_relu tanh sigmoid selu gelu elu silu.")
]
LayerOpt = Annotated[
    str | None,
    typer.Option("--layer", help="dense, conv2d or conv3d stack (with a fitting input and data)."),
]
DepthOpt = Annotated[int | None, typer.Option(help="Hidden layers.")]
WidthOpt = Annotated[int | None, typer.Option(help="Units (dense) or channels (conv) per layer.")]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed (same seed, same numbers).")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="Examples per batch.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Any config field: --set model.depth=30 (repeatable)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (the schema in README).")]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Also write CSV, config, JSON and plots into this new directory."),
]


def load(
    command: str,
    config: Path | None,
    config_opt: Path | None,
    sets: list[str] | None,
    layer: str | None = None,
    **shortcuts: Any,
):
    """The config for a command: file (argument or --config), shortcuts, then --set."""
    from .config import load_config

    if config is not None and config_opt is not None:
        fail("give the config either as an argument or with --config, not both")
    fields = {
        "method": "init.method",
        "backend": "init.backend",
        "activation": "model.activation",
        "depth": "model.depth",
        "width": "model.width",
        "seed": "seed",
        "batch_size": "train.batch_size",
    }
    overrides = [f"{fields[k]}={v}" for k, v in shortcuts.items() if v is not None]
    return load_config(config or config_opt, [*overrides, *(sets or [])], command, layer)


@app.command()
@user_errors
def stats(
    config: ConfigArg = None,
    config_opt: ConfigOpt = None,
    method: MethodOpt = None,
    backend: BackendOpt = None,
    activation: ActivationOpt = None,
    layer: LayerOpt = None,
    depth: DepthOpt = None,
    width: WidthOpt = None,
    seed: SeedOpt = None,
    batch_size: BatchOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
    out: OutOpt = None,
) -> None:
    """Per-layer weight, activation and gradient statistics beside theory."""
    cfg = load(
        "stats",
        config,
        config_opt,
        set_,
        layer,
        method=method,
        backend=backend,
        activation=activation,
        depth=depth,
        width=width,
        seed=seed,
        batch_size=batch_size,
    )
    from .experiments import run_stats
    from .report import stats_json

    result = run_stats(cfg)
    if out is not None:
        from .outputs import write_stats

        write_stats(out, cfg, result)
    if as_json:
        print_json(stats_json(result))
        return
    from rich.console import Console

    from .render import stats_view

    console = Console()
    console.print(stats_view(result, console.width))
    if out is not None:
        console.print(f"[dim]wrote {out}/[/]")


@app.command()
@user_errors
def schema() -> None:
    """Print the config JSON Schema (draft-7), for editor autocompletion."""
    from .config import json_schema

    print_json(json_schema())


StepsOpt = Annotated[int | None, typer.Option(help="Training steps (0: statistics only).")]
RunsDirOpt = Annotated[
    Path | None,
    typer.Option("--runs-dir", help="Where run directories go (default $WINIT_RUNS_DIR or runs/)."),
]


def _weighted_names(cfg: Any) -> list[str]:
    from .models import plan_layers

    return [p.name for p in plan_layers(cfg.model) if p.weight_shape is not None]


def _run_status(stopped: bool, status: str) -> str:
    """meta.json's status: completed | diverged | interrupted (a stuck run completed)."""
    if stopped or status == "interrupted":
        return "interrupted"
    return "diverged" if status == "diverged" else "completed"


@app.command()
@user_errors
def train(
    config: ConfigArg = None,
    config_opt: ConfigOpt = None,
    method: MethodOpt = None,
    backend: BackendOpt = None,
    activation: ActivationOpt = None,
    layer: LayerOpt = None,
    depth: DepthOpt = None,
    width: WidthOpt = None,
    seed: SeedOpt = None,
    batch_size: BatchOpt = None,
    steps: StepsOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
    runs_dir: RunsDirOpt = None,
) -> None:
    """Train one init method on a small task and save the run under runs/."""
    sets = [*([f"train.steps={steps}"] if steps is not None else []), *(set_ or [])]
    cfg = load(
        "train",
        config,
        config_opt,
        sets,
        layer,
        method=method,
        backend=backend,
        activation=activation,
        depth=depth,
        width=width,
        seed=seed,
        batch_size=batch_size,
    )
    from rich.console import Console

    from .experiments import build_dataset, resolve_device, run_train
    from .interrupts import GracefulStop
    from .outputs import RunRecorder, write_train
    from .render import TrainProgress, train_view
    from .report import metrics_columns, metrics_row, train_json

    device = resolve_device(cfg.device)
    data = build_dataset(cfg)
    names = _weighted_names(cfg)
    recorder = RunRecorder(cfg, root=runs_dir, name=cfg.name, device=device)
    recorder.open_metrics(metrics_columns(names))
    try:
        with (
            GracefulStop() as stop,
            TrainProgress(cfg.train.steps, [cfg.init.method], enabled=not as_json) as progress,
        ):

            def on_log(point: Any) -> None:
                recorder.append_metrics(metrics_row(point, names))
                progress.update(cfg.init.method, point)

            result = run_train(cfg, on_log=on_log, should_stop=stop, data=data)
        write_train(recorder, result)
    except BaseException:
        recorder.finish("interrupted" if stop_requested() else "failed")
        raise
    history = result.history
    recorder.finish(_run_status(stop(), history.status))
    if as_json:
        print_json(train_json(result, str(recorder.dir)))
    else:
        Console().print(train_view(result, str(recorder.dir)))
    if stop():
        raise typer.Exit(stop.exit_code)
    if history.status == "diverged":
        fail(
            f"training diverged at step {history.diverged_at} (the loss became inf or nan): "
            "lower train.lr, or pick an init that keeps the signal finite",
            1,
        )


def stop_requested() -> bool:
    """Whether the exception being handled is the user's interrupt."""
    return isinstance(sys.exc_info()[1], KeyboardInterrupt)


def _method_params(methods: list[str], params: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """[(canonical method, its params)] from --methods and --param METHOD.KEY=VALUE."""
    from .config import parse_value
    from .errors import WinitError
    from .methods import canonical_name, resolve_params

    canonical = [canonical_name(m) for m in methods]
    repeated = sorted({m for m in canonical if canonical.count(m) > 1})
    if repeated:
        raise WinitError(f"--methods names {', '.join(repeated)} more than once")
    by_method: dict[str, dict[str, Any]] = {m: {} for m in canonical}
    for text in params:
        key, sep, value = text.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise WinitError(f"--param needs METHOD.KEY=VALUE, e.g. he.mode=fan_out; got {text!r}")
        target = canonical_name(method)
        if target not in by_method:
            raise WinitError(f"--param {text}: {target} is not one of --methods")
        by_method[target][name] = parse_value(value)
    for method, values in by_method.items():
        resolve_params(method, values)
    return list(by_method.items())


@app.command()
@user_errors
def compare(
    methods: Annotated[
        list[str] | None,
        typer.Option("--methods", help="Methods to compare (default: xavier he zero)."),
    ] = None,
    extra: Annotated[
        list[str] | None, typer.Argument(help="More methods after --methods.", show_default=False)
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="A method's parameter: --param he.mode=fan_out."),
    ] = None,
    config_opt: ConfigOpt = None,
    backend: BackendOpt = None,
    activation: ActivationOpt = None,
    layer: LayerOpt = None,
    depth: DepthOpt = None,
    width: WidthOpt = None,
    seed: SeedOpt = None,
    batch_size: BatchOpt = None,
    steps: StepsOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
    out: OutOpt = None,
    runs_dir: RunsDirOpt = None,
) -> None:
    """The same model, data and seed under several inits, side by side."""
    sets = [*([f"train.steps={steps}"] if steps is not None else []), *(set_ or [])]
    cfg = load(
        "compare",
        None,
        config_opt,
        sets,
        layer,
        backend=backend,
        activation=activation,
        depth=depth,
        width=width,
        seed=seed,
        batch_size=batch_size,
    )
    chosen = [*(methods or []), *(extra or [])]
    if methods is not None and not chosen:
        fail("--methods needs at least one method")
    pairs = _method_params(chosen or ["xavier", "he", "zero"], param or [])
    from rich.console import Console

    from .experiments import build_dataset, resolve_device, run_compare
    from .interrupts import GracefulStop
    from .outputs import RunRecorder, write_compare
    from .render import TrainProgress, compare_view
    from .report import compare_json, metrics_columns, metrics_row

    device = resolve_device(cfg.device)
    data = build_dataset(cfg)
    names = _weighted_names(cfg)
    recorder = RunRecorder(cfg, root=runs_dir, out=out, name=f"compare-{cfg.name}", device=device)
    recorder.open_metrics(metrics_columns(names, "method"))
    labels = [m for m, _ in pairs]
    try:
        with (
            GracefulStop() as stop,
            TrainProgress(cfg.train.steps, labels, enabled=not as_json) as progress,
        ):

            def on_log(method: str, point: Any) -> None:
                recorder.append_metrics(metrics_row(point, names, method=method))
                progress.update(method, point)

            result = run_compare(cfg, pairs, on_log=on_log, should_stop=stop, data=data)
        write_compare(recorder, result)
    except BaseException:
        recorder.finish("interrupted" if stop_requested() else "failed")
        raise
    recorder.finish("interrupted" if stop() else "completed")
    if as_json:
        print_json({**compare_json(result), "run_dir": str(recorder.dir)})
    else:
        console = Console()
        console.print(compare_view(result, str(recorder.dir), console.width))
    if stop():
        raise typer.Exit(stop.exit_code)
