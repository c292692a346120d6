"""One SQLite state file in this process: its connection, its writer thread, its schema.

Every log, queue, archive store and place store over a file shares one ``Store`` (a registry
keyed by the file's real path hands out the same one), so everything a process writes to the
file goes through one connection owned by one thread. Callers hand it operations (a function
of the connection); the thread takes every operation waiting, runs them in one transaction and
commits once (group commit): eight concurrent ``put_events`` calls cost one commit, not eight.
An operation is a plain function of the connection that changes nothing outside the database,
so that a batch that fails can be run again one operation at a time: one bad operation fails
alone, and a full disk fails each operation with its own clear error.

The schema's version is ``PRAGMA user_version``: a file from a newer version is refused rather
than misread, and anything that is not a database, or a database of something else, is refused
with the reason.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio

from eventbus._logger import get_logger
from eventbus.bus.logs.sqlite._loop import LoopHandle
from eventbus.bus.logs.sqlite.writes import Writes
from eventbus.errors import StateError

__all__ = ["SCHEMA_VERSION", "Store", "Synchronous", "close_store", "close_store_now", "open_store", "open_store_now", "state_error"]

T = TypeVar("T")

Synchronous = Literal["NORMAL", "FULL"]

_log = get_logger("eventbus.bus")

#: The schema this version writes and reads; a file with a higher ``user_version`` is refused.
SCHEMA_VERSION = 1

#: Operations one transaction takes at most (a bound on how long a commit holds the file).
_MAX_BATCH = 4096

#: Waits this long for another process's write transaction before failing the operation.
_BUSY_TIMEOUT = 10.0

#: Tables another part of eventbus may keep in a state file before its buses do (the SQLite
#: queue's messages, an HTTP API's resources).
_NEIGHBOURS = {"messages", "sqlite_sequence", "resources"}

# Keys are ``bus id << 40 | n``: each bus's rows are one range of the primary key, numbered by
# the process serving the bus, so rows need no bus column, no index and no round trip for
# their key (a bus holds 2**40 events before its numbers wrap).
SCHEMA = """
CREATE TABLE buses (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    holder TEXT
);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    event TEXT NOT NULL,
    ingestion_time INTEGER NOT NULL,
    chain TEXT,
    target_rule TEXT,
    target_id TEXT,
    only_rules TEXT
);
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    route TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    ingestion_time INTEGER NOT NULL,
    chain TEXT,
    attempts INTEGER NOT NULL,
    due INTEGER NOT NULL
);
CREATE TABLE inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bus TEXT NOT NULL,
    event TEXT NOT NULL,
    ingestion_time INTEGER NOT NULL,
    chain TEXT,
    target_rule TEXT,
    target_id TEXT,
    only_rules TEXT
);
CREATE INDEX inbox_bus ON inbox (bus, id);
CREATE TABLE schedules (
    bus TEXT NOT NULL,
    rule TEXT NOT NULL,
    fired INTEGER NOT NULL,
    PRIMARY KEY (bus, rule)
) WITHOUT ROWID;
CREATE TABLE places (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (owner, key)
) WITHOUT ROWID;
CREATE TABLE archives (
    name TEXT PRIMARY KEY,
    arn TEXT NOT NULL,
    bus TEXT NOT NULL,
    bus_arn TEXT NOT NULL,
    pattern TEXT,
    description TEXT,
    retention_days INTEGER NOT NULL,
    state TEXT NOT NULL,
    created INTEGER NOT NULL,
    event_count INTEGER NOT NULL DEFAULT 0,
    size_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE archive_events (
    id INTEGER PRIMARY KEY,
    archive TEXT NOT NULL,
    event_id TEXT NOT NULL,
    time INTEGER NOT NULL,
    ingestion_time INTEGER NOT NULL,
    event TEXT NOT NULL
);
CREATE UNIQUE INDEX archive_events_event ON archive_events (archive, event_id);
CREATE INDEX archive_events_time ON archive_events (archive, time, id);
CREATE INDEX archive_events_age ON archive_events (archive, ingestion_time);
CREATE TABLE replays (
    name TEXT PRIMARY KEY,
    arn TEXT NOT NULL,
    archive TEXT NOT NULL,
    archive_arn TEXT NOT NULL,
    bus TEXT NOT NULL,
    bus_arn TEXT NOT NULL,
    filter_arns TEXT NOT NULL,
    description TEXT,
    start_time INTEGER NOT NULL,
    end_time INTEGER NOT NULL,
    state TEXT NOT NULL,
    state_reason TEXT,
    last_replayed INTEGER,
    replay_start INTEGER,
    replay_end INTEGER,
    cursor_time INTEGER,
    cursor_id INTEGER,
    replayed INTEGER NOT NULL DEFAULT 0,
    total INTEGER
);
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;
"""


def state_error(path: Path, exc: BaseException) -> StateError:
    """A clear error for what SQLite said about ``path``: what is wrong and what to do."""
    text = str(exc)
    lowered = text.lower()
    if "not a database" in lowered or "malformed" in lowered:
        return StateError(
            f"{path} is not a usable state file ({text}): it is not an SQLite database or it is damaged; "
            "move it away (a fresh state file is made in its place) or give another path"
        )
    if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered or "permission" in lowered:
        return StateError(
            f"{path} cannot be written ({text}): the state file and its folder must be writable "
            "by this process; give a writable path or fix their permissions"
        )
    if "full" in lowered:
        return StateError(f"{path} is full ({text}): free disk space (what was accepted is kept)")
    if "locked" in lowered or "busy" in lowered:
        return StateError(f"{path} is busy ({text}): another process held it too long; try again")
    return StateError(f"{path}: {type(exc).__name__}: {text}")


class _Op:
    __slots__ = ("done", "error", "fn", "handle", "result", "then")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], Any] | Writes,
        done: anyio.Event | None,
        handle: LoopHandle | _ThreadHandle | None,
        then: Callable[[Any], None] | None = None,
    ) -> None:
        self.fn = fn
        self.done = done
        self.handle = handle
        #: Runs on the caller's loop once committed, before the caller wakes, in commit order.
        self.then = then
        self.result: Any = None
        self.error: BaseException | None = None


class Store:
    """The file, its connection and the thread that writes it. Use ``open_store``."""

    def __init__(self, path: Path, key: str, synchronous: Synchronous) -> None:
        self.path = path
        self.key = key
        self.synchronous = synchronous
        self.refs = 0
        #: A ``PRAGMA synchronous`` to apply between two transactions (it cannot change inside one).
        self.pending_pragma: str | None = None
        self._conn = _connect(path, synchronous)
        self._ops: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=f"eventbus-sqlite {path.name}", daemon=True)
        self._thread.start()
        self._stopped = False
        #: Operations handed over and not finished, as their callers see it (``idle``).
        self._unfinished = 0

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- from the event loop ------------------------------------------------------------------

    async def write(self, writes: Writes, then: Callable[[None], None] | None = None) -> None:
        """Apply ``writes`` in the next transaction (merged with everyone else's) and return once
        it is committed; ``then`` as for ``run``."""
        await self.run(writes, then)

    async def run(
        self, fn: Callable[[sqlite3.Connection], T] | Writes, then: Callable[[T], None] | None = None
    ) -> T:
        """Run ``fn(connection)`` in the next transaction and return what it returned once the
        transaction is committed; raise what it raised (a ``StateError`` for SQLite's errors).

        ``then(result)``, if given, runs on this loop once the transaction is committed, before
        any task wakes, in the order of the commits: what is committed first is seen first
        (a scheduler that shuffles woken tasks cannot reorder it).

        The wait is shielded: a caller cancelled meanwhile still sees its operation committed
        (operations take milliseconds), so nothing it counted on is left half done.
        """
        if self._stopped:
            raise StateError(f"{self.path} is closed")
        op = _Op(fn, anyio.Event(), LoopHandle.current(), then)
        self._unfinished += 1
        self._ops.put(op)
        assert op.done is not None
        try:
            with anyio.CancelScope(shield=True):
                await op.done.wait()
        finally:
            self._unfinished -= 1
        if op.error is not None:
            raise op.error
        result: T = op.result
        return result

    @property
    def idle(self) -> bool:
        """Nothing handed over is still being written or waited for (tests settle on it)."""
        return self._unfinished == 0

    def submit(self, fn: Callable[[sqlite3.Connection], Any] | Writes) -> None:
        """Run ``fn(connection)`` in the next transaction without waiting for it (a failure is
        logged). Operations run in the order they were handed over."""
        if not self._stopped:
            with _registry:
                self._unfinished += 1
            self._ops.put(_Op(fn, None, None))

    def run_blocking(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``run`` for a caller outside any event loop (a worker thread)."""
        if self._stopped:
            raise StateError(f"{self.path} is closed")
        handle = _ThreadHandle(threading.Event())
        op = _Op(fn, None, handle)
        self._ops.put(op)
        handle.done.wait()
        if op.error is not None:
            raise op.error
        out: T = op.result
        return out

    # -- the writer thread --------------------------------------------------------------------

    def _serve(self) -> None:
        stop = False
        while not stop:
            first = self._ops.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < _MAX_BATCH:
                try:
                    more = self._ops.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            try:
                self._commit(batch)
            except BaseException as exc:  # the thread must outlive anything an operation does
                for op in batch:
                    if op.error is None:
                        op.error = state_error(self.path, exc)
            self._finish(batch)
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def _commit(self, batch: list[_Op]) -> None:
        conn = self._conn
        pragma, self.pending_pragma = self.pending_pragma, None
        if pragma is not None:
            conn.execute(pragma)
        try:
            conn.execute("BEGIN IMMEDIATE")
            merged = Writes()
            calls = []
            for op in batch:
                if isinstance(op.fn, Writes):
                    merged.merge(op.fn)
                else:
                    calls.append(op)
            merged.apply(conn)
            for op in calls:
                op.result = op.fn(conn)  # type: ignore[operator]
            conn.execute("COMMIT")
            return
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if len(batch) == 1:
                self._alone(batch[0])
                return
        # Something failed: run each operation on its own, so that it fails alone.
        for op in batch:
            op.result = None
            self._alone(op)

    def _alone(self, op: _Op) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            if isinstance(op.fn, Writes):
                op.fn.apply(conn)
            else:
                op.result = op.fn(conn)
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            op.result = None
            op.error = state_error(self.path, exc) if isinstance(exc, sqlite3.Error) else exc

    def _finish(self, batch: list[_Op]) -> None:
        by_loop: dict[int, tuple[LoopHandle, list[_Op]]] = {}
        for op in batch:
            handle = op.handle
            if handle is None:
                with _registry:
                    self._unfinished -= 1
                if op.error is not None:
                    _log.error("state write failed", file=str(self.path), error=str(op.error))
                continue
            if isinstance(handle, _ThreadHandle):
                handle.done.set()
                continue
            entry = by_loop.get(id(handle.key))
            if entry is None:
                by_loop[id(handle.key)] = (handle, [op])
            else:
                entry[1].append(op)
        for handle, ops in by_loop.values():
            handle.call_soon(_finisher(ops))

    # -- lifetime -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Commit what was handed over, then close the connection (blocking: from a thread)."""
        if self._stopped:
            return
        self._stopped = True
        self._ops.put(None)
        self._thread.join()


class _ThreadHandle:
    __slots__ = ("done",)

    def __init__(self, done: threading.Event) -> None:
        self.done = done


def _finisher(ops: list[_Op]) -> Callable[[], None]:
    def finish() -> None:
        for op in ops:
            if op.then is not None and op.error is None:
                try:
                    op.then(op.result)
                except BaseException as exc:  # the caller gets it, as if the operation raised it
                    op.error = exc
            if op.done is not None:
                op.done.set()

    return finish


def _connect(path: Path, synchronous: Synchronous) -> sqlite3.Connection:
    """Open ``path`` (made if missing), check or create the schema; ``StateError`` when unusable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(
            f"{path} cannot be created ({exc.strerror or exc}): give a path in a writable folder"
        ) from None
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{path} was written by a newer eventbus (state schema {version}; this version reads "
                f"up to {SCHEMA_VERSION}): upgrade eventbus, or give another path"
            )
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StateError(f"{path} cannot be put in WAL mode (it stays {mode}): give a path on a local disk")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        if version == 0:
            _create(conn, path)
        else:
            # A read-only file opens and reads fine: find out now, not at the first PutEvents.
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE buses SET holder = holder WHERE 0")
            conn.execute("COMMIT")
    except StateError:
        if conn is not None:
            conn.close()
        raise
    except sqlite3.Error as exc:
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        raise state_error(path, exc) from None
    return conn


def _create(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        }
        if tables - _NEIGHBOURS:
            raise StateError(
                f"{path} is an SQLite database of something else (tables: {', '.join(sorted(tables))}), "
                "not an eventbus state file: give another path"
            )
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


# -- the registry: one Store a file a process -------------------------------------------------

_stores: dict[str, Store] = {}
_registry = threading.Lock()


def _acquire(path: Path, synchronous: Synchronous) -> Store:
    key = os.path.realpath(path)
    with _registry:
        store = _stores.get(key)
        if store is None:
            store = Store(path, key, synchronous)
            _stores[key] = store
        elif synchronous == "FULL" and store.synchronous != "FULL":
            # The stronger promise wins for every user of the file in this process.
            store.synchronous = "FULL"
            store.pending_pragma = "PRAGMA synchronous=FULL"
        store.refs += 1
        return store


def _release(store: Store) -> None:
    with _registry:
        store.refs -= 1
        if store.refs > 0:
            return
        _stores.pop(store.key, None)
    store.stop()


async def open_store(path: str | os.PathLike[str], synchronous: Synchronous = "NORMAL") -> Store:
    """The ``Store`` of ``path`` in this process (opened, checked and made if needed); give it
    back with ``close_store``. ``StateError`` when the file cannot be used."""
    return await anyio.to_thread.run_sync(_acquire, Path(path), synchronous)


def open_store_now(path: str | os.PathLike[str], synchronous: Synchronous = "NORMAL") -> Store:
    """``open_store`` from synchronous code (a command checking the file before it serves)."""
    return _acquire(Path(path), synchronous)


def close_store_now(store: Store) -> None:
    """``close_store`` from synchronous code."""
    _release(store)


async def close_store(store: Store) -> None:
    """Give back a store from ``open_store``; the last user commits what is left and closes it."""
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(_release, store)
