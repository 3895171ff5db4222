"""Errors that end a command with one line on stderr, and the one map from error to exit status.

`InputError` (and its kinds) is bad input: exit status 2. `RunFailure` is a run that could
not finish for a reason outside its input (a storage that does not answer, a sweep that
stalled or was interrupted): exit status 1, its state kept for a rerun. Every entry point
(`mmse`, `ray_jobs/*.py`) runs its body through `run_command`, so the mapping exists once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

EXIT_RUN_FAILURE = 1
EXIT_BAD_INPUT = 2


class InputError(Exception):
    """Bad input or usage: a file, a config value, a command-line argument.

    The message is one line that names the file (or key) and the problem; the CLI prints
    it without a traceback and exits with status 2.
    """


class ConfigError(InputError):
    """A config key that is unknown, of the wrong type or out of range."""


class DataError(InputError):
    """A dataset file that breaks the data contract (docs/design.md, "Data")."""


class CheckpointError(InputError):
    """A checkpoint that is corrupt, foreign or of an unknown format version."""


class RunFailure(RuntimeError):
    """A run that stopped for a reason outside its input; the CLI prints the one-line
    message and exits with status 1."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type's name when it has none), cut to
    `limit` characters: what a one-line error quotes of a library's reason."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:limit]


def exit_status(exc: BaseException) -> int | None:
    """The exit status an error ends a command with; None for one that is a bug (traceback)."""
    if isinstance(exc, InputError):
        return EXIT_BAD_INPUT
    if isinstance(exc, RunFailure):
        return EXIT_RUN_FAILURE
    return None


def run_command(prog: str, body: Callable[[], int | None]) -> int:
    """Run a command's body; an InputError or RunFailure becomes `prog: error: <message>` on
    stderr and its exit status, anything else propagates with its traceback."""
    try:
        return int(body() or 0)
    except (InputError, RunFailure) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exit_status(exc)  # type: ignore[return-value]
