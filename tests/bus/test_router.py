"""The router matches each consumed batch with one matcher call, and one event the matcher
cannot take costs that event alone."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from eventbus.bus import EventBus, RuleTarget
from eventbus.patterns.matcher import Matcher

from .helpers import Collector, entry

pytestmark = pytest.mark.anyio


class CountingMatcher(Matcher):
    """A real matcher that counts its calls and fails on events whose detail says ``boom``
    (the matcher itself raises on no JSON event; this stands for a fault nothing else provokes)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.singles = 0

    def match_many(self, events: Iterable[Any]) -> list[set[str]]:
        events = list(events)
        self.batches.append(len(events))
        if any(event["detail"].get("boom") for event in events):
            raise RecursionError("maximum recursion depth exceeded")
        return super().match_many(events)

    def match(self, event: Any) -> set[str]:
        self.singles += 1
        if event["detail"].get("boom"):
            raise RecursionError("maximum recursion depth exceeded")
        return super().match(event)


def _bus() -> tuple[EventBus, CountingMatcher, Collector]:
    bus = EventBus("orders")
    matcher = CountingMatcher()
    bus._table.matcher = matcher  # before any rule is put, so the table fills this one
    target = Collector()
    bus.put_rule("all", {"source": ["shop"]})
    bus.put_rule("big", {"detail": {"n": [{"numeric": [">", 1]}]}})
    bus.put_targets("all", [RuleTarget(id="c", target=target)])
    return bus, matcher, target


async def test_a_batch_is_matched_in_one_call() -> None:
    bus, matcher, target = _bus()
    async with bus:
        await bus.put_events([entry(detail={"n": n}) for n in range(10)])
        assert await bus.wait_idle(5)
    assert sorted(p["detail"]["n"] for p in target.payloads) == list(range(10))
    assert sum(matcher.batches) == 10 and len(matcher.batches) < 10 and matcher.singles == 0
    assert bus.metrics()["rules"]["big"]["MatchedEvents"] == 8


async def test_an_event_the_matcher_cannot_take_costs_only_itself() -> None:
    bus, matcher, target = _bus()
    async with bus:
        await bus.put_events([entry(detail={"n": 1}), entry(detail={"boom": True}), entry(detail={"n": 3})])
        assert await bus.wait_idle(5)
    assert [p["detail"] for p in target.payloads] == [{"n": 1}, {"n": 3}]
    assert bus.metrics()["bus"]["UnroutableEvents"] == 1
    # The batch's call failed, and each event was then matched alone.
    assert matcher.batches and matcher.singles >= 3
