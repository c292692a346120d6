"""What the HTTP API needs from the bus, in the library: PutTargets' FailedEntries, targets closed
when removed, bus registries, errors with codes, and ARNs mapped onto targets."""

from __future__ import annotations

import anyio
import pytest

from eventbus import BusClosedError, EventBus, EventBusError, LogClosedError, RuleTarget
from eventbus.targets.arns import ArnResolver, UnmappableArnError, parse_arn
from eventbus.targets.bus import BusRegistry, BusTarget, BusTargetConfig, lookup_bus
from eventbus.targets.queue import QueueTargetConfig

from .helpers import Collector, Gated, entry

pytestmark = pytest.mark.anyio


async def test_put_targets_answers_failed_entries_and_puts_the_rest() -> None:
    bus = EventBus("failed-entries")
    bus.put_rule("r", {"source": ["shop"]})
    good = Collector()
    answer = bus.put_targets(
        "r",
        [
            {"Id": "good", "Target": good},
            {"Id": "two-inputs", "Target": Collector(), "Input": "{}", "InputPath": "$.detail"},
            {"Id": "bad-placeholder", "Target": Collector(), "InputTransformer": {"InputTemplate": "<nope>"}},
        ],
    )
    assert answer["FailedEntryCount"] == 2
    assert answer["FailedEntries"] == [
        {
            "TargetId": "two-inputs",
            "ErrorCode": "ValidationException",
            "ErrorMessage": "Only one of Input, InputPath, or InputTransformer must be provided for target two-inputs.",
        },
        {
            "TargetId": "bad-placeholder",
            "ErrorCode": "ValidationException",
            "ErrorMessage": "InputTemplate for target bad-placeholder contains invalid placeholder nope.",
        },
    ]
    assert [t.id for t in bus.list_targets_by_rule("r")] == ["good"]


class Closing(Collector):
    """Counts its closes; ``closed_event`` is set by the first."""

    def __init__(self) -> None:
        super().__init__(1)
        self.closes = 0
        self.closed_event = anyio.Event()

    async def aclose(self) -> None:
        self.closes += 1
        self.closed_event.set()


class GatedClosing(Gated):
    """Holds deliveries until ``gate`` is set, and counts its closes."""

    def __init__(self) -> None:
        super().__init__(1)
        self.closes = 0
        self.closed_event = anyio.Event()

    async def aclose(self) -> None:
        self.closes += 1
        self.closed_event.set()


async def test_a_removed_target_is_closed_once_it_delivered_what_it_held() -> None:
    held = closing = GatedClosing()
    async with EventBus("closes-removed") as bus:
        bus.put_rule("r", {"source": ["shop"]})
        bus.put_targets("r", [RuleTarget(id="t", target=closing)])
        await bus.put_events([entry()])
        with anyio.fail_after(30):
            while held.waiting == 0:
                await anyio.sleep(0.001)
        bus.remove_targets("r", ["t"])
        await anyio.wait_all_tasks_blocked()
        assert closing.closes == 0  # a delivery is in flight: not closed under it
        held.gate.set()
        with anyio.fail_after(30):
            await closing.closed_event.wait()
        assert closing.closes == 1 and len(held.payloads) == 1
    assert closing.closes == 1  # not closed again when the bus stops


async def test_a_replaced_target_is_closed_and_a_shared_one_stays_open() -> None:
    replaced, shared = Closing(), Closing()
    async with EventBus("closes-replaced") as bus:
        for rule in ("a", "b"):
            bus.put_rule(rule, {"source": ["shop"]})
            bus.put_targets(rule, [RuleTarget(id="shared", target=shared)])
        bus.put_targets("a", [RuleTarget(id="t", target=replaced)])
        bus.put_targets("a", [RuleTarget(id="t", target=Closing())])
        with anyio.fail_after(30):
            await replaced.closed_event.wait()
        bus.remove_targets("a", ["shared"])
        await anyio.wait_all_tasks_blocked()
        assert shared.closes == 0  # rule b still delivers to it
    assert shared.closes == 1  # closed with the bus


async def test_removing_targets_from_a_bus_that_is_not_running_closes_them_when_it_stops() -> None:
    target = Closing()
    bus = EventBus("closes-later")
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="t", target=target)])
    bus.remove_targets("r", ["t"])
    assert target.closes == 0
    async with bus:
        pass
    assert target.closes == 1


async def test_two_registries_keep_buses_of_one_name_apart() -> None:
    first, second = BusRegistry(), BusRegistry()
    one, two = Collector(), Collector()
    async with EventBus("same", registry=first) as a, EventBus("same", registry=second) as b:
        a.put_rule("r", {"source": ["shop"]})
        a.put_targets("r", [RuleTarget(id="t", target=one)])
        b.put_rule("r", {"source": ["shop"]})
        b.put_targets("r", [RuleTarget(id="t", target=two)])
        assert first.lookup("same") is a and second.lookup("same") is b and lookup_bus("same") is None
        from eventbus.targets.base import DeliveryContext

        await BusTarget("same", registry=second).deliver(
            ['{"source": "shop", "detail-type": "t", "detail": {}}'], DeliveryContext()
        )
        assert await b.wait_idle(30)
        assert len(two.payloads) == 1 and one.payloads == []
    assert "same" not in first and first.names() == []


async def test_errors_carry_codes_and_belong_to_the_hierarchy() -> None:
    bus = EventBus("closed-codes")
    with pytest.raises(BusClosedError) as info:
        await bus.put_events([entry()])
    assert info.value.error_code == "ServiceUnavailableException"
    assert issubclass(LogClosedError, EventBusError) and issubclass(LogClosedError, RuntimeError)


def test_arns_map_onto_target_configs() -> None:
    from eventbus import FunctionTargetConfig

    resolver = ArnResolver(
        functions={"thumb": FunctionTargetConfig(function="json:dumps")},
        queues={"jobs": QueueTargetConfig(type="memory", name="jobs")},
        bus_exists=lambda name: name == "orders",
    )
    assert resolver.target("arn:aws:events:us-east-1:123456789012:event-bus/orders") == BusTargetConfig(bus="orders")
    assert resolver.target("arn:aws:lambda:us-east-1:123456789012:function:thumb:PROD").kind == "function"
    assert resolver.target("arn:aws:sqs:eu-west-1:123456789012:jobs") == QueueTargetConfig(type="memory", name="jobs")
    assert parse_arn("arn:aws:sqs:eu-west-1:123456789012:jobs").region == "eu-west-1"
    for arn, reason in [
        ("arn:aws:events:us-east-1:1:event-bus/nope", "Event bus nope does not exist."),
        ("arn:aws:lambda:us-east-1:1:function:other", "No function named other"),
        ("arn:aws:sns:us-east-1:1:topic", "eventbus cannot deliver to arn:aws:sns"),
        ("not an arn", "is not an ARN"),
        ("arn:aws:events:us-east-1:1:api-destination/x/y", "API destination x does not exist."),
    ]:
        with pytest.raises(UnmappableArnError) as info:
            resolver.target(arn)
        assert reason in str(info.value) and info.value.error_code == "ValidationException"
