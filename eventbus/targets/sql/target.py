"""The sql target: a batch of payloads becomes rows of one table, in one transaction.

The database work (turning payloads into rows included) runs in a worker thread, one batch at a
time per target behind a lock, so the event loop never waits on a disk or a server.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import anyio

from eventbus.targets.base import DeliveryContext
from eventbus.targets.sql.config import SqlColumn, SqlTargetConfig
from eventbus.targets.sql.rows import RowMaker
from eventbus.targets.sql.statements import Statements

__all__ = ["SqlTarget"]


class _Database(Protocol):
    where: str

    def write(self, statement: str, rows: Sequence[Sequence[Any]], label: str, event_ids: Sequence[str]) -> None: ...

    def close(self) -> None: ...


class SqlTarget:
    """Inserts (or upserts) each payload as a row; returns nothing.

    A failed batch is rolled back whole and raised as a ``DeliveryError``: a constraint the rows
    break is a ``NonRetryableError`` carrying the database's message; a lock, a timeout or a lost
    connection is retryable.
    """

    def __init__(self, config: SqlTargetConfig) -> None:
        self.config = config
        self.max_batch_size = config.max_batch_size
        self.statements = Statements.build(
            config.dialect,
            config.table,
            config.column_specs(),
            on_conflict=config.on_conflict,
            conflict_columns=config.conflict_columns,
        )
        self._rows = RowMaker([(name, c.path, c.context, c.type) for name, c in config.columns.items()])
        create = self.statements.create if config.create_table else None
        self._db: _Database
        if config.path is not None:
            from eventbus.targets.sql.sqlite import SqliteDatabase

            self._db = SqliteDatabase(config.path, timeout=config.timeout, create=create)
        else:
            assert config.dsn is not None
            from eventbus.targets.sql.postgres import PostgresDatabase

            password = config.password.get_secret_value() if config.password is not None else None
            self._db = PostgresDatabase(
                config.dsn.get_secret_value(), password=password, timeout=config.timeout, create=create
            )
        self._label = f"{self._db.where} table {config.table}"
        self._lock = threading.Lock()
        self._async_lock: anyio.Lock | None = None

    @classmethod
    def sqlite(
        cls, path: str | os.PathLike[str], table: str, columns: dict[str, str | SqlColumn], **options: Any
    ) -> SqlTarget:
        """``SqlTarget.sqlite("var/app.db", "orders", {"id": "$.detail.id"}, on_conflict="ignore")``."""
        return cls(SqlTargetConfig(path=os.fspath(path), table=table, columns=columns, **options))

    @classmethod
    def postgres(cls, dsn: str, table: str, columns: dict[str, str | SqlColumn], **options: Any) -> SqlTarget:
        """``SqlTarget.postgres("host=db dbname=app user=app", "orders", {...}, password=...)``."""
        return cls(SqlTargetConfig(dsn=dsn, table=table, columns=columns, **options))

    def __repr__(self) -> str:
        return f"SqlTarget({self._label})"

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> None:
        # Concurrent deliveries queue here, not in worker threads: a target never holds more
        # than one of the threads that anyio shares across the whole process.
        async with self._turn():
            await anyio.to_thread.run_sync(self._write, list(payloads), context)

    async def aclose(self) -> None:
        async with self._turn():
            await anyio.to_thread.run_sync(self._close)

    def _turn(self) -> anyio.Lock:
        if self._async_lock is None:
            self._async_lock = anyio.Lock()  # made on first use: it belongs to a running loop
        return self._async_lock

    def _write(self, payloads: list[str], context: DeliveryContext) -> None:
        rows = self._rows.rows(payloads, context)
        with self._lock:
            self._db.write(self.statements.insert, rows, self._label, context.event_ids)

    def _close(self) -> None:
        with self._lock:
            self._db.close()
