"""``StateFileJobStore``: jobs in the runtime's SQLite state file, beside the buses' events.

The ``jobs`` table is the one ``SqliteJobStore`` keeps in a file of its own, and every query is
the same; what differs is who writes. A state file has one writer a process (its ``Store``: one
connection, one thread, group commits), so a job's writes go through it and share commits with
the buses' (a ``POST /jobs`` and a ``PutEvents`` arriving together cost one commit). Reads
(``GET /jobs/{id}``) use a connection of their own on the event loop, as in ``SqliteJobStore``:
a look-up by key in WAL mode never waits for the writer.

The jobs of a state file are served by one process at a time, as a bus is: the store takes the
lock of the owner ``invoke:jobs`` (``lock.py``), since a second process would put the first
one's running jobs back at its start (``recover``) and run them twice.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar

import anyio

from eventbus.bus.logs.sqlite.lock import BusLock
from eventbus.bus.logs.sqlite.store import Store, close_store, close_store_now, open_store_now
from eventbus.errors import StateError, StateLockedError
from eventbus.server.invoke.jobs.sqlite import SCHEMA, SqliteJobStore
from eventbus.server.invoke.jobs.store import JobStoreError

__all__ = ["StateFileJobStore"]

T = TypeVar("T")

#: The row of the state file's ``buses`` table whose lock says which process runs its jobs.
OWNER = "invoke:jobs"


class StateFileJobStore(SqliteJobStore):
    """Jobs in the state file ``path`` (made if missing, with the buses' schema)."""

    def __init__(self, path: str | Path, *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> None:
        super().__init__(path, synchronous=synchronous)
        self._store: Store | None = None
        self._lock: BusLock | None = None

    def __repr__(self) -> str:
        return f"StateFileJobStore({str(self.path)!r})"

    def open_now(self) -> None:
        if self._store is not None:
            return
        try:
            store = open_store_now(self.path, self.synchronous)
        except StateError as exc:
            raise JobStoreError(f"cannot keep jobs in the state file: {exc}") from None
        try:

            def prepare(conn: sqlite3.Connection) -> tuple[int, str | None]:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT OR IGNORE INTO buses (name) VALUES (?)", (OWNER,))
                row = conn.execute("SELECT id, holder FROM buses WHERE name = ?", (OWNER,)).fetchone()
                return int(row[0]), row[1]

            owner_id, holder = store.run_blocking(prepare)
            try:
                self._lock = BusLock.acquire(self.path, owner_id, OWNER, holder)
            except StateLockedError as exc:
                who = "this process runs them already" if "this process" in str(exc) else "another process runs them"
                if holder and "this process" not in str(exc):
                    who += f" ({holder})"
                raise JobStoreError(
                    f"the jobs of the state file {self.path} cannot be run here: {who}, and two would run "
                    "the same jobs twice; stop the other one, or give this one another state file "
                    "(runtime.backend.path) or a job store of its own (invoke.jobs.type: sqlite)"
                ) from None
            # Who runs them, for the refusal a second process gets.
            me = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}"
            store.run_blocking(lambda conn: conn.execute("UPDATE buses SET holder = ? WHERE id = ?", (me, owner_id)))
            reader = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        except JobStoreError:
            self._release(store)
            raise
        except (StateError, sqlite3.Error) as exc:
            self._release(store)
            raise JobStoreError(f"cannot keep jobs in the state file {self.path}: {exc}") from None
        except BaseException:
            self._release(store)
            raise
        self._store, self._reader = store, reader

    def _release(self, store: Store) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        close_store_now(store)

    async def open(self) -> None:
        if self._store is None:
            await anyio.to_thread.run_sync(self.open_now)

    async def close(self) -> None:
        store, reader = self._store, self._reader
        self._store = self._reader = None
        if reader is not None:
            reader.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if store is not None:
            await close_store(store)

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        store = self._store
        if store is None:
            raise JobStoreError("the job store is closed")
        try:
            return await store.run(op)
        except StateError as exc:
            raise JobStoreError(f"the job store failed: {exc}") from None
