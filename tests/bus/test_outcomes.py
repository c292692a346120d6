"""bus.outcomes(): what happened to each delivery, bounded, never slowing the bus."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from eventbus.bus import EventBus, ManualClock, RetryPolicy, RuleTarget
from eventbus.bus.outcomes import Outcome
from eventbus.errors import ResourceNotFoundError, ThrottledError

from .helpers import FAST, AlwaysFails, Collector, Flaky, entry

pytestmark = pytest.mark.anyio


def steps(outcomes: list[Outcome]) -> list[tuple[str, int]]:
    return [(o.kind, o.attempt) for o in outcomes]


async def test_a_delivery_reports_each_attempt_until_it_ends() -> None:
    clock = ManualClock()
    flaky, dead = Flaky(2, ThrottledError("slow down")), Collector()
    bus = EventBus("orders", clock=clock, backoff={"base": 1, "cap": 1}, random=lambda: 1.0)
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets(
        "r",
        [
            RuleTarget(id="ok", target=Collector()),
            RuleTarget(id="flaky", target=flaky),
            RuleTarget(
                id="bad",
                target=AlwaysFails(ThrottledError("still slow")),
                dead_letter=dead,
                retry_policy=RetryPolicy(MaximumRetryAttempts=1),
            ),
        ],
    )
    stream = bus.outcomes()
    async with bus:
        [answer] = (await bus.put_events([entry()]))["Entries"]
        for _ in range(2):
            await anyio.wait_all_tasks_blocked()
            clock.advance(timedelta(seconds=1))
        assert await bus.wait_idle(5)
    got = [o async for o in stream]  # the stream ends once the bus has stopped
    by_target: dict[str, list[Outcome]] = {}
    for outcome in got:
        assert outcome.event_id == answer["EventId"] and outcome.bus == "orders" and outcome.rule == "r"
        by_target.setdefault(outcome.target_id, []).append(outcome)
    assert steps(by_target["ok"]) == [("delivered", 1)]
    assert steps(by_target["flaky"]) == [
        ("failed", 1),
        ("retry-scheduled", 1),
        ("failed", 2),
        ("retry-scheduled", 2),
        ("delivered", 3),
    ]
    failed, scheduled = by_target["flaky"][:2]
    assert failed.error_code == "THROTTLING" and failed.reason == "slow down"
    assert scheduled.delay == 1.0 and failed.time == clock.now() - timedelta(seconds=2)
    assert steps(by_target["bad"]) == [("failed", 1), ("retry-scheduled", 1), ("failed", 2), ("dead-lettered", 2)]
    assert by_target["bad"][-1].condition == "MaximumRetryAttempts"
    assert by_target["ok"][0].address == "orders/r/ok"
    assert stream.lost == 0 and len(dead.payloads) == 1


async def test_dropped_deliveries_say_why() -> None:
    bus = EventBus(**FAST)
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets(
        "r",
        [
            RuleTarget(id="gone", target=AlwaysFails(ResourceNotFoundError("no such queue"))),
            RuleTarget(id="shape", target=Collector(), input_path="$.detail.missing"),
        ],
    )
    async with bus, bus.outcomes() as stream:
        await bus.put_events([entry()])
        assert await bus.wait_idle(5)
        got = stream.ready()
    gone = [o for o in got if o.target_id == "gone"]
    assert steps(gone) == [("failed", 1), ("dropped", 1)]
    assert gone[-1].error_code == "NO_RESOURCE" and gone[-1].condition is None
    [shape] = [o for o in got if o.target_id == "shape"]
    assert shape.kind == "dropped" and shape.attempt == 0 and shape.error_type == "TransformError"
    assert shape.reason is not None and "matches nothing" in shape.reason


async def test_a_slow_reader_loses_the_oldest_with_a_count_and_never_slows_the_bus() -> None:
    target = Collector()
    bus = EventBus()
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="t", target=target)])
    stream = bus.outcomes(buffer=3)
    async with bus:
        for n in range(10):
            await bus.put_events([entry(detail={"n": n})])
        assert await bus.wait_idle(5)  # nobody read: the bus went on anyway
    assert len(target.payloads) == 10
    kept = [o async for o in stream]
    assert stream.lost == 7
    assert [o.lost_before for o in kept] == [7, 0, 0]
    ids = [p["id"] for p in target.payloads]
    assert [o.event_id for o in kept] == ids[-3:]


async def test_a_closed_stream_hears_no_more_and_other_readers_go_on() -> None:
    bus = EventBus()
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="t", target=Collector())])
    early, late = bus.outcomes(), bus.outcomes()
    async with bus:
        await bus.put_events([entry()])
        assert await bus.wait_idle(5)
        early.close()
        await bus.put_events([entry()])
        assert await bus.wait_idle(5)
    assert len([o async for o in early]) == 1
    assert len([o async for o in late]) == 2
    after = bus.outcomes()
    assert [o async for o in after] == []  # the bus has stopped: nothing will come
