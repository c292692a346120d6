"""PostgreSQL through psycopg 3 (the ``eventbus[postgres]`` extra), used from worker threads.

psycopg's blocking connection runs in a worker thread under the target's lock, as SQLite does, so
the target works on any anyio backend (psycopg's async connection is asyncio-only). Each batch is
one transaction; ``executemany`` sends its rows in one pipeline. Every value is sent as text of
unknown type, so the server reads it as the column's type, as it would read a literal: ``7``,
``"7"`` and ``true`` land in integer, text and boolean columns alike.

Errors are classified by SQLSTATE: integrity, data and most syntax classes would fail again and are
not retried; serialization failures, deadlocks, lock and statement timeouts, and lost or refused
connections are. Messages never carry the connection string or the password.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict

from eventbus.errors import (
    DeliveryError,
    NonRetryableError,
    ResourceNotFoundError,
    RetryableError,
    TargetPermissionError,
    TargetTimeoutError,
)
from eventbus.targets._common import scrub

__all__ = ["PostgresDatabase"]

#: SQLSTATE classes no retry fixes: data exceptions, integrity constraints, syntax and access rules.
_NON_RETRYABLE_CLASSES = {"22", "23", "42", "44", "2F", "0A"}


class PostgresDatabase:
    """Writes rows through one connection, opened on first use and again after it breaks."""

    dialect = "postgres"

    def __init__(self, dsn: str, *, password: str | None, timeout: float, create: str | None) -> None:
        self._dsn = dsn
        self._password = password
        self.timeout = timeout
        self.create = create
        self._conn: psycopg.Connection[Any] | None = None
        params = conninfo_to_dict(dsn)
        host = str(params.get("host") or params.get("hostaddr") or "localhost")
        port = f":{params['port']}" if params.get("port") else ""
        #: Where, for messages and reprs: host, port and database, never credentials.
        self.where = f"PostgreSQL {host}{port}/{params.get('dbname') or params.get('user') or ''}".rstrip("/")
        self._secrets = _secrets_of(dsn, params, password)

    def write(self, statement: str, rows: Sequence[Sequence[Any]], label: str, event_ids: Sequence[str]) -> None:
        """Every row in one transaction, or none; a failure is raised as a ``DeliveryError``."""
        try:
            conn = self._connect()
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(statement, [[_bind(value) for value in row] for row in rows])
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) or (
                self._conn is not None and self._conn.broken
            ):
                self._drop()
            raise self._classify(exc, label) from None

    def close(self) -> None:
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # A broken connection may fail to close too; it is gone either way.
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self._drop()
        options: dict[str, Any] = {
            "autocommit": True,  # transactions are explicit, one a batch
            "connect_timeout": max(1, math.ceil(self.timeout)),
            "application_name": "eventbus",
        }
        if self._password is not None:
            options["password"] = self._password
        conn = psycopg.connect(self._dsn, **options)
        try:
            conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{math.ceil(self.timeout * 1000)}",))
            if self.create is not None:
                # Another process creating it at the same moment makes ours clash: it is there.
                with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
                    conn.execute(self.create)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _classify(self, exc: psycopg.Error, label: str) -> DeliveryError:
        message = scrub(f"{label}: {_describe(exc)}", self._secrets)
        state = exc.sqlstate or ""
        if state in ("57014", "55P03"):  # statement timeout, lock not available
            return TargetTimeoutError(message)
        if state == "42501" or state.startswith("28"):
            return TargetPermissionError(message)
        if state in ("42P01", "3F000", "3D000"):  # no such table, schema, database
            return ResourceNotFoundError(message)
        if state[:2] in _NON_RETRYABLE_CLASSES:
            return NonRetryableError(message)
        if not state and isinstance(exc, psycopg.OperationalError) and "authentication failed" in str(exc):
            # The server refused the login: another attempt with the same password fails the same way.
            return TargetPermissionError(message)
        if not state and isinstance(exc, psycopg.DataError | psycopg.ProgrammingError):
            return NonRetryableError(message)  # refused by psycopg before it reached the server
        # Connection failures (08, or no state at all), serialization failures and deadlocks (40),
        # insufficient resources (53), a server shutting down (57): worth another attempt.
        return RetryableError(message)


def _bind(value: Any) -> str | None:
    if value is None:
        return None
    if value is True or value is False:
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)


def _describe(exc: psycopg.Error) -> str:
    """The server's message and its detail (which names the key of a duplicate), on one line."""
    diag = exc.diag
    primary = diag.message_primary if exc.sqlstate else None
    if primary:
        detail = diag.message_detail
        return f"{primary} ({detail})" if detail else primary
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return " ".join(lines) or type(exc).__name__


def _secrets_of(dsn: str, params: dict[str, Any], password: str | None) -> list[str]:
    """Every form a secret may take in a message: the whole string, the password decoded and as
    written in a URL."""
    found = [dsn, password or "", str(params.get("password") or "")]
    if "://" in dsn:
        with contextlib.suppress(ValueError):
            found.append(urlsplit(dsn).password or "")
    # Longest first, so a password inside the connection string is not half-replaced.
    return sorted({s for s in found if s}, key=len, reverse=True)
