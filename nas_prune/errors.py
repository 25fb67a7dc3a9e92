"""Typed errors of nas-prune.

Every error a user can cause is a :class:`NasPruneError`: its message is one line that names the
problem and the fix. The CLI prints it and exits with code 2; the API raises it.
"""

from __future__ import annotations

__all__ = [
    "NasPruneError",
    "InvalidFileError",
    "SpaceMismatchError",
    "UnknownModelError",
    "UnsupportedModelError",
    "InvalidArchitectureError",
    "DataError",
]


class NasPruneError(Exception):
    """Base class of every error caused by user input (exit code 2 in the CLI).

    The message is kept to one line: whitespace runs (newlines from a quoted key, a library's
    multi-line message) become single spaces.
    """

    exit_code = 2

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(" ".join(str(message).split()), *args)


class InvalidFileError(NasPruneError):
    """A file is missing, truncated, corrupt or of the wrong kind."""


class SpaceMismatchError(NasPruneError):
    """An artefact (architecture, table, gates, PruningNet) belongs to another search space."""


class UnknownModelError(NasPruneError):
    """A model name is neither registered nor a ``package.module:factory`` spec."""


class UnsupportedModelError(NasPruneError):
    """A model contains an operation nas-prune cannot derive channel groups for."""


class InvalidArchitectureError(NasPruneError):
    """An architecture has a channel count outside its gene's choices, or unknown genes."""


class DataError(NasPruneError):
    """A dataset is missing, empty, unreadable or unusable (e.g. a single class)."""
