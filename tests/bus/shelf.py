"""A small backend kept on a shelf: a store object outlives the log and queue over it, as a file
outlives a process. It shows what a third-party backend implements, and lets the contract suites'
restart tests run here before a durable backend ships. Not fast, not for use."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import anyio

from eventbus.bus import Clock, Delivery, LogClosedError, LogRecord
from eventbus.bus.clock import wait_until


@dataclass
class Row:
    delivery: Delivery
    due: datetime
    leased: bool = False


@dataclass
class Store:
    records: dict[int, LogRecord] = field(default_factory=dict)
    rows: dict[int, Row] = field(default_factory=dict)
    seq: itertools.count[int] = field(default_factory=itertools.count)


class ShelfQueue:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock
        for row in store.rows.values():
            row.leased = False  # whoever held these leases is gone: they come back
        self._changed = anyio.Event()
        self._closed = False

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def put(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            row_id = next(self.store.seq)
            self.store.rows[row_id] = Row(replace(delivery, handle=row_id), self.clock.now())
        self._notify()

    async def lease(self, route: str, max_items: int) -> list[Delivery]:
        while not self._closed:
            now = self.clock.now()
            rows = [r for r in self.store.rows.values() if r.delivery.route == route and not r.leased]
            due = sorted((r for r in rows if r.due <= now), key=lambda r: (r.due, r.delivery.handle))
            if due:
                out = []
                for row in due[:max_items]:
                    row.leased = True
                    row.delivery.attempts += 1
                    out.append(replace(row.delivery))
                return out
            if rows:
                await wait_until(self.clock, min(r.due for r in rows), self._changed)
            else:
                await self._changed.wait()
        return []

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            self.store.rows.pop(delivery.handle, None)

    async def release(self, deliveries: Sequence[Delivery], delay: float) -> None:
        for delivery in deliveries:
            row = self.store.rows[delivery.handle]
            row.leased, row.due = False, self.clock.now() + timedelta(seconds=delay)
        self._notify()

    async def pending(self) -> int:
        return len(self.store.rows)

    async def routes(self) -> Mapping[str, int]:
        counts: dict[str, int] = {}
        for row in self.store.rows.values():
            counts[row.delivery.route] = counts.get(row.delivery.route, 0) + 1
        return counts

    def pending_events(self) -> list[dict[str, object]]:
        return []  # kept on the shelf: a restart loses nothing

    async def close(self) -> None:
        self._closed = True
        self._notify()


class ShelfLog:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._next = 0
        self._handed: set[int] = set()
        self._changed = anyio.Event()
        self._closed = False

    async def open(self, bus: str, clock: Clock) -> ShelfQueue:
        self._next = max(self.store.records, default=-1) + 1
        return ShelfQueue(self.store, clock)

    async def append(self, records: Sequence[LogRecord], *, wait: bool = True) -> int:
        if self._closed:
            raise LogClosedError("closed")
        for record in records:
            record.offset, self._next = self._next, self._next + 1
            self.store.records[record.offset] = replace(record)
        self._changed.set()
        self._changed = anyio.Event()
        return len(records)

    async def consume(self, max_records: int) -> list[LogRecord]:
        while True:
            fresh = sorted(o for o in self.store.records if o not in self._handed)[:max_records]
            if fresh:
                self._handed.update(fresh)
                return [replace(self.store.records[o]) for o in fresh]
            if self._closed:
                return []
            await self._changed.wait()

    async def ack(self, offsets: Sequence[int]) -> None:
        for offset in offsets:
            self.store.records.pop(offset, None)

    async def pending(self) -> int:
        return len(self.store.records)

    def pending_events(self) -> list[dict[str, object]]:
        return []  # kept on the shelf: a restart loses nothing

    async def close(self) -> None:
        self._closed = True
        self._changed.set()
