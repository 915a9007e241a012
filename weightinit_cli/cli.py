"""The `winit` command: parse options -> config -> experiment -> render. Thin.

Only typer is imported at module level; every command imports what it needs, so
`winit --help` and `winit methods` never import torch.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
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
