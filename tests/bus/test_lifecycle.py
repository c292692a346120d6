"""Start, drain and stop; schedules on a manual clock; buses targeting buses; the sync facade."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from eventbus.bus import EventBus, ManualClock, RuleTarget
from eventbus.errors import BusClosedError
from eventbus.sync import SyncEventBus
from eventbus.targets.bus import BusTarget

from .helpers import AlwaysFails, Collector, Gated, Slow, entry

pytestmark = pytest.mark.anyio


async def test_exit_drains_events_in_flight() -> None:
    held = Gated()
    bus = EventBus()
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="s", target=held, max_concurrency=2)])
    async with bus:
        await bus.put_events([entry(detail={"n": i}) for i in range(10)])
        await anyio.wait_all_tasks_blocked()
        # Two deliveries under way, eight waiting their turn: all ten are in flight at the exit.
        assert held.waiting == 2 and bus.pending() == 10 and held.payloads == []
        held.gate.set()
    assert sorted(p["detail"]["n"] for p in held.payloads) == list(range(10))
    assert bus.pending() == 0 and bus.metrics()["bus"]["UndeliveredAtShutdown"] == 0
    assert held.closed


async def test_what_the_drain_timeout_leaves_is_counted() -> None:
    bus = EventBus(drain_timeout=0.05, backoff={"base": 0.01, "cap": 0.01})
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="f", target=AlwaysFails())])
    async with bus:
        await bus.put_events([entry(), entry(), entry()])
    assert bus.metrics()["bus"]["UndeliveredAtShutdown"] == 3
    assert bus.pending() == 3


async def test_cancelled_caller_still_drains() -> None:
    slow = Slow(0.02)
    bus = EventBus()
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="s", target=slow)])
    with anyio.CancelScope() as scope:
        async with bus:
            await bus.put_events([entry()])
            scope.cancel()  # the caller is cancelled with the event accepted and not delivered
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert len(slow.payloads) == 1


async def test_scheduled_rule_fires_on_the_clock() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    target = Collector()
    bus = EventBus("orders", clock=clock)
    arn = bus.put_rule("tick", schedule_expression="rate(5 minutes)")
    bus.put_targets("tick", [RuleTarget(id="c", target=target)])
    async with bus:
        await anyio.wait_all_tasks_blocked()
        assert target.payloads == []
        for n in range(1, 4):
            clock.advance(timedelta(minutes=5) - timedelta(microseconds=1))
            await anyio.wait_all_tasks_blocked()
            assert len(target.payloads) == n - 1  # not a microsecond early
            clock.advance(timedelta(microseconds=1))
            await anyio.wait_all_tasks_blocked()
            assert len(target.payloads) == n
        bus.disable_rule("tick")
        clock.advance(timedelta(minutes=5))
        await anyio.wait_all_tasks_blocked()
        assert bus.pending() == 0
    assert len(target.payloads) == 3
    first = target.payloads[0]
    assert first["detail-type"] == "Scheduled Event" and first["source"] == "aws.events"
    assert first["detail"] == {} and first["resources"] == [arn]
    assert [p["time"] for p in target.payloads] == [
        "2026-01-01T00:05:00Z",
        "2026-01-01T00:10:00Z",
        "2026-01-01T00:15:00Z",
    ]


async def test_bus_to_bus_loops_are_cut() -> None:
    a_seen, b_seen = Collector(), Collector()
    a, b = EventBus("a"), EventBus("b")
    for bus, other, seen in ((a, b, a_seen), (b, a, b_seen)):
        bus.put_rule("forward", {"source": ["shop"]})
        bus.put_targets(
            "forward",
            [RuleTarget(id="other", target=BusTarget(other.name)), RuleTarget(id="seen", target=seen)],
        )
    async with a, b:
        await a.put_events([entry()])
        with anyio.fail_after(5):
            while not (a.metrics()["bus"]["LoopedEvents"] and b_seen.payloads):
                await anyio.sleep(0.005)
        assert await a.wait_idle(5) and await b.wait_idle(5)
    assert len(a_seen.payloads) == 1 and len(b_seen.payloads) == 1
    assert a.metrics()["bus"]["LoopedEvents"] == 1


def test_sync_facade() -> None:
    got: list[Any] = []
    seen_threads: set[int] = set()
    with SyncEventBus("orders") as bus:
        assert bus.put_rule("r", {"source": ["shop"]}).endswith(":rule/orders/r")

        @bus.rule({"detail-type": ["order"]}, name="fn")
        def handler(event: dict[str, Any]) -> None:
            seen_threads.add(threading.get_ident())
            got.append(event["detail"])

        target = Collector()
        bus.put_targets("r", [RuleTarget(id="c", target=target)])
        answer = bus.put_events([entry(detail={"n": 1}), {"Source": "x"}])
        assert answer["FailedEntryCount"] == 1
        assert bus.wait_idle(5)
        assert [r.name for r in bus.list_rules()] == ["fn", "r"]
        bus.disable_rule("r")
        assert bus.describe_rule("r").state == "DISABLED"
        bus.enable_rule("r")
        bus.remove_targets("r", ["c"])
        bus.delete_rule("r")
        assert bus.metrics()["rules"]["fn"]["Invocations"] == 1
    assert got == [{"n": 1}] and target.payloads[0]["detail"] == {"n": 1}
    assert threading.get_ident() not in seen_threads
    with pytest.raises(BusClosedError):
        bus.put_events([entry()])
    bus.close()


def test_sync_facade_on_trio_drains_on_close() -> None:
    slow = Slow(0.01)
    bus = SyncEventBus(backend="trio")
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="s", target=slow)])
    bus.put_events([entry(detail={"n": i}) for i in range(5)])
    bus.close()
    assert len(slow.payloads) == 5


async def test_a_running_bus_is_registered_by_name() -> None:
    from eventbus.targets.bus import lookup_bus

    bus = EventBus("registered")
    assert lookup_bus("registered") is None
    async with bus:
        assert lookup_bus("registered") is bus
    assert lookup_bus("registered") is None


async def test_a_handler_publishing_to_its_own_bus_is_not_a_loop() -> None:
    seen: list[str] = []
    bus = EventBus("shop")

    @bus.rule({"detail-type": ["OrderPlaced"]})
    async def place(event: dict[str, Any]) -> None:
        await bus.put_events([entry(detail_type="OrderShipped", detail=event["detail"])])

    @bus.rule({"detail-type": ["OrderShipped"]})
    def shipped(event: dict[str, Any]) -> None:
        seen.append(event["detail"]["n"])

    async with bus:
        await bus.put_events([entry(detail_type="OrderPlaced", detail={"n": 1})])
        with anyio.fail_after(5):
            while not seen:
                await anyio.sleep(0.005)
    assert seen == [1] and bus.metrics()["bus"]["LoopedEvents"] == 0


async def test_cron_rule_fires_at_its_time() -> None:
    clock = ManualClock(datetime(2026, 1, 1, 11, 0, tzinfo=UTC))
    target = Collector()
    bus = EventBus(clock=clock)
    arn = bus.put_rule("noon", schedule_expression="cron(0 12 * * ? *)")
    assert arn.endswith(":rule/noon")
    bus.put_targets("noon", [RuleTarget(id="c", target=target)])
    async with bus:
        clock.advance(timedelta(minutes=60) - timedelta(microseconds=1))
        await anyio.wait_all_tasks_blocked()
        assert target.payloads == []
        clock.advance(timedelta(microseconds=1))
        await anyio.wait_all_tasks_blocked()
        assert len(target.payloads) == 1
    assert [p["time"] for p in target.payloads] == ["2026-01-01T12:00:00Z"]


async def test_a_handler_publishing_into_its_full_bus_is_throttled_not_deadlocked() -> None:
    answers: list[dict[str, Any]] = []
    seen: list[str] = []
    # One slot for the handler's deliveries, held while it runs: waiting for room in the log,
    # which the router frees only once it has a slot for the new event, would never end.
    bus = EventBus(log_capacity=1, target_queue_size=1)

    @bus.rule({"detail-type": ["first", "second"]})
    async def handler(event: dict[str, Any]) -> None:
        seen.append(event["detail-type"])
        if event["detail-type"] == "first":
            answers.append(await bus.put_events([entry(detail_type="second"), entry(detail_type="second")]))

    with anyio.fail_after(5):
        async with bus:
            await bus.put_events([entry(detail_type="first")])
            assert await bus.wait_idle(5)
    assert [e.get("ErrorCode") for e in answers[0]["Entries"]] == [None, "ThrottlingException"]
    assert seen == ["first", "second"]


def test_sync_facade_wraps_a_bus_you_built() -> None:
    target = Collector()
    inner = EventBus("built", max_entries_per_put=2)
    inner.put_rule("r", {"source": ["shop"]})
    inner.put_targets("r", [RuleTarget(id="c", target=target)])
    with SyncEventBus(bus=inner) as bus:
        assert bus.bus is inner
        with pytest.raises(ValueError, match="less than or equal to 2"):
            bus.put_events([entry()] * 3)
        bus.put_events([entry(), entry()])
    assert len(target.payloads) == 2 and not inner.running


async def test_an_error_in_the_body_propagates_as_itself_after_the_drain() -> None:
    slow = Slow(0.01)
    bus = EventBus()
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="s", target=slow)])
    with pytest.raises(KeyError, match="boom"):
        async with bus:
            await bus.put_events([entry()])
            raise KeyError("boom")
    assert len(slow.payloads) == 1


class Held(Collector):
    """Takes nothing until ``release`` is set; records how many payloads each call got."""

    def __init__(self, per_payload_calls: bool = False) -> None:
        super().__init__(10)
        self.per_payload_calls = per_payload_calls
        self.release = anyio.Event()
        self.sizes: list[int] = []

    async def deliver(self, payloads: Any, context: Any) -> None:
        self.sizes.append(len(payloads))
        await self.release.wait()
        await super().deliver(payloads, context)


async def test_pending_events_names_what_the_drain_left_in_order() -> None:
    bus = EventBus(drain_timeout=0, backoff={"base": 0.01, "cap": 0.01})
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="f", target=AlwaysFails())])
    async with bus:
        answer = await bus.put_events([entry(detail={"n": n}) for n in range(3)])
    assert [e["id"] for e in bus.pending_events()] == [r["EventId"] for r in answer["Entries"]]
    assert [e["detail"]["n"] for e in bus.pending_events()] == [0, 1, 2]


async def test_a_bus_that_stopped_taking_delivers_while_a_new_one_takes_its_name() -> None:
    held = Held()
    old = EventBus("orders")
    old.put_rule("r", {"source": ["shop"]})
    old.put_targets("r", [RuleTarget(id="h", target=held)])
    fresh_target = Collector()
    fresh = EventBus("orders")
    fresh.put_rule("r", {"source": ["shop"]})
    fresh.put_targets("r", [RuleTarget(id="c", target=fresh_target)])
    sender_seen = Collector()
    sender = EventBus("sender")
    sender.put_rule("fwd", {"source": ["shop"]})
    sender.put_targets("fwd", [RuleTarget(id="b", target=BusTarget("orders")), RuleTarget(id="s", target=sender_seen)])
    async with old:
        await old.put_events([entry(detail={"n": n}) for n in range(3)])
        old.stop_taking()
        assert not old.running and old.pending() == 3
        with pytest.raises(BusClosedError):
            await old.put_events([entry()])
        async with fresh, sender:
            # The new bus registers under the name the old one still holds while it drains.
            await sender.put_events([entry(detail={"n": 9})])
            assert await sender.wait_idle(5) and await fresh.wait_idle(5)
            assert [p["detail"]["n"] for p in fresh_target.payloads] == [9]
            held.release.set()
            assert await old.wait_idle(5)
    assert sorted(p["detail"]["n"] for p in held.payloads) == [0, 1, 2]
    assert old.metrics()["bus"]["UndeliveredAtShutdown"] == 0


@pytest.mark.parametrize("per_payload_calls", [False, True])
async def test_a_target_making_a_call_a_payload_gets_one_payload_at_a_time(per_payload_calls: bool) -> None:
    held = Held(per_payload_calls)
    bus = EventBus()
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="h", target=held, max_concurrency=1)])
    async with bus:
        await bus.put_events([entry(detail={"n": n}) for n in range(10)])
        await anyio.wait_all_tasks_blocked()
        held.release.set()
        assert await bus.wait_idle(5)
    assert held.sizes == ([1] * 10 if per_payload_calls else [10])
