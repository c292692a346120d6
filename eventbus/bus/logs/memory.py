"""The in-memory backend: an ``EventLog`` and a ``DeliveryQueue`` held in the process.

Fast and bounded, and forgotten when the process ends: what is accepted and not delivered when
the bus stops after its drain timeout is counted and lost. The protocols are in protocol.py.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import anyio

from eventbus.bus.clock import Clock, SystemClock
from eventbus.bus.logs.due import DueQueue
from eventbus.bus.logs.protocol import Delivery, LogClosedError, LogRecord

__all__ = ["InMemoryDeliveryQueue", "InMemoryEventLog"]


class InMemoryEventLog:
    """A bounded in-memory log: ``capacity`` caps the records not acknowledged (not routed) yet.

    Deliveries are bounded by the bus per rule target, so memory stays bounded however slow
    the targets are: a full target stops the router, the log fills up, ``put_events`` waits.
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
        self._queue_for: InMemoryDeliveryQueue | None = None

    async def open(self, bus: str, clock: Clock) -> InMemoryDeliveryQueue:
        self._queue_for = InMemoryDeliveryQueue(clock)
        return self._queue_for

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

    async def ack(self, offsets: Sequence[int]) -> None:
        unacked = self._unacked
        before = len(unacked)
        for offset in offsets:
            unacked.pop(offset, None)
        if len(unacked) < before:
            self._notify_room()

    async def pending(self) -> int:
        return len(self._unacked)

    def unconsumed(self) -> int:
        """Records appended and not handed out by ``consume`` yet."""
        return len(self._queue)

    def pending_events(self) -> list[dict[str, Any]]:
        return [record.event for record in self._unacked.values()]

    async def close(self) -> None:
        self._closed = True
        self._notify_readable()
        self._notify_room()


class InMemoryDeliveryQueue:
    """Deliveries in the process: a ``DueQueue`` per route, and every delivery not acknowledged
    by its handle (what ``pending`` counts and a shutdown would lose).

    ``put`` never waits: the bus bounds the deliveries of each rule target before it puts them.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._lanes: dict[str, DueQueue[Delivery]] = {}
        self._held: dict[int, Delivery] = {}
        self._next_handle = 0
        self._closed = False

    def _lane(self, route: str) -> DueQueue[Delivery]:
        lane = self._lanes.get(route)
        if lane is None:
            lane = self._lanes[route] = DueQueue(self.clock)
            if self._closed:
                lane.close()
        return lane

    async def put(self, deliveries: Sequence[Delivery]) -> None:
        lanes = self._lanes
        held = self._held
        handle = self._next_handle
        for delivery in deliveries:
            delivery.handle = handle
            held[handle] = delivery
            handle += 1
            lane = lanes.get(delivery.route) or self._lane(delivery.route)
            lane.push(delivery)
        self._next_handle = handle

    async def lease(self, route: str, max_items: int) -> list[Delivery]:
        lane = self._lane(route)
        while True:
            taken = lane.take(max_items)
            if taken:
                for delivery in taken:
                    delivery.attempts += 1
                return taken
            if self._closed:
                return []
            await lane.wait()

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        held = self._held
        for delivery in deliveries:
            held.pop(delivery.handle, None)

    async def release(self, deliveries: Sequence[Delivery], delay: float) -> None:
        due = self.clock.now() + timedelta(seconds=max(0.0, delay))
        for delivery in deliveries:
            if delay > 0:
                self._lane(delivery.route).push_at(delivery, due)
            else:
                self._lane(delivery.route).push(delivery)

    async def pending(self) -> int:
        return len(self._held)

    async def routes(self) -> Mapping[str, int]:
        counts: dict[str, int] = {}
        for delivery in self._held.values():
            counts[delivery.route] = counts.get(delivery.route, 0) + 1
        return counts

    def pending_events(self) -> list[dict[str, Any]]:
        events: dict[str, dict[str, Any]] = {}
        for delivery in sorted(self._held.values(), key=lambda d: d.offset):
            events.setdefault(delivery.event["id"], delivery.event)
        return list(events.values())

    async def close(self) -> None:
        self._closed = True
        for lane in self._lanes.values():
            lane.close()
