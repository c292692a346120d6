"""``SqlitePlaces``: pipes' places in a state file (the ``places`` table), one owner each.

The file is opened on first use and the owner (``pipe:<name>``) is locked like a bus: two
processes running the same pipe on one file would both read it from the same place.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import anyio

from eventbus.bus.logs.sqlite.lock import BusLock
from eventbus.bus.logs.sqlite.store import Store, Synchronous, close_store, open_store

__all__ = ["SqlitePlaces"]


class SqlitePlaces:
    """The saved place of ``owner`` in the state file ``path``."""

    def __init__(self, path: str | os.PathLike[str], owner: str, *, synchronous: Synchronous = "NORMAL") -> None:
        self.path = Path(path)
        self.owner = owner
        self.synchronous: Synchronous = synchronous
        self._store: Store | None = None
        self._lock: BusLock | None = None

    def __repr__(self) -> str:
        return f"SqlitePlaces({str(self.path)!r}, {self.owner!r})"

    async def _open(self) -> Store:
        if self._store is not None:
            return self._store
        store = await open_store(self.path, self.synchronous)
        owner = self.owner
        try:

            def register(conn: sqlite3.Connection) -> tuple[int, str | None]:
                conn.execute("INSERT OR IGNORE INTO buses (name) VALUES (?)", (owner,))
                row = conn.execute("SELECT id, holder FROM buses WHERE name = ?", (owner,)).fetchone()
                return int(row[0]), row[1]

            owner_id, holder = await store.run(register)
            self._lock = await anyio.to_thread.run_sync(BusLock.acquire, self.path, owner_id, owner, holder)
        except BaseException:
            await close_store(store)
            raise
        self._store = store
        return store

    async def load(self) -> dict[str, str]:
        store = await self._open()
        owner = self.owner

        def read(conn: sqlite3.Connection) -> dict[str, str]:
            return dict(conn.execute("SELECT key, value FROM places WHERE owner = ?", (owner,)).fetchall())

        return await store.run(read)

    async def save(self, changes: Mapping[str, str | None]) -> None:
        if not changes:
            return
        store = await self._open()
        owner = self.owner
        sets = [(owner, k, v) for k, v in changes.items() if v is not None]
        drops = [(owner, k) for k, v in changes.items() if v is None]

        def write(conn: sqlite3.Connection) -> None:
            if sets:
                conn.executemany(
                    "INSERT INTO places (owner, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (owner, key) DO UPDATE SET value = excluded.value",
                    sets,
                )
            if drops:
                conn.executemany("DELETE FROM places WHERE owner = ? AND key = ?", drops)

        await store.run(write)

    async def close(self) -> None:
        store, self._store = self._store, None
        if store is None:
            return
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        await close_store(store)
