"""SQLite through the standard library: one connection a target, used from worker threads.

Each batch is one ``BEGIN IMMEDIATE`` ... ``COMMIT``: the write lock is taken up front and waited
for up to ``timeout`` seconds, so a database another process holds locked is a retryable failure,
never a half-written batch. Errors are classified by SQLite's own result code.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eventbus.errors import (
    DeliveryError,
    NonRetryableError,
    ResourceNotFoundError,
    RetryableError,
    TargetPermissionError,
)

__all__ = ["SqliteDatabase"]

_INT64 = range(-(2**63), 2**63)

#: Result codes that another attempt may get past (a lock, a full disk, a file not there yet).
_RETRYABLE = {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_PROTOCOL"}
_PERMISSION = {"SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH"}


class SqliteDatabase:
    """Writes rows to one SQLite file. Not thread-safe: the target calls it under its lock."""

    dialect = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, timeout: float, create: str | None) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.create = create
        self._conn: sqlite3.Connection | None = None
        #: Where, for messages and reprs.
        self.where = f"SQLite {self.path}"

    def write(self, statement: str, rows: Sequence[Sequence[Any]], label: str, event_ids: Sequence[str]) -> None:
        """Every row in one transaction, or none; a failure is raised as a ``DeliveryError``."""
        index = None
        try:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for index, row in enumerate(rows):  # noqa: B007 - read by the error below
                    conn.execute(statement, [_bind(value) for value in row])
                index = None
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _classify(exc, label, _which(index, len(rows), event_ids)) from None
        except PermissionError as exc:
            raise TargetPermissionError(f"{label}: {exc.strerror}") from None
        except OSError as exc:  # the folder could not be made
            raise RetryableError(f"{label}: {exc.strerror or exc}") from None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are ours (BEGIN IMMEDIATE), not the module's.
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            try:
                # SQLite leaves foreign keys unchecked unless a connection asks: a row that breaks
                # one is a constraint violation here, as in PostgreSQL.
                conn.execute("PRAGMA foreign_keys = ON")
                if self.create is not None:
                    conn.execute(self.create)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn


def _bind(value: Any) -> Any:
    # SQLite integers are 64-bit; a larger JSON number is kept as its digits rather than refused.
    if type(value) is int and value not in _INT64:
        return str(value)
    return value


def _which(index: int | None, count: int, event_ids: Sequence[str]) -> str:
    """Which row of the batch failed, when it is known and there is something to tell."""
    if index is None:
        return ""
    parts = [f"row {index + 1} of {count}"] if count > 1 else []
    if index < len(event_ids) and event_ids[index]:
        parts.append(f"event {event_ids[index]}")
    return f" ({', '.join(parts)})" if parts else ""


def _classify(exc: sqlite3.Error, label: str, which: str) -> DeliveryError:
    name = getattr(exc, "sqlite_errorname", "") or ""
    message = f"{label}: {exc}{which}"
    if name.startswith("SQLITE_CONSTRAINT") or isinstance(exc, sqlite3.IntegrityError):
        return NonRetryableError(message)
    if any(name.startswith(code) for code in _RETRYABLE):
        return RetryableError(message)
    if any(name.startswith(code) for code in _PERMISSION):
        return TargetPermissionError(message)
    if "no such table" in str(exc):
        return ResourceNotFoundError(message)
    if isinstance(exc, sqlite3.OperationalError) and not name:
        return RetryableError(message)
    # SQLITE_ERROR (no such column, a syntax the server refuses), SQLITE_MISMATCH, SQLITE_TOOBIG...:
    # the same rows would fail the same way again.
    return NonRetryableError(message)
