"""A bus on JetStream, in one process: delivery, retries as delayed redeliveries counted by the
server, dead letters, work shared by several buses on the same streams, deduplication,
schedules claimed once per period, rules shared through the rule bucket."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import anyio
import pytest

from eventbus.bus import EventBus, LogRecord, ManualClock, RuleTarget
from eventbus.bus.logs.jetstream import JetStreamEventLog
from eventbus.envelope import parse_time
from eventbus.errors import BusValidationError, RetryableError
from eventbus.targets.base import DeliveryContext
from eventbus.targets.recording import RecordingTarget

pytestmark = pytest.mark.anyio

#: Bounds every wait: a broken backend fails these tests, it does not hang them.
WAIT = 30.0
ANY = lambda payload: True  # noqa: E731
FAST = {"backoff": {"base": 0.2, "cap": 0.5}, "drain_timeout": 10}


def entry(n: int, source: str = "shop") -> dict[str, Any]:
    return {"Source": source, "DetailType": "order", "Detail": json.dumps({"n": n})}


class Workers:
    """Buses of one deployment, each on its own connection, as separate workers would be."""

    def __init__(self, server: str, prefix: str) -> None:
        self.server, self.prefix = server, prefix

    def log(self, **options: Any) -> JetStreamEventLog:
        return JetStreamEventLog([self.server], stream=self.prefix, ack_wait=5, **options)

    def bus(self, name: str = "orders", **options: Any) -> EventBus:
        return EventBus(name, log=self.log(), **{**FAST, **options})


@pytest.fixture
def workers(nats_server: str, prefix: str) -> Workers:
    return Workers(nats_server, prefix)


class Flaky:
    """Fails its first ``failures`` attempts of each event."""

    max_batch_size = 1

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: dict[int, list[int]] = {}
        self.delivered: list[int] = []
        self.changed = anyio.Event()

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> None:
        n = json.loads(payloads[0])["detail"]["n"]
        self.attempts.setdefault(n, []).append(context.attempt)
        if len(self.attempts[n]) <= self.failures:
            raise RetryableError("not yet")
        self.delivered.append(n)
        self.changed.set()
        self.changed = anyio.Event()

    async def aclose(self) -> None:
        return None


async def until(condition: Any, what: str, timeout: float = WAIT) -> None:
    """Wait (polling gently) until ``condition()`` holds; fail naming ``what`` after ``timeout``."""
    with anyio.move_on_after(timeout):
        while not condition():
            await anyio.sleep(0.05)
        return
    raise AssertionError(f"waited {timeout:g} s for {what}")


async def test_events_reach_each_matching_target_once(workers: Workers) -> None:
    shop, audit = RecordingTarget(), RecordingTarget()
    bus = workers.bus()
    bus.put_rule("shop", {"source": ["shop"]})
    bus.put_targets("shop", [RuleTarget(id="t", target=shop)])
    bus.put_rule("all", {"detail-type": ["order"]})
    bus.put_targets("all", [RuleTarget(id="t", target=audit, input_path="$.detail")])
    async with bus:
        answer = await bus.put_events([entry(1), entry(2, "other"), entry(3)])
        assert answer["FailedEntryCount"] == 0
        await shop.wait_for(ANY, 2, WAIT)
        await audit.wait_for(ANY, 3, WAIT)
        assert await bus.wait_idle(WAIT)
    assert sorted(p["detail"]["n"] for p in shop.payloads) == [1, 3]
    assert sorted(p["n"] for p in audit.payloads) == [1, 2, 3]
    ids = {e["EventId"] for e in answer["Entries"]}
    assert {p["id"] for p in shop.payloads} <= ids


async def test_retries_are_redeliveries_counted_by_the_server(workers: Workers) -> None:
    flaky = Flaky(failures=2)
    bus = workers.bus()
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="t", target=flaky)])
    async with bus:
        await bus.put_events([entry(1)])
        with anyio.fail_after(WAIT):
            while flaky.delivered != [1]:
                await flaky.changed.wait()
    # Each attempt is a delivery of the message: JetStream's count is the attempt number.
    assert flaky.attempts == {1: [1, 2, 3]}
    assert bus.metrics()["targets"]["r/t"]["RetriedInvocations"] == 2


async def test_exhausted_retries_dead_letter_with_aws_attributes(workers: Workers) -> None:
    flaky, dead = Flaky(failures=10**6), RecordingTarget()
    bus = workers.bus()
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets(
        "r",
        [RuleTarget(id="t", target=flaky, retry_policy={"MaximumRetryAttempts": 2}, dead_letter=dead)],
    )
    async with bus:
        [answer] = (await bus.put_events([entry(7)]))["Entries"]
        [letter] = await dead.wait_for(ANY, 1, WAIT)
    assert letter["id"] == answer["EventId"]
    attributes = dead.received[0].context.attributes
    assert attributes["RETRY_ATTEMPTS"] == "2"
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert attributes["ERROR_CODE"] == "SDK_CLIENT_ERROR"
    assert attributes["RULE_ARN"].endswith(":rule/orders/r")
    assert "TARGET_ARN" in attributes and "not yet" in attributes["ERROR_MESSAGE"]
    assert flaky.attempts == {7: [1, 2, 3]}


async def test_workers_share_the_work_and_deliver_each_event_once(workers: Workers) -> None:
    target = RecordingTarget()
    buses = [workers.bus(), workers.bus(), workers.bus()]
    for bus in buses:
        bus.put_rule("r", {"source": ["shop"]})
        bus.put_targets("r", [RuleTarget(id="t", target=target)])
    async with buses[0], buses[1], buses[2]:
        for start in range(0, 300, 10):
            await buses[start % 3].put_events([entry(n) for n in range(start, start + 10)])
        await target.wait_for(ANY, 300, WAIT)
        for bus in buses:
            assert await bus.wait_idle(WAIT)
    ns = sorted(p["detail"]["n"] for p in target.payloads)
    assert ns == list(range(300))
    delivered = [bus.metrics()["targets"]["r/t"]["Invocations"] for bus in buses]
    assert sum(delivered) == 300


async def test_an_event_published_twice_with_its_id_is_stored_once(workers: Workers) -> None:
    log = workers.log()
    await log.open("orders", ManualClock())
    try:
        event = {"id": "3f5a0d6c-0000-4000-8000-000000000001", "source": "shop", "detail": {}}
        when = parse_time("2026-01-01T00:00:00Z")
        # A PutEvents whose acknowledgement was lost, published again: the same Nats-Msg-Id.
        assert await log.append([LogRecord(dict(event), when)]) == 1
        assert await log.append([LogRecord(dict(event), when)]) == 1
        assert await log.pending() == 1
        [record] = await log.consume(10)
        assert record.event["id"] == event["id"]
        await log.ack([record.offset])
        assert await log.pending() == 0
    finally:
        await log.close()


async def test_a_schedule_fires_once_per_period_across_workers(workers: Workers) -> None:
    target = RecordingTarget()
    clocks = [ManualClock() for _ in range(3)]
    buses = [EventBus("orders", log=workers.log(), clock=clock, **FAST) for clock in clocks]
    for bus in buses:
        bus.put_rule("tick", schedule_expression="rate(1 minute)")
        bus.put_targets("tick", [RuleTarget(id="t", target=target)])
    async with buses[0], buses[1], buses[2]:
        for period in range(1, 4):
            for clock in clocks:
                clock.advance(timedelta(minutes=1))
            await target.wait_for(ANY, period, WAIT)
        for bus in buses:
            assert await bus.wait_idle(WAIT)
    times = [p["time"] for p in target.payloads]
    assert times == ["2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z", "2026-01-01T00:03:00Z"]
    assert len({p["id"] for p in target.payloads}) == 3


async def test_rules_put_through_one_worker_route_in_the_others(workers: Workers) -> None:
    first, second = workers.bus(), workers.bus()
    async with first, second:
        first.put_rule("audit", {"source": ["shop"]})
        await first.flush_rules()
        await until(lambda: "audit" in second.rule_table.rules, "the rule to reach the second worker")
        assert second.describe_rule("audit").event_pattern == {"source": ["shop"]}
        second.disable_rule("audit")
        await second.flush_rules()
        await until(lambda: first.describe_rule("audit").state == "DISABLED", "the state to come back")
        first.delete_rule("audit")
        await first.flush_rules()
        await until(lambda: "audit" not in second.rule_table.rules, "the deletion to reach the second")


async def test_a_target_only_this_process_holds_is_refused_once_the_bus_is_shared(workers: Workers) -> None:
    bus = workers.bus()
    async with bus:
        bus.put_rule("r", {"source": ["shop"]})
        with pytest.raises(BusValidationError, match="lives in this process only"):
            bus.put_targets("r", [RuleTarget(id="t", target=RecordingTarget())])
