"""What every `winit` command shares at the terminal: one `Error:` line for a user's
mistake (click's usage errors too), output written so that a full disk or a closed pipe
is one line and not a traceback, and the console that renderings print on.

Only typer is imported at module level (`winit --help` must stay fast).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from typing import Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    """Print an error for a user's mistake and exit; never a traceback. One line, or a
    line per problem where a config has several (split at newlines only: any other
    control character, as any user text in the message, is shown escaped)."""
    from .printable import printable

    first, *rest = message.split("\n")
    typer.echo(f"Error: {printable(first)}", err=True)
    for line in rest:
        typer.echo(f"       {printable(line)}", err=True)
    raise typer.Exit(code)


def warn(messages: list[str]) -> None:
    """Print what went wrong beside a run that went on (a tracker that stopped), on stderr."""
    from .printable import printable

    for message in messages:
        typer.echo(f"Warning: {printable(message)}", err=True)


def _discard_stdout() -> None:
    """Point stdout at /dev/null after a write to it failed: what is still buffered would
    fail again at exit, which Python reports as "Exception ignored" and exit status 120."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # no descriptor (a test's runner): nothing left
        pass


@contextmanager
def writing_output() -> Iterator[None]:
    """Around a write to stdout: a full disk (`> /dev/full`) or a bad descriptor is one
    Error line and exit 1. A reader that went away (`| head -1`, EPIPE) is left to click,
    which exits quietly with 1."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as err:
        _discard_stdout()
        fail(f"cannot write the output: {err.strerror or err}", 1)


class OneLineCommand(TyperCommand):
    """A command whose --help, written to a full disk, is one Error line too (parsing
    writes nothing else, so any OSError while parsing is that write's)."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with writing_output():
            return super().make_context(*args, **kwargs)


class OneLineErrors(TyperGroup):
    """Command-line mistakes (unknown option, bad value, typo'd command) as one Error line,
    like every other user error, instead of click's boxed usage message."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """One line per command: its whole first sentence, not click's 45-character cut."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=200)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    @staticmethod
    def _fail(err: typer.TyperException) -> None:
        ctx = getattr(err, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        fail(" ".join(err.format_message().split()) + hint, getattr(err, "exit_code", 2))

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            with writing_output():  # --help, --version
                return super().make_context(*args, **kwargs)
        except typer.TyperException as err:
            self._fail(err)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except typer.TyperException as err:
            self._fail(err)


def user_errors(fn: F) -> F:
    """Turn a WinitError raised anywhere below a command into `Error: ...` and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .errors import ConfigErrors, WinitError

        try:
            return fn(*args, **kwargs)
        except ConfigErrors as err:
            fail(str(err), err.exit_code)
        except WinitError as err:
            from .printable import printable

            fail(printable(err), err.exit_code)  # one line: a line break in it is user text
        except BrokenPipeError:
            raise  # the reader went away: click ends quietly
        except OSError as err:
            # a path the system refuses before winit can say more (too long, no access on
            # the way): the user's to fix, as the path is theirs
            where = f"{err.filename}: " if err.filename else ""
            fail(f"{where}{err.strerror or err}", 2)

    return wrapper  # type: ignore[return-value]


def write_out(text: str) -> None:
    """Text on stdout, flushed here, so that a failed write is found here and not at exit."""
    with writing_output():
        sys.stdout.write(text)
        sys.stdout.flush()


@contextmanager
def json_only_on_stdout(as_json: bool) -> Iterator[None]:
    """With --json, what a user's module prints (at import, in its forward) goes to stderr,
    so that stdout holds the JSON alone."""
    if not as_json:
        yield
        return
    with redirect_stdout(sys.stderr):
        yield


def print_json(data: Any) -> None:
    # json.dumps escapes control characters and an undecodable file-name byte (\udcff)
    write_out(json.dumps(data, indent=2) + "\n")


def console() -> Any:
    from rich.console import Console

    return Console()


def show(renderable: Any, shown: Any | None = None) -> None:
    """A rendering printed on stdout (on the console `shown`, else a new one)."""
    with writing_output():
        (console() if shown is None else shown).print(renderable)
