"""The event log: the seam between accepting an event and routing it.

``EventBus.put_events`` only validates entries and appends the accepted events to an ``EventLog``;
a router task consumes them, matches rules and hands deliveries to the targets. An event is
acknowledged once every delivery it caused has ended (delivered or dead-lettered), so
``pending()`` counts the events whose work is not finished yet. That contract is what lets a
durable log (SQLite) or a distributed one (NATS JetStream) replace the in-memory one below
without changing the public API: they redeliver whatever was consumed but never acknowledged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import anyio

__all__ = ["EventLog", "InMemoryEventLog", "LogClosedError", "LogRecord"]


class LogClosedError(RuntimeError):
    """Raised by ``append`` after ``close``."""


@dataclass(slots=True)
class LogRecord:
    """One accepted event as the log keeps it.

    ``chain`` is the tuple of bus names the event has passed through before reaching this bus
    (loop protection); ``target_rule`` names the one rule a scheduled event is for (it is not
    matched against patterns); ``offset`` is assigned by the log and is what ``ack`` takes.
    """

    event: dict[str, Any]
    ingestion_time: datetime
    chain: tuple[str, ...] = ()
    target_rule: str | None = None
    offset: int = field(default=-1)


@runtime_checkable
class EventLog(Protocol):
    """What the bus needs from a log. Every method is cheap except the waiting ones."""

    async def append(self, records: Sequence[LogRecord], *, wait: bool = True) -> int:
        """Append records in order and return how many were taken.

        With ``wait`` the call waits for room and takes them all; without it, it takes the
        longest prefix that fits at once (the rest is the caller's to refuse).
        Raises ``LogClosedError`` once closed.
        """
        ...

    async def consume(self, max_records: int) -> list[LogRecord]:
        """Wait for and return up to ``max_records`` records not handed out yet.

        Returns an empty list once the log is closed and nothing is left to hand out.
        """
        ...

    def ack(self, offsets: Iterable[int]) -> None:
        """Mark records done; their room becomes free."""
        ...

    def pending(self) -> int:
        """Records appended but not acknowledged yet (unrouted or in delivery)."""
        ...

    def unconsumed(self) -> int:
        """Records appended but not handed out by ``consume`` yet."""
        ...

    def pending_events(self) -> list[dict[str, Any]]:
        """The events of the records ``pending()`` counts, oldest first: what would be lost if the
        process ended now (a shutdown names them so they can be put again)."""
        ...

    async def close(self) -> None:
        """Refuse further appends and wake consumers. Idempotent."""
        ...


class InMemoryEventLog:
    """A bounded in-memory log: ``capacity`` caps the records not acknowledged yet.

    Capacity counts records still in delivery, retries waiting on backoff included, so memory
    stays bounded however slow the targets are.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._queue: deque[LogRecord] = deque()
        # Every record not acknowledged yet, by offset (insertion order is offset order).
        self._unacked: dict[int, LogRecord] = {}
        self._next_offset = 0
        self._closed = False
        # anyio events cannot be reset: a waiter makes one when there is none, a change sets
        # and forgets it. Made lazily because an anyio event needs a running loop.
        self._readable: anyio.Event | None = None
        self._room: anyio.Event | None = None

    def _notify_readable(self) -> None:
        if self._readable is not None:
            self._readable.set()
            self._readable = None

    def _notify_room(self) -> None:
        if self._room is not None:
            self._room.set()
            self._room = None

    def _take(self, record: LogRecord) -> None:
        record.offset = self._next_offset
        self._next_offset += 1
        self._unacked[record.offset] = record
        self._queue.append(record)

    async def append(self, records: Sequence[LogRecord], *, wait: bool = True) -> int:
        if self._closed:
            raise LogClosedError("the event log is closed")
        if self.capacity - len(self._unacked) >= len(records):
            # The common case: room for all, no waiting.
            offset = self._next_offset
            unacked = self._unacked
            for record in records:
                record.offset = offset
                unacked[offset] = record
                offset += 1
            self._next_offset = offset
            self._queue.extend(records)
            if records:
                self._notify_readable()
            return len(records)
        taken = 0
        for record in records:
            while len(self._unacked) >= self.capacity:
                if self._closed:
                    raise LogClosedError("the event log is closed")
                if not wait:
                    break
                if taken:
                    self._notify_readable()
                if self._room is None:
                    self._room = anyio.Event()
                await self._room.wait()
            else:
                if self._closed:
                    raise LogClosedError("the event log is closed")
                self._take(record)
                taken += 1
                continue
            break
        if taken:
            self._notify_readable()
        return taken

    async def consume(self, max_records: int) -> list[LogRecord]:
        while not self._queue:
            if self._closed:
                return []
            if self._readable is None:
                self._readable = anyio.Event()
            await self._readable.wait()
        n = min(max_records, len(self._queue))
        return [self._queue.popleft() for _ in range(n)]

    def ack(self, offsets: Iterable[int]) -> None:
        unacked = self._unacked
        before = len(unacked)
        for offset in offsets:
            unacked.pop(offset, None)
        if len(unacked) < before:
            self._notify_room()

    def pending(self) -> int:
        return len(self._unacked)

    def unconsumed(self) -> int:
        return len(self._queue)

    def pending_events(self) -> list[dict[str, Any]]:
        return [record.event for record in self._unacked.values()]

    async def close(self) -> None:
        self._closed = True
        self._notify_readable()
        self._notify_room()

