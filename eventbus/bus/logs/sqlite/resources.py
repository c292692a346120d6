"""``SqliteResourceStore``: documents by kind and name in a state file (what an HTTP API created:
buses, rules, connections, API destinations, pipes), so that a restart finds them again.

It is the ``ResourceStore`` of ``eventbus.server.store`` kept durably: synchronous, each call one
short transaction on a connection of its own (API calls are rare; the state file's writer thread
carries the hot path). The table is made on first use.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eventbus.bus.logs.sqlite.store import SCHEMA_VERSION, state_error
from eventbus.errors import StateError

__all__ = ["SqliteResourceStore"]

_TABLE = (
    "CREATE TABLE IF NOT EXISTS resources (kind TEXT NOT NULL, name TEXT NOT NULL, document TEXT NOT NULL, "
    "PRIMARY KEY (kind, name)) WITHOUT ROWID"
)


class SqliteResourceStore:
    """Documents by ``(kind, name)`` in the state file ``path`` (committed when a call returns)."""

    durable = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._made = False

    def __repr__(self) -> str:
        return f"SqliteResourceStore({str(self.path)!r})"

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise state_error(self.path, exc) from None
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"{self.path} was written by a newer eventbus (state schema {version}; this version reads "
                    f"up to {SCHEMA_VERSION}): upgrade eventbus, or give another path"
                )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            if not self._made:
                conn.execute(_TABLE)
                self._made = True
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise state_error(self.path, exc) from None
        finally:
            conn.close()

    def save(self, kind: str, name: str, document: dict[str, Any]) -> None:
        text = json.dumps(document, separators=(",", ":"))
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO resources (kind, name, document) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, name) DO UPDATE SET document = excluded.document",
                (kind, name, text),
            )

    def delete(self, kind: str, name: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM resources WHERE kind = ? AND name = ?", (kind, name))

    def load(self, kind: str) -> dict[str, dict[str, Any]]:
        with self._connect() as conn:
            rows = conn.execute("SELECT name, document FROM resources WHERE kind = ?", (kind,)).fetchall()
        return {name: json.loads(text) for name, text in rows}
