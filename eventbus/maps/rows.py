"""A row of a map: where it was read, its value, and how many times it was tried.

A ``Row`` is the unit of a map's work from the moment it is read until it ends succeeded or
failed. It is a small slotted object, made once per row in the reader's thread and passed by
reference from there on: a map handles millions of them, so nothing per row costs more than it
must. A row the reader could not parse carries ``error`` instead of a ``value`` and is never
invoked; it is reported with its line like any failed row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from eventbus.errors import NonRetryableError

__all__ = ["MALFORMED_ROW", "MalformedRowError", "Position", "Row", "RowFailure"]

#: The error code of a row the reader could not parse (a dead letter's ``ERROR_CODE``).
MALFORMED_ROW: Final = "MALFORMED_ROW"


class MalformedRowError(NonRetryableError):
    """A row that is not valid CSV or JSON (or not text in the file's encoding): reading it
    again cannot help."""

    error_code = MALFORMED_ROW


class Row:
    """One row: ``file`` (index into the map's files), ``line`` (where the row starts, from 1),
    ``value`` (a CSV row as an object of its columns, a JSON Lines line parsed), and ``text``
    (the line as written, for JSON Lines and for malformed rows; ``None`` for a good CSV row)."""

    __slots__ = ("attempt", "end", "error", "file", "line", "read_at", "seq", "text", "value")

    def __init__(
        self,
        seq: int,
        file: int,
        line: int,
        value: Any,
        text: str | None,
        read_at: datetime,
        end: int,
        error: str | None = None,
    ) -> None:
        #: The row's place in the whole map, from 0: what a checkpoint counts.
        self.seq = seq
        self.file = file
        self.line = line
        self.value = value
        self.text = text
        #: Why the row could not be read (it is then malformed and never invoked).
        self.error = error
        #: 1 on the first try, 2 on the first retry, ...
        self.attempt = 1
        #: When it was read: its age decides ``maximum_record_age_in_seconds``.
        self.read_at = read_at
        #: The byte offset in its file just after the row: where reading resumes after it.
        self.end = end

    def __repr__(self) -> str:
        state = f"malformed: {self.error}" if self.error is not None else f"attempt {self.attempt}"
        return f"Row(file={self.file}, line={self.line}, {state})"


@dataclass(frozen=True, slots=True)
class RowFailure:
    """A row that failed for good, as the summary reports it."""

    #: The file's name (not its folder).
    file: str
    line: int
    #: The error code (``SDK_CLIENT_ERROR``, ``TIMEOUT``, ``MALFORMED_ROW``...).
    error: str
    #: Why, in words (secrets masked).
    cause: str
    #: Tries made (0 for a malformed row, which is never tried).
    attempts: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.error}: {self.cause}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "error": self.error, "cause": self.cause, "attempts": self.attempts}


@dataclass(frozen=True, slots=True)
class Position:
    """Where a map stands in its files: every row before it has ended (the resume seam).

    ``file`` is the index of the file being read, ``offset`` the byte offset in it to read on
    from (the start of a line), and ``rows`` the rows of the whole map before it.
    """

    file: int = 0
    offset: int = 0
    rows: int = 0
