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
