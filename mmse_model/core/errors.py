"""Errors the CLI turns into one line on stderr and exit status 2."""

from __future__ import annotations


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
