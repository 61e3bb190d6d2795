"""Errors of the run database.

Every problem with the user's input or with the database content is a ``RunsDBError`` whose ``str()`` is
one line naming where the problem is (file, row, column) and what is wrong, so a CLI can print it as is::

    runs.csv: row 4, column 'value': 43.97 looks like a percent; expected a fraction in [0, 1]

Rows follow the spreadsheet convention: in a CSV the header is row 1, so the first data row is row 2; in
JSON-lines files and logs the row is the 1-based line number. ``column`` is a CSV column, a JSON key or a
dotted JSON path (``evals[1].value``). Anything else that escapes the package is a bug.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

# Control characters (a NUL in a CSV cell, an escape sequence in a file name) are shown escaped, so that a
# message stays one printable line on any terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x00``) and whitespace runs folded to one space."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))
    return " ".join(text.split())


class RunsDBError(Exception):
    """A domain error; ``str()`` is one line: ``<file>: row <n>, column '<c>': <message>``."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        # One line whatever the message holds (it may quote user input).
        self.message = printable(message)
        self.file = printable(str(file)) if file is not None else None
        self.row = row
        self.column = printable(column) if column is not None else None
        super().__init__(self._line())

    def _line(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        loc = ", ".join(where)
        if self.file is not None:
            loc = f"{self.file}: {loc}" if loc else self.file
        return f"{loc}: {self.message}" if loc else self.message

    def __str__(self) -> str:
        return self._line()


class ValidationError(RunsDBError):
    """Input that cannot be imported: missing column, NaN, non-positive size, percent-like accuracy..."""


class ConflictError(RunsDBError):
    """A run (or one of its evaluations) already stored with different content: nothing is overwritten."""


class UnknownRunError(RunsDBError):
    """A run id (or id prefix) that matches no run, or more than one."""


class ValidationErrors(ValidationError):
    """Every problem found in a dry run (``validate_paths``): one ``RunsDBError`` per bad row, record or file.

    ``str()`` is the first problem's line (with how many more there are); ``errors`` holds them all.
    """

    def __init__(self, errors: Sequence[RunsDBError]) -> None:
        if not errors:
            raise ValueError("ValidationErrors needs at least one error")
        self.errors = tuple(errors)
        first = self.errors[0]
        more = len(self.errors) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        super().__init__(first.message + suffix, file=first.file, row=first.row, column=first.column)
