"""Retries, backoff, dead letters and the per-target bounds."""

from __future__ import annotations

import json
from datetime import timedelta

import anyio
import pytest
from pydantic import ValidationError

from eventbus.bus import Backoff, EventBus, ManualClock, RetryPolicy, RuleTarget
from eventbus.errors import ResourceNotFoundError, TargetPermissionError, ThrottledError

from .helpers import FAST, AlwaysFails, Collector, Flaky, Gated, Slow, entry

pytestmark = pytest.mark.anyio


def one_rule_bus(
    target: object, *, dead_letter: object = None, policy: RetryPolicy | None = None, **kw: object
) -> EventBus:
    bus = EventBus("orders", **{**FAST, **kw})
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets(
        "r",
        [RuleTarget(id="t", target=target, dead_letter=dead_letter, retry_policy=policy or RetryPolicy())],
    )
    return bus


async def test_target_failing_its_first_calls_is_retried_until_it_takes_the_event() -> None:
    flaky = Flaky(3)
    dlq = Collector()
    bus = one_rule_bus(flaky, dead_letter=dlq)
    async with bus:
        [answer] = (await bus.put_events([entry(detail={"n": 1})]))["Entries"]
        assert await bus.wait_idle(5)
    assert flaky.attempts == [1, 2, 3, 4]
    assert [p["id"] for p in flaky.payloads] == [answer["EventId"]]
    assert dlq.payloads == []
    counters = bus.metrics()["targets"]["r/t"]
    assert counters["Invocations"] == 4 and counters["RetriedInvocations"] == 3
    assert counters["FailedInvocations"] == 0


async def test_always_failing_target_ends_in_the_dead_letter_target_with_every_attribute() -> None:
    dlq = Collector()
    bus = one_rule_bus(
        AlwaysFails(ThrottledError("slow down")), dead_letter=dlq, policy=RetryPolicy(MaximumRetryAttempts=2)
    )
    async with bus:
        [answer] = (await bus.put_events([entry(detail={"n": 7})]))["Entries"]
        assert await bus.wait_idle(5)
    [payload] = dlq.payloads
    assert payload["id"] == answer["EventId"] and payload["detail"] == {"n": 7}
    [context] = dlq.contexts
    assert context.kind == "dead-letter"
    assert context.event_ids == (answer["EventId"],)
    assert dict(context.attributes) == {
        "ERROR_CODE": "THROTTLING",
        "ERROR_MESSAGE": "slow down",
        "RULE_ARN": "arn:aws:events:us-east-1:123456789012:rule/orders/r",
        "TARGET_ARN": context.target_arn,
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
        "RETRY_ATTEMPTS": "2",
    }
    assert context.target_arn
    rule = bus.metrics()["rules"]["r"]
    assert rule["Invocations"] == 3 and rule["FailedInvocations"] == 1 and rule["InvocationsSentToDLQ"] == 1


async def test_dead_letter_payload_is_the_event_not_the_transformed_input() -> None:
    dlq = Collector()
    bus = EventBus(**FAST)
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets(
        "r",
        [
            RuleTarget(
                id="t",
                target=AlwaysFails(ResourceNotFoundError("gone")),
                input_path="$.detail",
                dead_letter=dlq,
            )
        ],
    )
    async with bus:
        await bus.put_events([entry(detail={"n": 1})])
        assert await bus.wait_idle(5)
    assert dlq.payloads[0]["source"] == "shop"


@pytest.mark.parametrize(
    ("error", "code"),
    [(ResourceNotFoundError("gone"), "NO_RESOURCE"), (TargetPermissionError("no"), "NO_PERMISSIONS")],
)
async def test_non_retryable_errors_skip_the_retries(error: Exception, code: str) -> None:
    target = AlwaysFails(error)
    dlq = Collector()
    bus = one_rule_bus(target, dead_letter=dlq)
    async with bus:
        await bus.put_events([entry()])
        assert await bus.wait_idle(5)
    assert target.calls == 1
    attributes = dlq.contexts[0].attributes
    assert attributes["ERROR_CODE"] == code and attributes["RETRY_ATTEMPTS"] == "0"
    assert "EXHAUSTED_RETRY_CONDITION" not in attributes


async def test_event_age_ends_the_retries() -> None:
    clock = ManualClock()
    target = AlwaysFails()
    dlq = Collector()
    bus = one_rule_bus(
        target,
        dead_letter=dlq,
        policy=RetryPolicy(MaximumEventAgeInSeconds=60),
        clock=clock,
        backoff={"base": 0.01, "cap": 0.01},
    )
    async with bus:
        await bus.put_events([entry()])
        # Retries wait on the bus's clock: each comes once the clock passes its backoff.
        for calls in (1, 2, 3):
            await anyio.wait_all_tasks_blocked()
            assert target.calls == calls and dlq.payloads == []
            clock.advance(timedelta(seconds=0.01))
        await anyio.wait_all_tasks_blocked()
        assert target.calls == 4
        clock.advance(timedelta(seconds=61))
        assert await bus.wait_idle(5)
    assert target.calls == 5
    attributes = dlq.contexts[0].attributes
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumEventAgeInSeconds"
    assert attributes["ERROR_CODE"] == "SDK_CLIENT_ERROR"
    assert attributes["RETRY_ATTEMPTS"] == "4"


async def test_retry_after_is_honoured() -> None:
    target = Flaky(1, ThrottledError("later", retry_after=0.2))
    bus = one_rule_bus(target)
    async with bus:
        started = anyio.current_time()
        await bus.put_events([entry()])
        assert await bus.wait_idle(5)
        elapsed = anyio.current_time() - started
    assert target.attempts == [1, 2]
    assert elapsed >= 0.2


async def test_no_dead_letter_target_means_logged_and_counted() -> None:
    bus = one_rule_bus(AlwaysFails(), policy=RetryPolicy(MaximumRetryAttempts=0))
    async with bus:
        await bus.put_events([entry(), entry()])
        assert await bus.wait_idle(5)
    metrics = bus.metrics()
    assert metrics["bus"]["DroppedInvocations"] == 2
    assert metrics["targets"]["r/t"]["DroppedInvocations"] == 2
    assert metrics["rules"]["r"]["FailedInvocations"] == 2


async def test_failing_dead_letter_target_is_counted() -> None:
    bus = one_rule_bus(
        AlwaysFails(TargetPermissionError("no")),
        dead_letter=AlwaysFails(),
        policy=RetryPolicy(MaximumRetryAttempts=0),
    )
    async with bus:
        await bus.put_events([entry()])
        assert await bus.wait_idle(5)
    assert bus.metrics()["rules"]["r"]["InvocationsFailedToBeSentToDLQ"] == 1


async def test_full_target_queue_throttles_the_rule_without_losing_events() -> None:
    slow = Slow(0.002)
    bus = EventBus(target_queue_size=2)
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="s", target=slow, max_concurrency=1)])
    async with bus:
        for i in range(4):
            await bus.put_events([entry(detail={"n": i * 5 + k}) for k in range(5)])
        assert await bus.wait_idle(5)
    assert sorted(p["detail"]["n"] for p in slow.payloads) == list(range(20))
    assert bus.metrics()["rules"]["r"]["ThrottledRules"] > 0


async def test_retries_waiting_on_backoff_count_against_the_bound() -> None:
    clock = ManualClock()
    target = Flaky(1, max_batch_size=1)
    bus = EventBus(
        target_queue_size=1,
        log_capacity=1,
        when_full="throttle",
        clock=clock,
        backoff={"base": 60, "cap": 60},
        random=lambda: 1.0,
    )
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="t", target=target)])
    async with bus:
        first = await bus.put_events([entry(detail={"n": 1})])
        await anyio.wait_all_tasks_blocked()
        # Routed, failed once, waiting a minute on the bus's clock: it holds the target's one slot.
        assert first["FailedEntryCount"] == 0
        assert target.calls == 1 and bus.pending() == 1
        second = await bus.put_events([entry(detail={"n": 2})])
        await anyio.wait_all_tasks_blocked()
        # Accepted into the log, but the router waits for the slot the retry holds...
        assert second["FailedEntryCount"] == 0
        assert target.calls == 1
        assert bus.metrics()["rules"]["r"]["ThrottledRules"] == 1
        # ... so the event stays in the log, which is now full: the next one is throttled.
        third = await bus.put_events([entry(detail={"n": 3})])
        assert third["Entries"][0]["ErrorCode"] == "ThrottlingException"
        assert bus.pending() == 2
        clock.advance(timedelta(seconds=60))
        assert await bus.wait_idle(5)
    assert target.attempts == [1, 2, 1] and [p["detail"]["n"] for p in target.payloads] == [1, 2]


async def test_batches_never_exceed_the_target_maximum() -> None:
    target = Collector(max_batch_size=3)
    sizes: list[int] = []
    original = target.deliver

    async def deliver(payloads, context):  # type: ignore[no-untyped-def]
        sizes.append(len(payloads))
        await original(payloads, context)

    target.deliver = deliver  # type: ignore[method-assign]
    bus = one_rule_bus(target)
    async with bus:
        await bus.put_events([entry(detail={"n": i}) for i in range(10)])
        assert await bus.wait_idle(5)
    assert max(sizes) <= 3 and sum(sizes) == 10


def test_retry_policy_uses_aws_names_and_limits() -> None:
    policy = RetryPolicy.model_validate({"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60})
    assert (policy.maximum_retry_attempts, policy.maximum_event_age_in_seconds) == (0, 60)
    assert RetryPolicy() == RetryPolicy(maximum_retry_attempts=185, maximum_event_age_in_seconds=86_400)
    assert json.loads(policy.model_dump_json(by_alias=True)) == {
        "MaximumRetryAttempts": 0,
        "MaximumEventAgeInSeconds": 60,
    }
    for bad in (
        {"MaximumRetryAttempts": 186},
        {"MaximumRetryAttempts": -1},
        {"MaximumEventAgeInSeconds": 59},
        {"MaximumEventAgeInSeconds": 86_401},
    ):
        with pytest.raises(ValidationError):
            RetryPolicy.model_validate(bad)


def test_backoff_is_exponential_with_full_jitter() -> None:
    backoff = Backoff(base=1.0, cap=10.0)
    assert [backoff.delay(n, lambda: 1.0) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert backoff.delay(3, lambda: 0.5) == 2.0
    assert backoff.delay(3, lambda: 0.0) == 0.0
    assert backoff.delay(10_000, lambda: 1.0) == 10.0
    with pytest.raises(ValidationError):
        Backoff(base=2, cap=1)


@pytest.mark.parametrize("limit", [1, 3])
async def test_per_target_concurrency_limit(limit: int) -> None:
    target = Gated()
    bus = EventBus()
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="c", target=target, max_concurrency=limit)])
    async with bus:
        await bus.put_events([entry(detail={"n": i}) for i in range(10)])
        await anyio.wait_all_tasks_blocked()
        assert target.waiting == limit  # the others wait for one of these to end
        target.gate.set()
        assert await bus.wait_idle(5)
    assert len(target.payloads) == 10


async def test_event_lifecycle_is_logged_when_traced() -> None:
    from eventbus.testing import capture_logs

    dlq = Collector()
    bus = EventBus(trace_events=True, **FAST)
    bus.put_rule("ok", {"source": ["shop"]})
    bus.put_targets("ok", [RuleTarget(id="c", target=Flaky(1))])
    bus.put_rule("bad", {"source": ["shop"]})
    bus.put_targets(
        "bad",
        [
            RuleTarget(
                id="d",
                target=AlwaysFails(),
                dead_letter=dlq,
                retry_policy=RetryPolicy(MaximumRetryAttempts=1),
            )
        ],
    )
    with capture_logs() as logs:
        async with bus:
            [answer] = (await bus.put_events([entry()]))["Entries"]
            assert await bus.wait_idle(5)
    by_event = {
        (e["event"], e.get("rule"), e.get("target")) for e in logs if e.get("event_id") == answer["EventId"]
    }
    assert ("accepted", None, None) in by_event
    assert {("matched", "ok", None), ("matched", "bad", None)} <= by_event
    assert {
        ("retried", "ok", "c"),
        ("delivered", "ok", "c"),
        ("retried", "bad", "d"),
        ("dead-lettered", "bad", "d"),
    } <= by_event
    delivered = next(e for e in logs if e["event"] == "delivered")
    assert delivered["attempt"] == 2


async def test_a_replaced_target_hands_its_waiting_retries_to_its_successor() -> None:
    clock = ManualClock()
    first, successor = AlwaysFails(), Collector()
    bus = one_rule_bus(first, clock=clock, backoff={"base": 1, "cap": 1}, random=lambda: 0.5)
    async with bus:
        [answer] = (await bus.put_events([entry()]))["Entries"]
        await anyio.wait_all_tasks_blocked()
        assert first.calls == 1 and bus.pending() == 1  # waiting half a second, on the bus's clock
        bus.put_targets("r", [RuleTarget(id="t", target=successor)])
        clock.advance(timedelta(seconds=0.5))
        assert await bus.wait_idle(5)
    assert first.calls == 1
    assert [p["id"] for p in successor.payloads] == [answer["EventId"]]
    assert successor.contexts[0].attempt == 2


async def test_a_removed_target_still_delivers_its_retries_then_stops() -> None:
    clock = ManualClock()
    target = Flaky(1)
    bus = one_rule_bus(target, clock=clock, backoff={"base": 1, "cap": 1}, random=lambda: 1.0)
    async with bus:
        await bus.put_events([entry(detail={"n": 1})])
        await anyio.wait_all_tasks_blocked()
        bus.remove_targets("r", ["t"])
        await bus.put_events([entry(detail={"n": 2})])  # no target any more: nothing to deliver
        await anyio.wait_all_tasks_blocked()
        assert target.calls == 1 and bus.pending() == 1
        clock.advance(timedelta(seconds=1))
        assert await bus.wait_idle(5)
        assert target.attempts == [1, 2] and [p["detail"] for p in target.payloads] == [{"n": 1}]
        # Put back under the same id, the route is the new target's alone.
        again = Collector()
        bus.put_targets("r", [RuleTarget(id="t", target=again)])
        await bus.put_events([entry(detail={"n": 3})])
        assert await bus.wait_idle(5)
    assert [p["detail"] for p in again.payloads] == [{"n": 3}] and target.calls == 2


async def test_a_target_replaced_mid_delivery_finishes_it_and_its_successor_takes_the_rest() -> None:
    first, successor = Gated(), Collector()
    bus = EventBus(**FAST)
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="t", target=first, max_concurrency=1)])
    async with bus:
        await bus.put_events([entry(detail={"n": 1}), entry(detail={"n": 2})])
        await anyio.wait_all_tasks_blocked()
        assert first.waiting == 1  # n 1 in flight; n 2 queued behind it
        bus.put_targets("r", [RuleTarget(id="t", target=successor)])
        await anyio.wait_all_tasks_blocked()
        first.gate.set()
        await bus.put_events([entry(detail={"n": 3})])
        assert await bus.wait_idle(5)
    assert [p["detail"]["n"] for p in first.payloads] == [1]
    assert sorted(p["detail"]["n"] for p in successor.payloads) == [2, 3]
