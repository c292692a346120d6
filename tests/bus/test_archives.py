"""Archives and replay, in memory and in a SQLite state file: what an archive takes, that it
expires, replay exactness, rule filters, cancellation, and a replay that outlives a restart."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from eventbus.bus import EventBus, ManualClock, RuleTarget
from eventbus.bus.archives import Archives
from eventbus.bus.logs.sqlite import SqliteEventLog
from eventbus.errors import (
    BusValidationError,
    IllegalStatusError,
    PatternError,
    ResourceAlreadyExistsError,
    ResourceMissingError,
)
from eventbus.testing import settle

from .helpers import Collector, Gated, entry

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def timed(n: int, minutes: float, source: str = "shop") -> dict[str, str]:
    return {**entry(source=source, detail={"n": n}), "Time": at(minutes)}


@pytest.fixture(params=["memory", "sqlite"])
def make_bus(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., EventBus]:
    def make(name: str = "orders", **settings: object) -> EventBus:
        if request.param == "sqlite":
            capacity = int(settings.get("log_capacity", 10_000))  # type: ignore[call-overload]
            log = SqliteEventLog(tmp_path / "state.db", capacity=capacity)
            return EventBus(name, log=log, **settings)  # type: ignore[arg-type]
        return EventBus(name, **settings)  # type: ignore[arg-type]

    return make


def ns(target: Collector) -> list[int]:
    return [p["detail"]["n"] for p in target.payloads]


async def test_an_archive_keeps_what_matches_as_received(make_bus: Callable[..., EventBus]) -> None:
    bus = make_bus()
    async with bus:
        archive = bus.create_archive("shop", event_pattern={"source": ["shop"]}, description="all orders")
        assert archive.state == "ENABLED" and archive.arn == "arn:aws:events:us-east-1:123456789012:archive/shop"
        assert archive.bus_arn == bus.arn and archive.retention_days == 0
        await bus.put_events([timed(1, 1), timed(2, 2, source="other"), timed(3, 3)])
        assert await bus.wait_idle(5)
        described = bus.describe_archive("shop")
        assert described.event_count == 2 and described.size_bytes > 0
        assert json.loads(described.event_pattern or "") == {"source": ["shop"]}
        assert [a.name for a in bus.list_archives()] == ["shop"]
        with pytest.raises(ResourceAlreadyExistsError, match=r"Archive shop already exists\."):
            bus.create_archive("shop")
        with pytest.raises(ResourceMissingError, match=r"Archive nope does not exist\."):
            bus.describe_archive("nope")
        with pytest.raises(PatternError):
            bus.create_archive("bad", event_pattern={"source": "not a list"})
        with pytest.raises(BusValidationError, match="archiveName"):
            bus.create_archive("no spaces please")
        bus.delete_archive("shop")
        assert bus.list_archives() == []


async def test_replay_delivers_exactly_the_window_in_time_order_with_replay_name(
    make_bus: Callable[..., EventBus],
) -> None:
    bus = make_bus()
    target = Collector()
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="t", target=target)])
    async with bus:
        bus.create_archive("all")
        # Put out of time order: a replay goes by each event's time.
        await bus.put_events([timed(4, 40), timed(1, 10), timed(3, 30)])
        await bus.put_events([timed(2, 20), timed(5, 50), timed(0, 0)])
        assert await bus.wait_idle(5)
        live = len(target.payloads)
        replay = await bus.start_replay("again", "all", T0 + timedelta(minutes=10), T0 + timedelta(minutes=40))
        assert replay.state == "STARTING" and replay.total == 4
        done = await bus.wait_replay("again", timeout=10)
        assert await bus.wait_idle(5)
        assert done.state == "COMPLETED" and done.replayed == 4
        assert done.last_replayed == T0 + timedelta(minutes=40)
        assert done.started is not None and done.ended is not None
        replayed = target.payloads[live:]
        assert [p["detail"]["n"] for p in replayed] == [1, 2, 3, 4]  # start and end included
        assert {p["replay-name"] for p in replayed} == {"again"}
        # Replayed events are not archived again.
        assert bus.describe_archive("all").event_count == 6
        # Another replay of the same window takes the same events (no replay-name nested).
        await bus.start_replay("twice", "all", T0 + timedelta(minutes=10), T0 + timedelta(minutes=40))
        await bus.wait_replay("twice", timeout=10)
        assert await bus.wait_idle(5)
        assert [p["detail"]["n"] for p in target.payloads[live + 4 :]] == [1, 2, 3, 4]
        assert {p["replay-name"] for p in target.payloads[live + 4 :]} == {"twice"}
        with pytest.raises(ResourceAlreadyExistsError, match=r"Replay again already exists\."):
            await bus.start_replay("again", "all", T0, T0 + timedelta(minutes=1))
        with pytest.raises(IllegalStatusError):
            bus.cancel_replay("again")


async def test_a_replay_goes_only_to_the_rules_it_names(make_bus: Callable[..., EventBus]) -> None:
    bus = make_bus()
    first, second = Collector(), Collector()
    for name, target in (("first", first), ("second", second)):
        bus.put_rule(name, {"source": ["shop"]})
        bus.put_targets(name, [RuleTarget(id="t", target=target)])
    async with bus:
        bus.create_archive("all")
        await bus.put_events([timed(1, 1)])
        assert await bus.wait_idle(5)
        replay = await bus.start_replay("one-rule", "all", T0, T0 + timedelta(hours=1), rules=["second"])
        assert replay.filter_arns == ("arn:aws:events:us-east-1:123456789012:rule/orders/second",)
        await bus.wait_replay("one-rule", timeout=10)
        assert await bus.wait_idle(5)
        with pytest.raises(BusValidationError, match="Rule missing does not exist"):
            await bus.start_replay("bad", "all", T0, T0 + timedelta(hours=1), rules=["missing"])
        with pytest.raises(BusValidationError, match="EventEndTime must be after EventStartTime"):
            await bus.start_replay("bad", "all", T0, T0)
    assert ns(first) == [1] and ns(second) == [1, 1]


async def test_a_cancelled_replay_stops(make_bus: Callable[..., EventBus]) -> None:
    # A bus whose log takes ten events at a time and a target that holds every delivery: the
    # replay waits for room after a page, and is cancelled there.
    bus = make_bus(log_capacity=10, target_queue_size=5)
    gated = Gated()
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="t", target=gated, max_concurrency=1)])
    async with bus:
        bus.create_archive("all")
        for start in range(0, 30, 10):
            gated.gate.set()
            await bus.put_events([timed(n, n) for n in range(start, start + 10)])
            assert await bus.wait_idle(5)
        gated.gate = anyio.Event()
        before = len(gated.payloads)
        await bus.start_replay("long", "all", T0, T0 + timedelta(hours=1))
        with anyio.fail_after(10):
            while bus.describe_replay("long").state != "RUNNING":
                await anyio.sleep(0.01)
        await settle(bus)
        cancelling = bus.cancel_replay("long")
        assert cancelling.state == "CANCELLING"
        ended = await bus.wait_replay("long", timeout=10)
        assert ended.state == "CANCELLED" and ended.ended is not None
        gated.gate.set()
        assert await bus.wait_idle(5)
        replayed = len(gated.payloads) - before
        assert 0 < replayed < 30 and ended.replayed < 30
        assert bus.describe_replay("long").state == "CANCELLED"


async def test_archives_forget_events_past_their_retention(tmp_path: Path) -> None:
    for durable in (False, True):
        clock = ManualClock(T0)
        log = SqliteEventLog(tmp_path / "s.db") if durable else None
        bus = EventBus("orders", clock=clock, log=log)
        async with bus:
            bus.create_archive("week", retention_days=7)
            bus.create_archive("forever")
            await bus.put_events([timed(1, 0)])
            await settle(bus)
            clock.advance(timedelta(days=3))
            await bus.put_events([timed(2, 0)])
            await settle(bus)
            clock.advance(timedelta(days=4))  # the first is 7 days old now
            await settle(bus)
            assert bus.describe_archive("week").event_count == 1
            clock.advance(timedelta(days=3))
            await settle(bus)
            assert bus.describe_archive("week").event_count == 0
            assert bus.describe_archive("forever").event_count == 2


async def test_archives_and_a_replay_under_way_outlive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    target = Gated()

    def bus() -> EventBus:
        b = EventBus("orders", log=SqliteEventLog(path, capacity=10), drain_timeout=0)
        b.put_rule("r", {"source": ["shop"]})
        b.put_targets("r", [RuleTarget(id="t", target=target, max_concurrency=1)])
        return b

    first = bus()
    async with first:
        first.create_archive("all")
        target.gate.set()
        for start in range(0, 30, 10):
            await first.put_events([timed(n, n) for n in range(start, start + 10)])
            assert await first.wait_idle(5)
        target.gate = anyio.Event()
        await first.start_replay("long", "all", T0, T0 + timedelta(hours=1))
        with anyio.fail_after(10):
            while first.describe_replay("long").replayed == 0:
                await anyio.sleep(0.01)
    # Stopped mid-replay: the next run goes on from where it was.
    target.gate.set()
    second = bus()
    async with second:
        assert [a.event_count for a in second.list_archives()] == [30]
        done = await second.wait_replay("long", timeout=20)
        assert done.state == "COMPLETED" and done.replayed >= 30
        assert await second.wait_idle(10)
    replayed = [p["detail"]["n"] for p in target.payloads if p.get("replay-name") == "long"]
    assert set(replayed) == set(range(30))


async def test_the_archive_api_over_several_buses(make_bus: Callable[..., EventBus]) -> None:
    orders, billing = make_bus("orders"), make_bus("billing")
    async with orders, billing:
        api = Archives(lambda: [orders, billing])
        api.create_archive("o", bus="orders")
        api.create_archive("b", bus="billing", event_pattern='{"source": ["bank"]}', retention_days=3)
        with pytest.raises(ResourceAlreadyExistsError):
            api.create_archive("o", bus="billing")
        assert [a.name for a in api.list_archives()] == ["b", "o"]
        assert api.describe_archive("b").bus == "billing"
        await orders.put_events([timed(1, 1)])
        assert await orders.wait_idle(5)
        with pytest.raises(BusValidationError, match="Cross event bus replay is not permitted"):
            await api.start_replay("x", archive="o", start=T0, end=T0 + timedelta(hours=1), destination_bus="billing")
        replay = await api.start_replay("x", archive="o", start=T0, end=T0 + timedelta(hours=1), destination_bus="orders")
        assert api.describe_replay("x").arn == replay.arn
        await orders.wait_replay("x", timeout=10)
        assert [r.name for r in api.list_replays()] == ["x"]
        api.delete_archive("b")
        with pytest.raises(ResourceMissingError):
            api.describe_archive("b")
