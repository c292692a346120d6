"""``SqliteEventLog``: a bus's accepted events in a SQLite file, until they are routed.

``append`` answers once the records are committed (group commit: concurrent calls share a
transaction). The router reads them from memory (a record appended here is handed out as it
is; those a previous process left are read from the file when the bus opens), puts each
event's fan-out in the delivery queue, whose transaction deletes the event (routed and
acknowledged in one write), and acknowledges the rest (events no rule matched) with one delete.

The log holds the bus's lock while it is open (``lock.py``), listens for nudges from other
processes (``nudge.py``: dead letters redriven into the bus's inbox, replays started or
cancelled elsewhere), remembers each scheduled rule's last fire time in the transaction that
appends the scheduled event, and hands out the state file's other stores: archives and replays
(``archive_store``) and pipes' places (``places``).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from eventbus._logger import get_logger
from eventbus.bus.clock import Clock
from eventbus.bus.logs.protocol import LogClosedError, LogRecord
from eventbus.bus.logs.sqlite import rows
from eventbus.bus.logs.sqlite._loop import LoopHandle
from eventbus.bus.logs.sqlite.lock import BusLock
from eventbus.bus.logs.sqlite.nudge import Listener
from eventbus.bus.logs.sqlite.queue import SqliteDeliveryQueue
from eventbus.bus.logs.sqlite.store import Store, Synchronous, close_store, open_store
from eventbus.bus.logs.sqlite.writes import Writes, ranges
from eventbus.envelope import parse_time

if TYPE_CHECKING:
    from eventbus.bus.logs.sqlite.archives import SqliteArchiveStore

__all__ = ["SqliteEventLog"]

_log = get_logger("eventbus.bus")



class SqliteEventLog:
    """A durable ``EventLog`` (and its ``DeliveryQueue``) in the SQLite file ``path``.

    ``EventBus("orders", log=SqliteEventLog("state.db"))``. ``synchronous`` is SQLite's: ``NORMAL``
    (the default) keeps every committed event through a killed process, ``FULL`` through a power
    loss too. ``capacity`` bounds the events accepted and not routed yet, as the in-memory log's
    does. Several buses may share a file (one ``SqliteEventLog`` each); one process at a time
    serves a bus of a file (``StateLockedError`` for the second).
    """

    #: What it holds survives the process: a shutdown with work left loses nothing.
    durable = True

    def __init__(
        self, path: str | os.PathLike[str], *, synchronous: Synchronous = "NORMAL", capacity: int = 10_000
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.path = Path(path)
        self.synchronous: Synchronous = synchronous
        self.capacity = capacity
        self.bus: str | None = None
        self.bus_id = -1
        self.store: Store | None = None
        self._lock: BusLock | None = None
        self._listener: Listener | None = None
        self._queue: SqliteDeliveryQueue | None = None
        self._records: deque[LogRecord] = deque()
        self._unacked: dict[int, LogRecord] = {}
        #: Offsets of unacknowledged events whose row is gone already (the fan-out's put deleted it).
        self._gone: set[int] = set()
        #: Each unacknowledged event's JSON text, so that its deliveries need not encode it again.
        self._json: dict[int, str] = {}
        self._next_seq = 0
        self._last_fires: dict[str, datetime] = {}
        self._closed = False
        self._readable: anyio.Event | None = None
        self._room: anyio.Event | None = None
        #: The inbox may hold events for this bus (at open, after a nudge, or when it held more
        #: than there was room for).
        self._inbox_more = False
        self._loop: LoopHandle | None = None
        self._watchers: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"SqliteEventLog({str(self.path)!r}, bus={self.bus!r})"

    # -- opening ------------------------------------------------------------------------------

    async def open(self, bus: str, clock: Clock) -> SqliteDeliveryQueue:
        if self.store is not None:
            raise RuntimeError("an SqliteEventLog serves one bus: make one per bus")
        store = await open_store(self.path, self.synchronous)
        try:
            bus_id, holder = await store.run(lambda conn: _register(conn, bus))
            self._lock = await anyio.to_thread.run_sync(BusLock.acquire, self.path, bus_id, bus, holder)
            try:
                loaded = await store.run(lambda conn: _load(conn, bus, bus_id, _holder_text()))
            except BaseException:
                self._lock.release()
                raise
        except BaseException:
            await close_store(store)
            raise
        self.store, self.bus, self.bus_id = store, bus, bus_id
        self._loop = LoopHandle.current()
        low, _ = rows.key_range(bus_id)
        self._next_seq = max(loaded.last_seq + 1, low)
        for seq, text, ingested, chain, target_rule, target_id, only_rules in loaded.events:
            record = LogRecord(
                rows.event_dict(text),
                rows.from_us(ingested),
                rows.decode_chain(chain),
                target_rule,
                seq,
                target_id,
                rows.decode_names(only_rules),
            )
            self._records.append(record)
            self._unacked[seq] = record
            self._json[seq] = text
        self._last_fires = {rule: rows.from_us(fired) for rule, fired in loaded.fires}
        queue = SqliteDeliveryQueue(self, store, bus_id, clock, loaded.deliveries, loaded.last_delivery)
        self._queue = queue
        self._listener = await anyio.to_thread.run_sync(Listener, self.path, bus, self._nudged_from_thread)
        self._inbox_more = loaded.inbox
        return queue

    # -- the EventLog protocol ----------------------------------------------------------------

    def _notify_readable(self) -> None:
        if self._readable is not None:
            self._readable.set()
            self._readable = None

    def _notify_room(self) -> None:
        if self._room is not None:
            self._room.set()
            self._room = None

    async def append(self, records: Sequence[LogRecord], *, wait: bool = True) -> int:
        if self._closed or self.store is None:
            raise LogClosedError("the event log is closed")
        room = self.capacity - len(self._unacked)
        if room >= len(records):
            await self._write(list(records))
            return len(records)
        taken = 0
        while taken < len(records):
            room = self.capacity - len(self._unacked)
            if room <= 0:
                if not wait:
                    break
                if self._room is None:
                    self._room = anyio.Event()
                await self._room.wait()
                if self._closed:
                    raise LogClosedError("the event log is closed")
                continue
            chunk = list(records[taken : taken + room])
            try:
                await self._write(chunk)
            except Exception:
                if not taken:
                    raise
                return taken  # the rest is refused like entries that found no room
            taken += len(chunk)
        return taken

    async def _write(self, records: list[LogRecord], inbox_upto: int | None = None) -> None:
        """Commit ``records`` (numbering them), then hand them to the router in commit order."""
        assert self.store is not None and self.bus is not None
        bus = self.bus
        seq = self._next_seq
        self._next_seq += len(records)
        batch = []
        fires = []
        texts = []
        for record in records:
            record.offset = seq
            text = record.text if record.text is not None else rows.encode(record.event)
            record.text = None  # kept in ``_json`` for the deliveries; the record need not hold it
            texts.append(text)
            batch.append(
                (
                    seq,
                    text,
                    rows.to_us(record.ingestion_time),
                    rows.encode_chain(record.chain),
                    record.target_rule,
                    record.target_id,
                    rows.encode_names(record.only_rules),
                )
            )
            if record.target_rule is not None and record.target_id is None:
                fired = _fire_time(record)
                if fired is not None:
                    fires.append((bus, record.target_rule, rows.to_us(fired)))
            seq += 1

        writes = Writes(events=batch, fires=fires)
        if inbox_upto is not None:
            writes.inbox.append((bus, inbox_upto))

        def taken(_: None) -> None:
            unacked, jsons = self._unacked, self._json
            for record, text in zip(records, texts, strict=True):
                unacked[record.offset] = record
                jsons[record.offset] = text
            self._records.extend(records)
            self._notify_readable()

        await self.store.write(writes, taken)

    async def consume(self, max_records: int) -> list[LogRecord]:
        if self._inbox_more and not self._closed and len(self._unacked) < self.capacity:
            await self._move_inbox()
        while not self._records:
            if self._closed:
                return []
            if self._inbox_more and len(self._unacked) < self.capacity:
                await self._move_inbox()
                continue
            if self._readable is None:
                self._readable = anyio.Event()
            await self._readable.wait()
        n = min(max_records, len(self._records))
        return [self._records.popleft() for _ in range(n)]

    async def ack(self, offsets: Sequence[int]) -> None:
        unacked, gone, jsons = self._unacked, self._gone, self._json
        delete = []
        for offset in offsets:
            if unacked.pop(offset, None) is None:
                continue
            jsons.pop(offset, None)
            if offset in gone:
                gone.discard(offset)
            else:
                delete.append(offset)
        if delete and self.store is not None:
            try:
                await self.store.write(Writes(gone=ranges(delete)))
            except Exception as exc:
                # Routed already (its fan-out is committed): a restart routes it once more at worst.
                _log.error("state write failed", file=str(self.path), error=str(exc))
        self._notify_room()

    async def pending(self) -> int:
        return len(self._unacked)

    def pending_events(self) -> list[dict[str, Any]]:
        return []  # committed: a restart resumes them

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._notify_readable()
        self._notify_room()
        for watcher in self._watchers:
            watcher()
        if self._queue is not None:
            await self._queue.close()
        store, self.store = self.store, None
        with anyio.CancelScope(shield=True):
            if self._listener is not None:
                await anyio.to_thread.run_sync(self._listener.close)
            if store is not None:
                # Everything handed over before is committed before the lock goes.
                try:
                    await store.run(_release_holder(self.bus_id))
                except Exception as exc:
                    _log.error("state write failed", file=str(self.path), error=str(exc))
            if self._lock is not None:
                self._lock.release()
            if store is not None:
                await close_store(store)

    # -- what the queue and the bus use -------------------------------------------------------

    def event_json(self, offset: int, event: dict[str, Any]) -> str:
        """The JSON text of the event at ``offset`` (encoded once for all its deliveries)."""
        text = self._json.get(offset)
        return text if text is not None else rows.encode(event)

    def routed(self, first: int, last: int) -> None:
        """The rows of the events ``first`` to ``last`` were deleted with a fan-out: ``ack`` need
        not delete them (every event up to the last one a fan-out came from is routed)."""
        unacked = self._unacked
        if last - first < len(unacked):
            self._gone.update(o for o in range(first, last + 1) if o in unacked)
        else:
            self._gone.update(o for o in unacked if first <= o <= last)

    async def last_fires(self) -> dict[str, datetime]:
        """Each scheduled rule's last fire time, as the file remembers it (read when it opened)."""
        return dict(self._last_fires)

    def archive_store(self) -> SqliteArchiveStore:
        """Archives and replays in the same file (the log must be open)."""
        from eventbus.bus.logs.sqlite.archives import SqliteArchiveStore

        if self.store is None:
            raise RuntimeError("open the log before asking for its archive store")
        return SqliteArchiveStore(self.store, self)

    async def settle(self) -> None:
        """Return once every task is blocked and nothing is being written for them: what a test
        on a ``ManualClock`` waits for before it asserts that something happened, or did not
        (``anyio.wait_all_tasks_blocked`` alone returns while a task waits for a commit)."""
        while True:
            await anyio.wait_all_tasks_blocked()
            store = self.store
            if store is None or store.idle:
                return
            await store.run(lambda conn: None)

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (on the bus's loop) whenever another process nudged this bus, and
        once when the log closes."""
        self._watchers.append(callback)

    # -- the inbox: events other processes wrote for this bus ---------------------------------

    def _nudged_from_thread(self) -> None:
        if self._loop is not None:
            self._loop.call_soon(self._nudged)

    def _nudged(self) -> None:
        if self._closed:
            return
        self._inbox_more = True
        self._notify_readable()
        for watcher in self._watchers:
            watcher()

    async def _move_inbox(self) -> None:
        """Move what the inbox holds for this bus into the log, as much as there is room for
        (the router calls this from ``consume``: no task of its own)."""
        store, bus = self.store, self.bus
        room = self.capacity - len(self._unacked)
        if store is None or room <= 0:
            return
        self._inbox_more = False
        try:
            found = await store.run(
                lambda conn: conn.execute(
                    "SELECT id, event, ingestion_time, chain, target_rule, target_id, only_rules "
                    "FROM inbox WHERE bus = ? ORDER BY id LIMIT ?",
                    (bus, room),
                ).fetchall()
            )
            if not found:
                return
            # More may wait: look again once there is room.
            self._inbox_more = len(found) >= room
            records = [
                LogRecord(
                    rows.event_dict(text),
                    rows.from_us(ingested),
                    rows.decode_chain(chain),
                    target_rule,
                    -1,
                    target_id,
                    rows.decode_names(only_rules),
                )
                for _, text, ingested, chain, target_rule, target_id, only_rules in found
            ]
            await self._write(records, inbox_upto=found[-1][0])
        except Exception as exc:
            # Left in the inbox: the next nudge or start moves it.
            _log.error("reading the inbox failed", file=str(self.path), bus=bus, error=str(exc))


class _Loaded:
    __slots__ = ("deliveries", "events", "fires", "inbox", "last_delivery", "last_seq")

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.deliveries: list[tuple[Any, ...]] = []
        self.fires: list[tuple[str, int]] = []
        self.last_seq = -1
        self.last_delivery = -1
        self.inbox = False


def _register(conn: sqlite3.Connection, bus: str) -> tuple[int, str | None]:
    conn.execute("INSERT OR IGNORE INTO buses (name) VALUES (?)", (bus,))
    bus_id, holder = conn.execute("SELECT id, holder FROM buses WHERE name = ?", (bus,)).fetchone()
    return int(bus_id), holder


def _load(conn: sqlite3.Connection, bus: str, bus_id: int, holder: str) -> _Loaded:
    low, high = rows.key_range(bus_id)
    loaded = _Loaded()
    conn.execute("UPDATE buses SET holder = ? WHERE id = ?", (holder, bus_id))
    loaded.events = conn.execute(
        "SELECT seq, event, ingestion_time, chain, target_rule, target_id, only_rules FROM events "
        "WHERE seq BETWEEN ? AND ? ORDER BY seq",
        (low, high),
    ).fetchall()
    loaded.last_seq = max(
        (loaded.events[-1][0] if loaded.events else -1),
        conn.execute("SELECT MAX(event_seq) FROM deliveries WHERE id BETWEEN ? AND ?", (low, high)).fetchone()[0]
        or -1,
    )
    loaded.deliveries = conn.execute(
        "SELECT id, route, event_seq, event, payload, ingestion_time, chain, attempts, due FROM deliveries "
        "WHERE id BETWEEN ? AND ? ORDER BY due, id",
        (low, high),
    ).fetchall()
    loaded.last_delivery = max((row[0] for row in loaded.deliveries), default=-1)
    loaded.fires = conn.execute("SELECT rule, fired FROM schedules WHERE bus = ?", (bus,)).fetchall()
    loaded.inbox = conn.execute("SELECT 1 FROM inbox WHERE bus = ? LIMIT 1", (bus,)).fetchone() is not None
    return loaded


def _release_holder(bus_id: int) -> Callable[[sqlite3.Connection], None]:
    def release(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE buses SET holder = NULL WHERE id = ?", (bus_id,))

    return release


def _holder_text() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}"


def _fire_time(record: LogRecord) -> datetime | None:
    text = record.event.get("time")
    if not isinstance(text, str):
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None
