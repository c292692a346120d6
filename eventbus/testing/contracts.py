"""The contracts of the bus's storage seams, as pytest test classes.

``EventLogContract``, ``DeliveryQueueContract`` and ``ArchiveStoreContract`` hold the tests every
``EventLog``, every ``DeliveryQueue`` and every ``ArchiveStore`` must pass: the in-memory ones here, SQLite and JetStream ones, and yours. To run
them against your implementation, subclass them in a test module (a name starting with ``Test``)
and say how to make one::

    from eventbus.testing.contracts import DeliveryQueueContract, EventLogContract

    class TestMyLog(EventLogContract):
        capacity = 3                      # the logs new_log makes hold 3 unrouted records at most

        async def new_log(self):
            return MyLog(self.tmp_path / "state.db", capacity=3)

        async def reopen(self, log):      # a durable log: the same storage, as after a restart
            return MyLog(self.tmp_path / "state.db", capacity=3)

    class TestMyQueue(DeliveryQueueContract):
        async def new_queue(self, clock):
            return await MyLog(self.tmp_path / "state.db").open("orders", clock)

A queue whose due times run on a clock it does not own (a server's: JetStream hands a released
message out again after its delay by its own clock) sets ``clock_driven = False``: the tests of
due times then release with delays of a few real seconds and wait for them, instead of moving a
``ManualClock``.

The tests are async and run on anyio's pytest plugin (installed with anyio), on whichever
``anyio_backend`` your tests use. ``self.tmp_path`` is pytest's temporary folder for the test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest

from eventbus.bus.clock import Clock, ManualClock, SystemClock
from eventbus.bus.logs.archives import Archive, ArchivedEvent, ArchiveStore, Replay, time_key
from eventbus.bus.logs.protocol import Delivery, DeliveryQueue, EventLog, LogClosedError, LogRecord

__all__ = ["ArchiveStoreContract", "DeliveryQueueContract", "EventLogContract"]

#: Bounds every wait in these tests: a broken implementation fails, it does not hang.
WAIT = 10.0

_WHEN = datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)


def _event(n: int) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "detail-type": "contract",
        "source": "eventbus.testing",
        "account": "123456789012",
        "time": "2026-01-02T03:04:05Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"n": n, "text": "é ☃ \U0001f600", "nested": {"list": [1, 2.5, None, True]}},
    }


def _record(n: int, **fields: Any) -> LogRecord:
    return LogRecord(_event(n), _WHEN + timedelta(seconds=n), **fields)


def _delivery(n: int, route: str = "rule/target", **fields: Any) -> Delivery:
    return Delivery(route, _event(n), f'{{"n":{n}}}', _WHEN + timedelta(seconds=n), offset=n, **fields)


async def _lease_exactly(queue: DeliveryQueue, route: str, count: int) -> list[Delivery]:
    """``count`` deliveries of ``route`` that were put already. A lease hands out up to its
    number of what has reached the worker so far; a distributed queue's deliveries may reach
    it a few at a time (on a busy machine), so lease until all of them came."""
    got: list[Delivery] = []
    with anyio.fail_after(WAIT):
        while len(got) < count:
            got.extend(await queue.lease(route, count - len(got)))
    return got


def _ns(records: Sequence[LogRecord] | Sequence[Delivery]) -> list[int]:
    return [r.event["detail"]["n"] for r in records]


class _Contract:
    pytestmark = pytest.mark.anyio

    #: pytest's temporary folder for the running test (for stores kept in files).
    tmp_path: Path

    @pytest.fixture(autouse=True)
    def _tmp_path(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path


class EventLogContract(_Contract):
    """What every ``EventLog`` does. Subclass it and implement ``new_log`` (and ``reopen`` for a
    durable log); set ``capacity`` when the logs ``new_log`` makes are bounded."""

    #: How many records not acknowledged the logs ``new_log`` makes hold (at least 3: the
    #: other tests append that many at most); ``None``: unbounded.
    capacity: ClassVar[int | None] = None

    async def new_log(self) -> EventLog:
        """A log over empty storage, not opened yet."""
        raise NotImplementedError(f"{type(self).__name__} must implement new_log()")

    async def reopen(self, log: EventLog) -> EventLog | None:
        """A second log over the storage of ``log`` (closed), as after a restart; ``None`` for a
        log that forgets everything when it is closed."""
        return None

    async def _opened(self) -> EventLog:
        log = await self.new_log()
        queue = await log.open("contract", ManualClock())
        assert isinstance(queue, DeliveryQueue), "open() must return the log's DeliveryQueue"
        return log

    async def test_is_an_event_log(self) -> None:
        log = await self.new_log()
        assert isinstance(log, EventLog)

    async def test_records_come_back_in_order_with_increasing_offsets(self) -> None:
        log = await self._opened()
        try:
            assert await log.append([_record(0), _record(1, chain=("a", "b")), _record(2, target_rule="r")]) == 3
            got = await log.consume(2)
            got += await log.consume(10)
            assert _ns(got) == [0, 1, 2]
            assert [r.offset for r in got] == sorted({r.offset for r in got})
            assert got[0].event == _event(0)
            assert got[1].ingestion_time == _WHEN + timedelta(seconds=1)
            assert got[1].chain == ("a", "b") and got[2].target_rule == "r"
            assert got[0].chain == () and got[0].target_rule is None
        finally:
            await log.close()

    async def test_consume_waits_for_an_append(self) -> None:
        log = await self._opened()
        got: list[LogRecord] = []
        try:
            with anyio.fail_after(WAIT):
                async with anyio.create_task_group() as tg:

                    async def consumer() -> None:
                        got.extend(await log.consume(10))

                    tg.start_soon(consumer)
                    await anyio.wait_all_tasks_blocked()
                    await log.append([_record(7)])
            assert _ns(got) == [7]
        finally:
            await log.close()

    async def test_a_record_is_handed_out_once_and_pending_until_acknowledged(self) -> None:
        log = await self._opened()
        try:
            await log.append([_record(0), _record(1)])
            assert await log.pending() == 2
            first = await log.consume(10)
            assert _ns(first) == [0, 1] and await log.pending() == 2
            await log.append([_record(2)])
            assert _ns(await log.consume(10)) == [2]  # not 0 and 1 again
            await log.ack([first[0].offset])
            assert await log.pending() == 2
            await log.ack([first[1].offset])
            assert await log.pending() == 1
        finally:
            await log.close()

    async def test_pending_events_are_what_a_restart_would_lose(self) -> None:
        log = await self._opened()
        await log.append([_record(i) for i in range(3)])
        got = await log.consume(2)
        await log.ack([got[0].offset])
        volatile = log.pending_events()
        await log.close()
        again = await self.reopen(log)
        if again is None:
            assert [e["detail"]["n"] for e in volatile] == [1, 2]
        else:
            assert volatile == []  # the store keeps them for the next run
            await again.close()

    async def test_close_ends_consumers_and_refuses_appends(self) -> None:
        log = await self._opened()
        got: list[list[LogRecord]] = []
        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:

                async def consumer() -> None:
                    got.append(await log.consume(10))

                tg.start_soon(consumer)
                await anyio.wait_all_tasks_blocked()
                await log.close()
        assert got == [[]]
        with pytest.raises(LogClosedError):
            await log.append([_record(0)])
        await log.close()  # idempotent

    async def test_a_bounded_log_takes_what_fits_or_waits_for_room(self) -> None:
        if self.capacity is None:
            pytest.skip("the logs this class makes are unbounded")
        capacity = self.capacity
        log = await self._opened()
        try:
            taken = await log.append([_record(i) for i in range(capacity + 2)], wait=False)
            assert taken == capacity
            assert await log.append([_record(99)], wait=False) == 0
            got = await log.consume(capacity)
            assert _ns(got) == list(range(capacity))
            with anyio.fail_after(WAIT):
                async with anyio.create_task_group() as tg:
                    answers: list[int] = []

                    async def waiting() -> None:
                        answers.append(await log.append([_record(100)]))

                    tg.start_soon(waiting)
                    await anyio.wait_all_tasks_blocked()
                    assert answers == []
                    await log.ack([got[0].offset])
            assert answers == [1]
            assert _ns(await log.consume(10)) == [100]
        finally:
            await log.close()

    async def test_a_reopened_log_hands_out_again_what_was_not_acknowledged(self) -> None:
        log = await self._opened()
        await log.append([_record(i) for i in range(3)])
        got = await log.consume(2)
        await log.ack([got[0].offset])
        await log.close()
        again = await self.reopen(log)
        if again is None:
            pytest.skip("this log forgets what it held when it is closed")
        await again.open("contract", ManualClock())
        try:
            assert await again.pending() == 2
            back = await again.consume(10)
            assert _ns(back) == [1, 2]
            assert back[0].event == _event(1) and back[0].ingestion_time == _WHEN + timedelta(seconds=1)
        finally:
            await again.close()


class DeliveryQueueContract(_Contract):
    """What every ``DeliveryQueue`` does. Subclass it and implement ``new_queue`` (and
    ``reopen`` for a durable queue); set ``clock_driven = False`` for a queue whose due times run
    on a clock of its own (a server's)."""

    #: Whether ``release`` delays run on the ``clock`` given to ``new_queue`` (a ``ManualClock``
    #: moves them); ``False``: on a clock the queue does not own, and the tests wait real time.
    clock_driven: ClassVar[bool] = True
    #: The real delay, in seconds, those tests release with when ``clock_driven`` is ``False``.
    real_delay: ClassVar[float] = 2.0

    async def new_queue(self, clock: Clock) -> DeliveryQueue:
        """An empty queue whose due times are on ``clock``."""
        raise NotImplementedError(f"{type(self).__name__} must implement new_queue()")

    async def reopen(self, queue: DeliveryQueue, clock: Clock) -> DeliveryQueue | None:
        """A second queue over the storage of ``queue`` (closed), as after a restart; ``None``
        for a queue that forgets everything when it is closed."""
        return None

    async def test_is_a_delivery_queue(self) -> None:
        queue = await self.new_queue(ManualClock())
        try:
            assert isinstance(queue, DeliveryQueue)
        finally:
            await queue.close()

    async def test_a_lease_takes_its_route_s_deliveries_oldest_first_one_attempt_further(self) -> None:
        queue = await self.new_queue(ManualClock())
        try:
            await queue.put([_delivery(0), _delivery(1, "other/t"), _delivery(2, chain=("a",))])
            await queue.put([_delivery(3)])
            got = await queue.lease("rule/target", 2)
            assert 1 <= len(got) <= 2
            got += await _lease_exactly(queue, "rule/target", 3 - len(got))
            assert _ns(got) == [0, 2, 3] and [d.attempts for d in got] == [1, 1, 1]
            assert got[0].route == "rule/target" and got[0].event == _event(0)
            assert got[0].payload == '{"n":0}' and got[0].offset == 0
            assert got[0].ingestion_time == _WHEN and got[1].chain == ("a",)
            assert _ns(await queue.lease("other/t", 10)) == [1]
        finally:
            await queue.close()

    async def test_a_lease_waits_for_a_put(self) -> None:
        queue = await self.new_queue(ManualClock())
        got: list[Delivery] = []
        try:
            with anyio.fail_after(WAIT):
                async with anyio.create_task_group() as tg:

                    async def leaser() -> None:
                        got.extend(await queue.lease("rule/target", 10))

                    tg.start_soon(leaser)
                    await anyio.wait_all_tasks_blocked()
                    await queue.put([_delivery(5, "other/t"), _delivery(6)])
            assert _ns(got) == [6]
        finally:
            await queue.close()

    async def test_leased_deliveries_are_pending_and_handed_to_no_one_else(self) -> None:
        queue = await self.new_queue(ManualClock())
        try:
            await queue.put([_delivery(0), _delivery(1), _delivery(2, "other/t")])
            assert await queue.pending() == 3
            assert dict(await queue.routes()) == {"rule/target": 2, "other/t": 1}
            leased = await _lease_exactly(queue, "rule/target", 2)
            assert await queue.pending() == 3
            await queue.put([_delivery(3)])
            assert _ns(await queue.lease("rule/target", 10)) == [3]  # not 0 and 1 again
            await queue.ack(leased)
            assert await queue.pending() == 2
            assert dict(await queue.routes()) == {"rule/target": 1, "other/t": 1}
        finally:
            await queue.close()

    async def test_pending_events_are_what_a_restart_would_lose(self) -> None:
        clock = ManualClock() if self.clock_driven else SystemClock()
        queue = await self.new_queue(clock)
        await queue.put([_delivery(0), _delivery(1, "other/t"), _delivery(2)])
        done, waiting = await _lease_exactly(queue, "rule/target", 2)
        await queue.ack([done])
        await queue.release([waiting], 60)
        volatile = queue.pending_events()
        await queue.close()
        again = await self.reopen(queue, clock)
        if again is None:
            assert [e["detail"]["n"] for e in volatile] == [1, 2]  # each once, oldest first
        else:
            assert volatile == []  # the store keeps them for the next run
            await again.close()

    async def test_a_released_delivery_comes_back_after_its_delay_on_the_clock(self) -> None:
        if not self.clock_driven:
            return await self._released_in_real_time()
        clock = ManualClock()
        queue = await self.new_queue(clock)
        try:
            await queue.put([_delivery(0), _delivery(1)])
            first, second = await _lease_exactly(queue, "rule/target", 2)
            await queue.release([first], 600)
            await queue.release([second], 0)
            again = await queue.lease("rule/target", 10)
            assert _ns(again) == [1] and again[0].attempts == 2
            await queue.put([_delivery(2)])
            assert _ns(await queue.lease("rule/target", 10)) == [2]  # 0 is not due yet
            assert await queue.pending() == 3
            clock.advance(timedelta(seconds=600))
            late = await queue.lease("rule/target", 10)
            assert _ns(late) == [0] and late[0].attempts == 2
        finally:
            await queue.close()

    async def test_a_lease_waiting_for_a_retry_wakes_when_it_is_due(self) -> None:
        if not self.clock_driven:
            return await self._waiting_lease_in_real_time()
        clock = ManualClock()
        queue = await self.new_queue(clock)
        got: list[Delivery] = []
        try:
            await queue.put([_delivery(0)])
            await queue.release(await queue.lease("rule/target", 1), 30)
            with anyio.fail_after(WAIT):
                async with anyio.create_task_group() as tg:

                    async def leaser() -> None:
                        got.extend(await queue.lease("rule/target", 10))

                    tg.start_soon(leaser)
                    await anyio.wait_all_tasks_blocked()
                    clock.advance(timedelta(seconds=30))
            assert _ns(got) == [0] and got[0].attempts == 2
        finally:
            await queue.close()

    async def test_close_ends_leases(self) -> None:
        queue = await self.new_queue(ManualClock())
        got: list[list[Delivery]] = []
        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:

                async def leaser() -> None:
                    got.append(await queue.lease("rule/target", 10))

                tg.start_soon(leaser)
                await anyio.wait_all_tasks_blocked()
                await queue.close()
        assert got == [[]]
        await queue.close()  # idempotent

    async def test_a_reopened_queue_resumes_with_attempts_and_due_times(self) -> None:
        if not self.clock_driven:
            return await self._reopened_in_real_time()
        clock = ManualClock()
        queue = await self.new_queue(clock)
        await queue.put([_delivery(0), _delivery(1), _delivery(2), _delivery(3, "other/t")])
        done, waiting, in_flight = await _lease_exactly(queue, "rule/target", 3)
        await queue.ack([done])
        await queue.release([waiting], 600)
        # ``in_flight`` is leased when the process stops: it comes back, its attempt counted.
        await queue.close()
        again = await self.reopen(queue, clock)
        if again is None:
            pytest.skip("this queue forgets what it held when it is closed")
        try:
            assert await again.pending() == 3
            assert dict(await again.routes()) == {"rule/target": 2, "other/t": 1}
            back = await again.lease("rule/target", 10)
            assert _ns(back) == [in_flight.event["detail"]["n"]] and back[0].attempts == 2
            clock.advance(timedelta(seconds=600))
            late = await again.lease("rule/target", 10)
            assert _ns(late) == [waiting.event["detail"]["n"]] and late[0].attempts == 2
            assert late[0].event == waiting.event and late[0].payload == waiting.payload
        finally:
            await again.close()

    # -- the same properties on real time, for a queue whose due times run on a server's clock ---

    async def _lease_until(self, queue: DeliveryQueue, route: str, want: int) -> list[tuple[Delivery, float]]:
        """Leases of ``route`` until ``want`` deliveries came back, each with when it came."""
        got: list[tuple[Delivery, float]] = []
        with anyio.fail_after(WAIT + self.real_delay):
            while len(got) < want:
                for delivery in await queue.lease(route, 10):
                    got.append((delivery, anyio.current_time()))
        return got

    async def _released_in_real_time(self) -> None:
        delay = self.real_delay
        queue = await self.new_queue(SystemClock())
        try:
            await queue.put([_delivery(0), _delivery(1), _delivery(2)])
            first, second, third = await _lease_exactly(queue, "rule/target", 3)
            await queue.release([first], 600)
            await queue.release([second], 0)
            released = anyio.current_time()
            await queue.release([third], delay)
            back = await self._lease_until(queue, "rule/target", 2)
            assert sorted(_ns([d for d, _ in back])) == [1, 2]  # 0 is not due for ten minutes
            assert [d.attempts for d, _ in back] == [2, 2]
            [(_, came)] = [(d, t) for d, t in back if d.event["detail"]["n"] == 2]
            assert came - released >= delay * 0.9, "a released delivery came back before its delay"
            await queue.put([_delivery(3)])
            assert _ns(await queue.lease("rule/target", 10)) == [3]
            assert await queue.pending() == 4
        finally:
            await queue.close()

    async def _waiting_lease_in_real_time(self) -> None:
        queue = await self.new_queue(SystemClock())
        try:
            await queue.put([_delivery(0)])
            leased = await queue.lease("rule/target", 1)
            released = anyio.current_time()
            await queue.release(leased, self.real_delay)
            [(again, came)] = await self._lease_until(queue, "rule/target", 1)
            assert _ns([again]) == [0] and again.attempts == 2
            assert came - released >= self.real_delay * 0.9
        finally:
            await queue.close()

    async def _reopened_in_real_time(self) -> None:
        clock = SystemClock()
        queue = await self.new_queue(clock)
        await queue.put([_delivery(0), _delivery(1), _delivery(2), _delivery(3, "other/t")])
        done, waiting, in_flight = await _lease_exactly(queue, "rule/target", 3)
        await queue.ack([done])
        released = anyio.current_time()
        await queue.release([waiting], self.real_delay)
        # ``in_flight`` is leased when the process stops: it comes back, its attempt counted.
        await queue.close()
        again = await self.reopen(queue, clock)
        if again is None:
            pytest.skip("this queue forgets what it held when it is closed")
        try:
            assert await again.pending() == 3
            assert dict(await again.routes()) == {"rule/target": 2, "other/t": 1}
            back = await self._lease_until(again, "rule/target", 2)
            by_n = {d.event["detail"]["n"]: (d, t) for d, t in back}
            assert sorted(by_n) == sorted(_ns([waiting, in_flight]))
            assert all(d.attempts == 2 for d, _ in back)
            late, came = by_n[waiting.event["detail"]["n"]]
            assert came - released >= self.real_delay * 0.9
            assert late.event == waiting.event and late.payload == waiting.payload
        finally:
            await again.close()


# -- archives ---------------------------------------------------------------------------------

_A0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _archive(name: str, bus: str = "orders", *, retention_days: int = 0) -> Archive:
    return Archive(
        name=name,
        arn=f"arn:aws:events:us-east-1:123456789012:archive/{name}",
        bus=bus,
        bus_arn=f"arn:aws:events:us-east-1:123456789012:event-bus/{bus}",
        state="ENABLED",
        event_pattern=None,
        retention_days=retention_days,
        description=None,
        created=_A0,
    )


def _archived(n: int, minutes: float, ingested_seconds: float | None = None) -> tuple[dict[str, Any], datetime, datetime]:
    """Event ``n`` with ``time`` ``minutes`` after 2026-03-01T12:00Z (archives order by it),
    ingested ``ingested_seconds`` after that time (``n`` seconds unless told)."""
    when = _A0 + timedelta(minutes=minutes)
    event = {**_event(n), "time": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return event, when, _A0 + timedelta(seconds=n if ingested_seconds is None else ingested_seconds)


def _replay_of(name: str, state: str = "STARTING", **fields: Any) -> Replay:
    return Replay(
        name=name,
        arn=f"arn:aws:events:us-east-1:123456789012:replay/{name}",
        archive="shop",
        archive_arn="arn:aws:events:us-east-1:123456789012:archive/shop",
        bus="orders",
        destination_arn="arn:aws:events:us-east-1:123456789012:event-bus/orders",
        filter_arns=("arn:aws:events:us-east-1:123456789012:rule/orders/r1",),
        event_start=_A0,
        event_end=_A0 + timedelta(days=1),
        state=state,  # type: ignore[arg-type]
        **fields,
    )


class ArchiveStoreContract(_Contract):
    """What every ``ArchiveStore`` does. Subclass it and implement ``new_store`` (and ``reopen``
    for a durable store); the tests open and close the stores themselves."""

    async def new_store(self) -> ArchiveStore:
        """A store over empty storage, not opened yet."""
        raise NotImplementedError(f"{type(self).__name__} must implement new_store()")

    async def reopen(self, store: ArchiveStore) -> ArchiveStore | None:
        """A store over the same storage as ``store`` (closed by then), not opened yet, as after
        a restart; ``None``: the store keeps nothing (those tests are skipped)."""
        return None

    async def _opened(self) -> ArchiveStore:
        store = await self.new_store()
        with anyio.fail_after(WAIT):
            await store.open()
            await store.open()  # idempotent
        return store

    async def _all(self, store: ArchiveStore, name: str, start: datetime, end: datetime) -> list[ArchivedEvent]:
        with anyio.fail_after(WAIT):
            return await store.read(name, start, end, None, 1000)

    async def test_archives_are_saved_replaced_and_dropped(self) -> None:
        store = await self._opened()
        try:
            assert store.archives() == []
            store.save_archive(_archive("shop"))
            store.save_archive(_archive("audit", bus="payments", retention_days=3))
            assert sorted(a.name for a in store.archives()) == ["audit", "shop"]
            with anyio.fail_after(WAIT):
                await store.add({"shop": [_archived(1, 1)]})
            changed = replace(_archive("shop"), description="all orders", event_pattern='{"source":["shop"]}')
            store.save_archive(changed)
            shop = next(a for a in store.archives() if a.name == "shop")
            assert shop.description == "all orders" and shop.event_pattern == '{"source":["shop"]}'
            assert len(await self._all(store, "shop", _A0, _A0 + timedelta(days=1))) == 1  # its events stay
            store.drop_archive("shop")
            assert [a.name for a in store.archives()] == ["audit"]
            store.save_archive(_archive("shop"))  # the same name again: a new, empty archive
            assert await self._all(store, "shop", _A0, _A0 + timedelta(days=1)) == []
        finally:
            await store.close()

    async def test_events_are_kept_as_received_once_each_and_counted(self) -> None:
        store = await self._opened()
        try:
            store.save_archive(_archive("shop"))
            store.save_archive(_archive("other"))
            first = [_archived(1, 5), _archived(2, 1)]
            with anyio.fail_after(WAIT):
                await store.add({"shop": first, "other": [_archived(3, 2)], "unknown": [_archived(4, 3)]})
                await store.add({"shop": [_archived(1, 5), _archived(5, 7)]})  # event 1 again: not added
            shop = next(a for a in store.archives() if a.name == "shop")
            assert shop.event_count == 3 and shop.size_bytes > 0
            kept = await self._all(store, "shop", _A0, _A0 + timedelta(days=1))
            assert [e.event["detail"]["n"] for e in kept] == [2, 1, 5]  # by time
            event, when, ingested = first[0]
            assert kept[1].event == event and kept[1].time == when and kept[1].ingestion_time == ingested
            assert [e.event["detail"]["n"] for e in await self._all(store, "other", _A0, _A0 + timedelta(days=1))] == [3]
        finally:
            await store.close()

    async def test_reads_give_the_window_in_time_order_page_by_page(self) -> None:
        store = await self._opened()
        try:
            store.save_archive(_archive("shop"))
            # Over several hours, added out of time order, two events at one time.
            minutes = {1: 200, 2: 10, 3: 75, 4: 75, 5: 0, 6: 130, 7: 400, 8: 59}
            with anyio.fail_after(WAIT):
                await store.add({"shop": [_archived(n, m) for n, m in minutes.items()]})
            start, end = _A0 + timedelta(minutes=10), _A0 + timedelta(minutes=200)
            window = await self._all(store, "shop", start, end)  # both ends included
            assert [e.event["detail"]["n"] for e in window] == [2, 8, 3, 4, 6, 1]
            seqs = [e.seq for e in window]
            assert seqs[2] < seqs[3]  # one time: archive order
            pages: list[int] = []
            after: tuple[int, int] | None = None
            with anyio.fail_after(WAIT):
                while page := await store.read("shop", start, end, after, 2):
                    assert len(page) <= 2
                    pages += [e.event["detail"]["n"] for e in page]
                    after = (time_key(page[-1].time), page[-1].seq)
                assert pages == [2, 8, 3, 4, 6, 1]
                assert await store.count("shop", start, end) == 6
                assert await store.count("shop", _A0, _A0 + timedelta(days=1)) == 8
                assert await store.count("shop", _A0 + timedelta(days=2), _A0 + timedelta(days=3)) == 0
        finally:
            await store.close()

    async def test_expiry_forgets_what_was_archived_before_a_time(self) -> None:
        store = await self._opened()
        try:
            store.save_archive(_archive("shop", retention_days=1))
            with anyio.fail_after(WAIT):
                await store.add({"shop": [_archived(n, n, ingested_seconds=n) for n in range(1, 6)]})
                oldest = await store.expire("shop", _A0 + timedelta(seconds=3))
            assert oldest == _A0 + timedelta(seconds=4)
            left = await self._all(store, "shop", _A0, _A0 + timedelta(days=1))
            assert [e.event["detail"]["n"] for e in left] == [4, 5]
            assert next(a for a in store.archives() if a.name == "shop").event_count == 2
            with anyio.fail_after(WAIT):
                assert await store.expire("shop", _A0 + timedelta(seconds=3)) == oldest  # nothing more
                assert await store.expire("shop", _A0 + timedelta(days=1)) is None
            assert next(a for a in store.archives() if a.name == "shop").event_count == 0
        finally:
            await store.close()

    async def test_replays_are_saved_and_replaced(self) -> None:
        store = await self._opened()
        try:
            assert store.replays() == []
            store.save_replay(_replay_of("again"))
            running = _replay_of(
                "again", "RUNNING", started=_A0, replayed=3, total=9, cursor=(time_key(_A0), 7), last_replayed=_A0
            )
            store.save_replay(running)
            with anyio.fail_after(WAIT):
                await store.refresh()
            assert store.replays() == [running]
        finally:
            await store.close()

    async def test_what_is_saved_outlives_a_restart(self) -> None:
        store = await self._opened()
        try:
            store.save_archive(_archive("shop"))
            with anyio.fail_after(WAIT):
                await store.add({"shop": [_archived(1, 3), _archived(2, 1)]})
            replay = _replay_of("again", "RUNNING", replayed=1, cursor=(time_key(_A0), 1))
            store.save_replay(replay)
        finally:
            with anyio.fail_after(WAIT):
                await store.close()
        again = await self.reopen(store)
        if again is None:
            pytest.skip("the store keeps nothing across a restart")
        with anyio.fail_after(WAIT):
            await again.open()
        try:
            shop = next(a for a in again.archives() if a.name == "shop")
            assert shop.event_count == 2
            kept = await self._all(again, "shop", _A0, _A0 + timedelta(days=1))
            assert [e.event["detail"]["n"] for e in kept] == [2, 1]
            assert again.replays() == [replay]
            with anyio.fail_after(WAIT):
                await again.add({"shop": [_archived(1, 3)]})  # already there
            assert next(a for a in again.archives() if a.name == "shop").event_count == 2
        finally:
            await again.close()
