"""bus.routed(): each event with the rules it matched and each target's input, bounded, never
slowing the bus."""

from __future__ import annotations

import json

import anyio
import pytest

from eventbus.bus import EventBus, ManualClock, RuleTarget
from eventbus.bus.routed import RoutedEvent

from .helpers import Collector, entry

pytestmark = pytest.mark.anyio


async def test_each_event_says_which_rules_matched_and_what_each_target_got() -> None:
    clock = ManualClock()
    bus = EventBus("orders", clock=clock)
    bus.put_rule("all", {"source": ["shop"]})
    bus.put_targets(
        "all",
        [
            RuleTarget(id="whole", target=Collector()),
            RuleTarget(
                id="total",
                target=Collector(),
                input_transformer={"InputPathsMap": {"t": "$.detail.total"}, "InputTemplate": '{"total": <t>}'},
            ),
            RuleTarget(id="broken", target=Collector(), input_path="$.detail.missing"),
        ],
    )
    bus.put_rule("big", {"detail": {"total": [{"numeric": [">", 100]}]}})  # no targets: matches, sends nothing
    bus.put_rule("off", {"source": ["shop"]}, state="DISABLED")
    bus.put_rule("other", {"source": ["elsewhere"]})
    async with bus, bus.routed() as stream:
        [big] = (await bus.put_events([entry(detail={"total": 150})]))["Entries"]
        [small] = (await bus.put_events([entry(detail={"total": 5})]))["Entries"]
        [none] = (await bus.put_events([entry(source="nobody")]))["Entries"]
        assert await bus.wait_idle(5)
        got = stream.ready()
    assert [r.event_id for r in got] == [big["EventId"], small["EventId"], none["EventId"]]
    first, second, third = got
    assert isinstance(first, RoutedEvent) and first.bus == "orders"
    assert sorted(first.rules) == ["all", "big"] and second.rules == ("all",) and third.rules == ()
    assert first.ingestion_time == clock.now() and first.event["detail"] == {"total": 150}
    whole, total, broken = first.inputs
    assert whole.rule == "all" and whole.target_id == "whole" and whole.payload is not None
    assert json.loads(whole.payload) == first.event
    assert total.rule == "all" and total.payload is not None and json.loads(total.payload) == {"total": 150}
    assert broken.payload is None and broken.error is not None and "matches nothing" in broken.error
    assert third.inputs == () and first.lost_before == 0


async def test_without_a_reader_the_router_builds_nothing_and_a_slow_reader_loses_the_oldest() -> None:
    bus = EventBus()
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="t", target=Collector())])
    async with bus:
        await bus.put_events([entry()])  # nobody reads yet
        assert await bus.wait_idle(5)
        stream = bus.routed(buffer=3)
        for n in range(10):
            await bus.put_events([entry(detail={"n": n})])
        assert await bus.wait_idle(5)  # nobody read: the bus went on anyway
    kept = [r async for r in stream]  # ends once the bus has stopped
    assert stream.lost == 7
    assert [r.lost_before for r in kept] == [7, 0, 0]
    assert [r.event["detail"]["n"] for r in kept] == [7, 8, 9]


async def test_a_closed_stream_hears_no_more() -> None:
    bus = EventBus()
    bus.put_rule("r", {"source": ["shop"]})
    early, late = bus.routed(), bus.routed()
    async with bus:
        await bus.put_events([entry()])
        assert await bus.wait_idle(5)
        early.close()
        await bus.put_events([entry()])
        assert await bus.wait_idle(5)
        await anyio.wait_all_tasks_blocked()
    assert len([r async for r in early]) == 1
    assert len([r async for r in late]) == 2
    with pytest.raises(ValueError, match="routed event"):
        bus.routed(buffer=0)
