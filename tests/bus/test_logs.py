"""The event log and delivery queue seams: the contract suites on the in-memory backend, and the
bus on other logs (one that counts, one that was reopened holding work). The SQLite backend's
are in test_sqlite_contracts.py and test_sqlite_bus.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import anyio
import pytest

from eventbus.bus import (
    Clock,
    Delivery,
    DeliveryQueue,
    EventBus,
    EventLog,
    InMemoryDeliveryQueue,
    InMemoryEventLog,
    LogRecord,
    ManualClock,
    RuleTarget,
)
from eventbus.envelope import parse_time
from eventbus.testing.contracts import DeliveryQueueContract, EventLogContract

from .helpers import Collector, Flaky, entry


class TestInMemoryEventLog(EventLogContract):
    capacity = 3

    async def new_log(self) -> EventLog:
        return InMemoryEventLog(capacity=3)


class TestInMemoryDeliveryQueue(DeliveryQueueContract):
    async def new_queue(self, clock: Clock) -> DeliveryQueue:
        return InMemoryDeliveryQueue(clock)


def record(n: int) -> LogRecord:
    return LogRecord({"n": n}, parse_time("2026-01-01T00:00:00Z"))


@pytest.mark.anyio
async def test_the_in_memory_log_counts_what_it_has_not_handed_out() -> None:
    log = InMemoryEventLog(capacity=3)
    assert await log.append([record(i) for i in range(5)], wait=False) == 3
    assert log.unconsumed() == 3
    assert [r.event["n"] for r in await log.consume(2)] == [0, 1]
    assert log.unconsumed() == 1 and await log.pending() == 3
    with pytest.raises(ValueError):
        InMemoryEventLog(capacity=0)


class CountingLog(InMemoryEventLog):
    """Another log behind the same protocol: what a durable log plugs into."""

    def __init__(self) -> None:
        super().__init__(capacity=100)
        self.appended = 0
        self.acked = 0

    async def append(self, records: Sequence[LogRecord], *, wait: bool = True) -> int:
        taken = await super().append(records, wait=wait)
        self.appended += taken
        return taken

    async def ack(self, offsets: Sequence[int]) -> None:
        self.acked += len(offsets)
        await super().ack(offsets)


@pytest.mark.anyio
async def test_the_bus_runs_on_any_event_log() -> None:
    log = CountingLog()
    assert isinstance(log, EventLog)
    target = Collector()
    bus = EventBus(log=log)
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="c", target=target)])
    async with bus:
        await bus.put_events([entry(), entry(source="other")])
    # Both are acknowledged once routed, the one no rule matched as much as the other.
    assert log.appended == 2 and log.acked == 2 and len(target.payloads) == 1


class Reopened(InMemoryEventLog):
    """A log whose store already holds what an earlier run left: an event not routed yet, and a
    delivery that failed twice and waits ten minutes for its next attempt."""

    async def open(self, bus: str, clock: Clock) -> InMemoryDeliveryQueue:
        queue = await super().open(bus, clock)
        await self.append([LogRecord({**entry_event(1)}, clock.now())])
        left = Delivery("r/t", entry_event(0), '{"left":0}', clock.now() - timedelta(minutes=5), attempts=1)
        await queue.put([left])
        [leased] = await queue.lease("r/t", 1)
        await queue.release([leased], 600)
        return queue


def entry_event(n: int) -> dict[str, object]:
    return {
        "version": "0",
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "detail-type": "order",
        "source": "shop",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"n": n},
    }


@pytest.mark.anyio
async def test_a_bus_resumes_what_its_store_holds_attempts_and_due_times_kept() -> None:
    clock = ManualClock()
    target = Flaky(0)
    bus = EventBus("orders", log=Reopened(), clock=clock)
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="t", target=target)])
    async with bus:
        await anyio.wait_all_tasks_blocked()
        # The unrouted event is routed and delivered; the retry waits for its time.
        assert [p["detail"] for p in target.payloads] == [{"n": 1}]
        assert bus.pending() == 1
        clock.advance(timedelta(minutes=10))
        assert await bus.wait_idle(5)
    assert target.payloads[-1] == {"left": 0}
    assert target.attempts == [1, 3]  # the resumed delivery's third attempt
