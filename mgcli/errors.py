"""User-facing errors.

Library code raises :class:`MgError` (or a subclass) for anything the user can fix: a missing
file, a malformed label row, a wrong artifact schema. The CLI turns it into one line on stderr,
``error: <file>: <problem>``, and exit code 2; ``mg --debug`` shows the traceback as well.
"""

from __future__ import annotations

from os import PathLike


class MgError(Exception):
    """An error the user can act on: names the file (when there is one) and the problem."""

    exit_code = 2

    def __init__(self, message: str, path: str | PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class DataError(MgError):
    """Input data (release files, CSVs, videos) is missing or malformed."""


class SchemaError(MgError):
    """An artifact is not what the reader expects (wrong schema, missing fields, bad shapes)."""


class OutputExistsError(MgError):
    """An output exists and ``--overwrite`` was not given."""
