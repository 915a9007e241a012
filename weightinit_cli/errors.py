"""The one error type for user mistakes, caught at the command boundary."""

from __future__ import annotations


class WinitError(Exception):
    """A problem the user can fix: bad config, unknown method, impossible shape.

    The CLI prints it as one ``Error: ...`` line (ConfigErrors: a line per problem) and
    exits with ``exit_code`` (2 for usage and config errors, 1 for a fault during a run).
    """

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    def __reduce__(self) -> tuple:
        # Keeps the exit code when the error crosses a process boundary (compare's workers).
        return (_rebuild, (type(self), str(self), self.exit_code))


def _rebuild(cls: type[WinitError], message: str, exit_code: int) -> WinitError:
    return cls(message, exit_code=exit_code)


class ShapeError(WinitError, ValueError):
    """A tensor or layer shape that a method or model cannot work with."""


class ConfigErrors(WinitError):
    """Every problem of one config, a line each (each line already free of line breaks)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems

    def __reduce__(self) -> tuple:
        return (type(self), (self.problems,))
