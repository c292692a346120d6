"""Queues: an in-memory one and a durable SQLite one, and the target that puts payloads on them.

Both queues speak the same small API, which pipe sources use directly:
``send(body, attributes)``, ``receive(max_messages, wait_seconds)``, ``delete(receipt_handle)``
and ``change_visibility(receipt_handle, timeout)``. A received message stays invisible for the
visibility timeout; unless it is deleted by then it is handed out again (at-least-once, as SQS).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal, Protocol, TypeVar, runtime_checkable

import anyio
from pydantic import Field, model_validator

from eventbus.errors import ConfigError, RetryableError
from eventbus.targets.base import DeliveryContext, TargetConfig

__all__ = [
    "MemoryQueue",
    "MessageQueue",
    "QueueMessage",
    "QueueTarget",
    "QueueTargetConfig",
    "SqliteQueue",
    "memory_queue",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """A received message. ``receipt_handle`` is what ``delete`` and ``change_visibility`` take."""

    message_id: str
    body: str
    attributes: Mapping[str, str]
    receipt_handle: str
    receive_count: int
    #: When the message was sent, in seconds since the epoch.
    sent_timestamp: float


@runtime_checkable
class MessageQueue(Protocol):
    async def send(self, body: str, attributes: Mapping[str, str] | None = None) -> str: ...

    async def receive(self, max_messages: int = 1, wait_seconds: float = 0) -> list[QueueMessage]: ...

    async def delete(self, receipt_handle: str) -> bool: ...

    async def change_visibility(self, receipt_handle: str, visibility_timeout: float) -> bool: ...

    async def aclose(self) -> None: ...


@dataclass
class _Held:
    message_id: str
    body: str
    attributes: dict[str, str]
    sent_timestamp: float
    receive_count: int = 0
    receipt: str = ""
    visible_at: float = 0.0


class MemoryQueue:
    """A bounded in-process queue: ``send`` waits while ``max_size`` messages are waiting."""

    def __init__(self, max_size: int = 1000, *, visibility_timeout: float = 30.0, name: str = "") -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.name = name
        self.max_size = max_size
        self.visibility_timeout = visibility_timeout
        self._send, self._receive = anyio.create_memory_object_stream[_Held](max_size)
        # Received but not yet deleted, by receipt handle; they come back once their time is up.
        self._in_flight: dict[str, _Held] = {}

    def __repr__(self) -> str:
        return (
            f"MemoryQueue({self.name!r}, waiting={self.approximate_count}, in_flight={len(self._in_flight)})"
        )

    @property
    def approximate_count(self) -> int:
        return self._send.statistics().current_buffer_used

    async def count(self) -> int:
        """Messages held, visible or not (received and not yet deleted)."""
        return self.approximate_count + len(self._in_flight)

    async def send(self, body: str, attributes: Mapping[str, str] | None = None) -> str:
        held = _Held(str(uuid.uuid4()), body, dict(attributes or {}), time.time())
        await self._send.send(held)
        return held.message_id

    async def receive(self, max_messages: int = 1, wait_seconds: float = 0) -> list[QueueMessage]:
        _check_max(max_messages)
        out = self._take_expired(max_messages)
        if not out and wait_seconds > 0:
            with anyio.move_on_after(wait_seconds):
                while not out:
                    # Wake at least every 50 ms to pick up messages whose visibility ran out.
                    with anyio.move_on_after(0.05):
                        out.append(await self._receive.receive())
                    out.extend(self._take_expired(max_messages - len(out)))
        while len(out) < max_messages:
            try:
                out.append(self._receive.receive_nowait())
            except anyio.WouldBlock:
                break
        return [self._lease(held) for held in out]

    async def delete(self, receipt_handle: str) -> bool:
        return self._in_flight.pop(receipt_handle, None) is not None

    async def delete_batch(self, receipt_handles: Sequence[str]) -> int:
        """Delete several messages; returns how many were still held."""
        return sum(self._in_flight.pop(handle, None) is not None for handle in receipt_handles)

    async def change_visibility_batch(self, receipt_handles: Sequence[str], visibility_timeout: float) -> int:
        changed = 0
        for handle in receipt_handles:
            changed += await self.change_visibility(handle, visibility_timeout)
        return changed

    async def change_visibility(self, receipt_handle: str, visibility_timeout: float) -> bool:
        held = self._in_flight.get(receipt_handle)
        if held is None:
            return False
        held.visible_at = time.monotonic() + visibility_timeout
        return True

    async def aclose(self) -> None:
        self._send.close()
        self._receive.close()

    def _lease(self, held: _Held) -> QueueMessage:
        held.receive_count += 1
        held.receipt = f"{held.message_id}:{uuid.uuid4().hex}"
        held.visible_at = time.monotonic() + self.visibility_timeout
        self._in_flight[held.receipt] = held
        return QueueMessage(
            held.message_id,
            held.body,
            dict(held.attributes),
            held.receipt,
            held.receive_count,
            held.sent_timestamp,
        )

    def _take_expired(self, limit: int) -> list[_Held]:
        now = time.monotonic()
        expired = [r for r, h in self._in_flight.items() if h.visible_at <= now][:limit]
        return [self._in_flight.pop(r) for r in expired]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,
    sent_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    origin TEXT
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (visible_at, seq);
CREATE UNIQUE INDEX IF NOT EXISTS messages_receipt ON messages (receipt);
"""


class SqliteQueue:
    """A durable queue in one SQLite file (WAL mode), shared safely by several processes.

    Visibility is a wall-clock timestamp in the row, so a process that dies between ``receive``
    and ``delete`` leaves the message to reappear for any other process once its time is up.
    Every sqlite3 call runs in a worker thread; one connection per queue object, behind a lock.
    """

    #: How often a waiting ``receive`` looks again: other processes cannot wake us.
    POLL_INTERVAL = 0.05

    def __init__(self, path: str | os.PathLike[str], *, visibility_timeout: float = 30.0) -> None:
        if visibility_timeout < 0:
            raise ValueError("visibility_timeout must not be negative")
        self.path = Path(path)
        self.visibility_timeout = visibility_timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteQueue({str(self.path)!r})"

    async def send(self, body: str, attributes: Mapping[str, str] | None = None) -> str:
        ids = await self.send_batch([(body, attributes)])
        return ids[0]

    async def send_batch(
        self, messages: Sequence[tuple[str, Mapping[str, str] | None]], *, origin: Mapping[str, str] | None = None
    ) -> list[str]:
        """Send several messages in one transaction: all of them are stored, or none.

        ``origin`` (a dead letter's bus, rule and target) is kept beside each message, out of its
        attributes: what ``dead_letters`` lists and a redrive sends each back to."""
        now = time.time()
        kept = json.dumps(dict(origin)) if origin else None
        rows = [
            (str(uuid.uuid4()), body, json.dumps(dict(attrs or {})), now, now, kept) for body, attrs in messages
        ]

        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO messages (message_id, body, attributes, sent_at, visible_at, origin) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

        await self._run(insert, write=True)
        return [row[0] for row in rows]

    async def receive(self, max_messages: int = 1, wait_seconds: float = 0) -> list[QueueMessage]:
        _check_max(max_messages)
        deadline = time.monotonic() + wait_seconds
        while True:
            found = await self._run(lambda conn: self._lease(conn, max_messages), write=True)
            if found or time.monotonic() >= deadline:
                return found
            await anyio.sleep(min(self.POLL_INTERVAL, max(0.0, deadline - time.monotonic())))

    async def delete(self, receipt_handle: str) -> bool:
        def remove(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM messages WHERE receipt = ?", (receipt_handle,)).rowcount > 0

        return await self._run(remove, write=True)

    async def delete_batch(self, receipt_handles: Sequence[str]) -> int:
        """Delete several messages in one transaction (per-message commits dominate a pipe's
        cost at large batch sizes); returns how many were deleted."""
        handles = [(handle,) for handle in receipt_handles]

        def remove(conn: sqlite3.Connection) -> int:
            return conn.executemany("DELETE FROM messages WHERE receipt = ?", handles).rowcount

        return await self._run(remove, write=True)

    async def change_visibility_batch(self, receipt_handles: Sequence[str], visibility_timeout: float) -> int:
        """Change the visibility of several messages in one transaction."""

        def update(conn: sqlite3.Connection) -> int:
            at = time.time() + visibility_timeout
            cursor = conn.executemany(
                "UPDATE messages SET visible_at = ? WHERE receipt = ?", [(at, h) for h in receipt_handles]
            )
            return cursor.rowcount

        return await self._run(update, write=True)

    async def change_visibility(self, receipt_handle: str, visibility_timeout: float) -> bool:
        def update(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE messages SET visible_at = ? WHERE receipt = ?",
                (time.time() + visibility_timeout, receipt_handle),
            )
            return cursor.rowcount > 0

        return await self._run(update, write=True)

    async def peek(self, limit: int | None = None) -> list[tuple[QueueMessage, dict[str, str]]]:
        """The messages stored, oldest first, with their origin, without receiving them (their
        visibility and receive counts stay as they are)."""

        def read(conn: sqlite3.Connection) -> list[tuple[QueueMessage, dict[str, str]]]:
            rows = conn.execute(
                "SELECT message_id, body, attributes, sent_at, receive_count, origin FROM messages ORDER BY seq"
                + (" LIMIT ?" if limit is not None else ""),
                (limit,) if limit is not None else (),
            ).fetchall()
            return [
                (QueueMessage(mid, body, json.loads(attrs), "", count, sent), json.loads(origin) if origin else {})
                for mid, body, attrs, sent, count, origin in rows
            ]

        return await self._run(read)

    async def delete_messages(self, message_ids: Sequence[str]) -> int:
        """Delete messages by id (whoever holds them); returns how many were still there."""
        ids = [(m,) for m in message_ids]

        def remove(conn: sqlite3.Connection) -> int:
            return conn.executemany("DELETE FROM messages WHERE message_id = ?", ids).rowcount

        return await self._run(remove, write=True)

    async def count(self) -> int:
        """Messages stored, visible or not."""
        return await self._run(lambda conn: int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]))

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                self._closed = True
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await anyio.to_thread.run_sync(close)

    def _lease(self, conn: sqlite3.Connection, limit: int) -> list[QueueMessage]:
        now = time.time()
        rows = conn.execute(
            "SELECT seq, message_id, body, attributes, sent_at, receive_count FROM messages "
            "WHERE visible_at <= ? ORDER BY seq LIMIT ?",
            (now, limit),
        ).fetchall()
        out = []
        for seq, message_id, body, attributes, sent_at, count in rows:
            receipt = f"{message_id}:{uuid.uuid4().hex}"
            conn.execute(
                "UPDATE messages SET receipt = ?, visible_at = ?, receive_count = ? WHERE seq = ?",
                (receipt, now + self.visibility_timeout, count + 1, seq),
            )
            out.append(QueueMessage(message_id, body, json.loads(attributes), receipt, count + 1, sent_at))
        return out

    async def _run(self, work: Callable[[sqlite3.Connection], T], *, write: bool = False) -> T:
        def call() -> T:
            with self._lock:
                conn = self._connect()
                if not write:
                    return work(conn)
                # BEGIN IMMEDIATE takes the write lock up front, so two processes never lease
                # the same row: the second waits (busy_timeout) and then sees it leased.
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result

        try:
            return await anyio.to_thread.run_sync(call)
        except sqlite3.OperationalError as exc:
            # "database is locked" after the busy timeout, a full disk, ...: worth another try.
            raise RetryableError(f"SQLite queue {self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            raise ConfigError(f"{self!r} is closed")
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
            if "origin" not in columns:
                # A queue file from before dead letters kept their origin.
                conn.execute("ALTER TABLE messages ADD COLUMN origin TEXT")
            self._conn = conn
        return self._conn


def _check_max(max_messages: int) -> None:
    if not 1 <= max_messages <= 10_000:
        raise ValueError("max_messages must be between 1 and 10000")


def dead_letter_origin(context: DeliveryContext) -> dict[str, str] | None:
    """Where a dead letter failed to go, for a redrive: the bus (from the rule's ARN), the rule and
    the target id; ``None`` for anything but a rule target's dead letter."""
    if context.kind != "dead-letter" or not context.name:
        return None
    rule_arn = context.attributes.get("RULE_ARN", context.arn)
    if ":rule/" not in rule_arn:
        return None  # a pipe's dead letter: it has no rule target to go back to
    path = rule_arn.split(":rule/", 1)[1]
    bus = path.rsplit("/", 1)[0] if "/" in path else "default"
    return {"bus": bus, "rule": context.name, "target": context.target_id}


_memory_queues: dict[str, MemoryQueue] = {}


def memory_queue(name: str, max_size: int = 1000) -> MemoryQueue:
    """The process-wide memory queue called ``name``, created on first use.

    Config files name memory queues; a pipe source reading the same name gets the same queue.
    """
    if name not in _memory_queues:
        _memory_queues[name] = MemoryQueue(max_size, name=name)
    return _memory_queues[name]


class QueueTarget:
    """Sends each payload as one message, with the context's attributes as message attributes."""

    max_batch_size: int = 10

    def __init__(self, queue: MessageQueue, *, close_queue: bool = False) -> None:
        self.queue = queue
        self.close_queue = close_queue

    def __repr__(self) -> str:
        return f"QueueTarget({self.queue!r})"

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> list[str]:
        attributes = dict(context.attributes)
        if isinstance(self.queue, SqliteQueue):
            return await self.queue.send_batch([(p, attributes) for p in payloads], origin=dead_letter_origin(context))
        return [await self.queue.send(p, attributes) for p in payloads]

    async def aclose(self) -> None:
        if self.close_queue:
            await self.queue.aclose()


class QueueTargetConfig(TargetConfig):
    """``type: memory`` (by ``name``, shared in the process) or ``type: sqlite`` (by ``path``)."""

    kind: ClassVar[str] = "queue"

    type: Literal["memory", "sqlite"] = "memory"
    name: str | None = None
    path: str | None = None
    max_size: int = Field(default=1000, ge=1)
    visibility_timeout: float = Field(default=30.0, ge=0)

    @model_validator(mode="after")
    def _where(self) -> QueueTargetConfig:
        if self.type == "memory" and not self.name:
            raise ValueError("a memory queue needs a name")
        if self.type == "sqlite" and not self.path:
            raise ValueError("a sqlite queue needs a path")
        return self

    def build(self) -> QueueTarget:
        if self.type == "sqlite":
            assert self.path is not None
            return QueueTarget(
                SqliteQueue(self.path, visibility_timeout=self.visibility_timeout), close_queue=True
            )
        assert self.name is not None
        return QueueTarget(memory_queue(self.name, self.max_size))
