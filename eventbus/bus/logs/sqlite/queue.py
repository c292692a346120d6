"""``SqliteDeliveryQueue``: a bus's deliveries in its state file, from routing until they end.

Every delivery is a row (its route, event, rendered payload, ingestion time, chain, attempt
count and due time on the bus's clock) from the moment its event's fan-out is committed until
it is acknowledged. The process serving the bus also holds them in memory, one ``DueQueue`` per
route, as the in-memory queue does: a lease takes due deliveries from memory at once, with no
query and no wait for a commit (so it never leaves a delivery half leased when its worker is
cancelled), and writes the new attempt count without waiting for it; an acknowledgement deletes
the row, also without waiting (the next transaction, within milliseconds, carries it); a
release stores the attempt count and the next due time before it returns. Leases are not stored: they end with the process holding the bus's lock, so a restart
hands out again exactly what was in flight, its attempt counted.

Rows are not indexed beyond their key (``bus id << 40 | n``): the file is only searched when the
bus opens, by key range, so an index would cost every write and help no read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from eventbus._logger import get_logger
from eventbus.bus.clock import Clock
from eventbus.bus.logs.due import DueQueue
from eventbus.bus.logs.protocol import Delivery
from eventbus.bus.logs.sqlite import rows
from eventbus.bus.logs.sqlite.store import Store
from eventbus.bus.logs.sqlite.writes import Writes

if TYPE_CHECKING:
    from eventbus.bus.logs.sqlite.log import SqliteEventLog

__all__ = ["SqliteDeliveryQueue"]

_log = get_logger("eventbus.bus")



class SqliteDeliveryQueue:
    """The ``DeliveryQueue`` of a ``SqliteEventLog`` (``log.open`` makes it)."""

    def __init__(
        self,
        log: SqliteEventLog,
        store: Store,
        bus_id: int,
        clock: Clock,
        loaded: Sequence[tuple[Any, ...]] = (),
        last_id: int = -1,
    ) -> None:
        self.clock = clock
        #: The log this queue is stored with (closing it ends the bus's hold on the file).
        self.log = log
        self._log = log
        self._store = store
        self._lanes: dict[str, DueQueue[Delivery]] = {}
        self._held: dict[int, Delivery] = {}
        low, _ = rows.key_range(bus_id)
        self._next_id = max(last_id + 1, low)
        self._closed = False
        now = rows.to_us(clock.now())
        for row_id, route, offset, event, payload, ingested, chain, attempts, due in loaded:
            delivery = Delivery(
                route,
                rows.event_dict(event),
                payload,
                rows.from_us(ingested),
                rows.decode_chain(chain),
                offset,
                attempts,
                row_id,
            )
            self._held[row_id] = delivery
            if due <= now:
                self._lane(route).push(delivery)
            else:
                self._lane(route).push_at(delivery, rows.from_us(due))

    def _lane(self, route: str) -> DueQueue[Delivery]:
        lane = self._lanes.get(route)
        if lane is None:
            lane = self._lanes[route] = DueQueue(self.clock)
            if self._closed:
                lane.close()
        return lane

    async def put(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        log = self._log
        now = rows.to_us(self.clock.now())
        batch = []
        offsets: set[int] = set()
        row_id = self._next_id
        self._next_id += len(deliveries)
        ids = []
        for delivery in deliveries:
            offsets.add(delivery.offset)
            ids.append(row_id)
            batch.append(
                (
                    row_id,
                    delivery.route,
                    delivery.offset,
                    log.event_json(delivery.offset, delivery.event),
                    delivery.payload,
                    rows.to_us(delivery.ingestion_time),
                    rows.encode_chain(delivery.chain),
                    delivery.attempts,
                    now,
                )
            )
            row_id += 1
        # Every event up to the last one these came from is routed (the router routes in order
        # and puts each event's fan-out whole): deleting them here makes routing and
        # acknowledging one write, and the router's acknowledgement of them free.
        known = [o for o in offsets if o >= 0]
        first, last = (min(known), max(known)) if known else (0, -1)
        writes = Writes(deliveries=batch, gone=[(first, last)] if known else [])

        def queued(_: None) -> None:
            held, lanes = self._held, self._lanes
            for delivery, handle in zip(deliveries, ids, strict=True):
                delivery.handle = handle
                held[handle] = delivery
                lane = lanes.get(delivery.route) or self._lane(delivery.route)
                lane.push(delivery)
            if known:
                log.routed(first, last)

        await self._store.write(writes, queued)

    async def lease(self, route: str, max_items: int) -> list[Delivery]:
        lane = self._lane(route)
        while True:
            taken = lane.take(max_items)
            if taken:
                counts = []
                for delivery in taken:
                    delivery.attempts += 1
                    counts.append((delivery.attempts, delivery.handle))
                # Not waited for: a lease must not wait after taking (a cancelled worker would
                # strand what it took). Committed with the next transaction, before this
                # delivery's acknowledgement or release, which come after it.
                self._store.submit(Writes(attempts=counts))
                return taken
            if self._closed:
                return []
            await lane.wait()

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        held = self._held
        ids = []
        for delivery in deliveries:
            if held.pop(delivery.handle, None) is not None:
                ids.append(delivery.handle)
        if ids:
            # Not waited for: the delivery ended whatever the file says, and the next
            # transaction (within milliseconds) deletes it. Should the process die first, a
            # restart delivers it once more: it was in flight (at least once, as on AWS).
            self._store.submit(Writes(acks=ids))

    async def release(self, deliveries: Sequence[Delivery], delay: float) -> None:
        due = self.clock.now() + timedelta(seconds=max(0.0, delay))
        due_us = rows.to_us(due)
        changes = [(d.attempts, due_us, d.handle) for d in deliveries]
        try:
            await self._store.write(Writes(releases=changes))
        except Exception as exc:
            # Retried in this process all the same; a restart would retry it sooner than planned.
            _log.error("state write failed", file=str(self._log.path), error=str(exc))
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
        return []  # committed: a restart resumes them

    async def close(self) -> None:
        self._closed = True
        for lane in self._lanes.values():
            lane.close()

