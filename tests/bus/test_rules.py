"""Rule management at run time, ARNs, limits, the decorator and target input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from eventbus.bus import EventBus, Rule, RuleTarget
from eventbus.errors import (
    BusValidationError,
    LimitExceededError,
    NonRetryableError,
    PatternError,
    RuleNotFoundError,
)

from .helpers import Collector, entry

pytestmark = pytest.mark.anyio

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "conformance" / "input-transformers.jsonl"


def test_rule_arns_have_no_bus_segment_on_the_default_bus() -> None:
    assert EventBus().put_rule("r", {"source": ["a"]}) == "arn:aws:events:us-east-1:123456789012:rule/r"
    custom = EventBus("orders", account="111111111111", region="eu-west-1")
    assert custom.put_rule("r", {"source": ["a"]}) == "arn:aws:events:eu-west-1:111111111111:rule/orders/r"


def test_put_rule_validates_like_aws() -> None:
    bus = EventBus()
    with pytest.raises(PatternError, match=r"^Event pattern is not valid\. Reason: "):
        bus.put_rule("r", {"source": "not-an-array"})
    with pytest.raises(BusValidationError, match="EventPattern or ScheduleExpression"):
        bus.put_rule("r")
    with pytest.raises(BusValidationError, match="regular expression"):
        bus.put_rule("bad name", {"source": ["a"]})
    with pytest.raises(ValueError, match="ScheduleExpression is not valid"):
        bus.put_rule("r", schedule_expression="rate(1 minutes)")
    with pytest.raises(BusValidationError, match="ENABLED, DISABLED"):
        bus.put_rule("r", {"source": ["a"]}, state="ON")  # type: ignore[arg-type]
    assert bus.list_rules() == []


def test_rule_and_target_limits_are_configurable() -> None:
    bus = EventBus(max_rules=2, max_targets_per_rule=2)
    bus.put_rule("a", {"source": ["a"]})
    bus.put_rule("b", {"source": ["b"]})
    bus.put_rule("a", {"source": ["a2"]})  # replacing is not adding
    with pytest.raises(LimitExceededError):
        bus.put_rule("c", {"source": ["c"]})
    bus.put_targets("a", [RuleTarget(id="1", target=Collector()), RuleTarget(id="2", target=Collector())])
    bus.put_targets("a", [RuleTarget(id="2", target=Collector())])
    with pytest.raises(LimitExceededError):
        bus.put_targets("a", [RuleTarget(id="3", target=Collector())])
    assert EventBus().config.max_rules == 300 and EventBus().config.max_targets_per_rule == 5


def test_management_errors() -> None:
    bus = EventBus("orders")
    with pytest.raises(RuleNotFoundError, match=r"Rule nope does not exist on EventBus orders\."):
        bus.enable_rule("nope")
    with pytest.raises(RuleNotFoundError):
        bus.put_targets("nope", [])
    bus.put_rule("r", {"source": ["a"]})
    bus.put_targets("r", [RuleTarget(id="t", target=Collector())])
    with pytest.raises(BusValidationError, match="has targets"):
        bus.delete_rule("r")
    with pytest.raises(BusValidationError, match="unique"):
        bus.put_targets("r", [RuleTarget(id="x", target=Collector()), RuleTarget(id="x", target=Collector())])
    with pytest.raises(ValueError, match="is not a Target"):
        RuleTarget(id="x", target=object())
    with pytest.raises(ValueError, match="Only one of Input, InputPath, or InputTransformer"):
        RuleTarget(id="x", target=Collector(), input="{}", input_path="$.detail")
    bus.delete_rule("r", force=True)
    bus.delete_rule("r")  # deleting what is gone is no error
    assert bus.list_rules() == []


async def test_rules_change_at_run_time() -> None:
    a, b = Collector(), Collector()
    bus = EventBus()
    async with bus:
        bus.put_rule("r", {"source": ["shop"]}, description="orders")
        bus.put_targets("r", [RuleTarget(id="a", target=a)])

        async def send(n: int) -> None:
            await bus.put_events([entry(detail={"n": n})])
            assert await bus.wait_idle(5)

        await send(1)
        bus.disable_rule("r")
        assert bus.describe_rule("r").state == "DISABLED"
        await send(2)
        bus.enable_rule("r")
        bus.put_targets("r", [RuleTarget(id="b", target=b)])
        await send(3)
        bus.remove_targets("r", ["a"])
        await send(4)
        bus.put_rule("r", {"source": ["elsewhere"]})  # the targets stay
        await send(5)
        assert [t.id for t in bus.list_targets_by_rule("r")] == ["b"]
        bus.put_rule("r", {"source": ["shop"]})
        await send(6)
        bus.delete_rule("r", force=True)
        await send(7)
    assert [p["detail"]["n"] for p in a.payloads] == [1, 3]
    assert [p["detail"]["n"] for p in b.payloads] == [3, 4, 6]
    assert a.closed and b.closed


def test_list_rules_is_sorted_and_filtered() -> None:
    bus = EventBus("orders")
    for name in ("b-2", "a-1", "b-1"):
        bus.put_rule(name, {"source": [name]}, description=f"rule {name}")
    assert [r.name for r in bus.list_rules()] == ["a-1", "b-1", "b-2"]
    assert [r.name for r in bus.list_rules("b-")] == ["b-1", "b-2"]
    rule = bus.describe_rule("a-1")
    assert isinstance(rule, Rule)
    assert rule.event_pattern == {"source": ["a-1"]} and rule.description == "rule a-1"
    assert rule.event_bus_name == "orders" and rule.enabled
    assert rule.model_dump(by_alias=True)["Arn"] == rule.arn


async def test_decorator_registers_sync_and_async_functions() -> None:
    got_sync: list[Any] = []
    got_async: list[Any] = []
    bus = EventBus()

    @bus.rule({"detail-type": ["order"]})
    def on_order(event: dict[str, Any]) -> None:
        got_sync.append(event)

    @bus.rule(
        {"source": ["shop"]},
        name="shaped",
        input_transformer={"InputPathsMap": {"n": "$.detail.n"}, "InputTemplate": '{"number": <n>}'},
    )
    async def on_shaped(payload: dict[str, Any]) -> None:
        got_async.append(payload)

    assert {r.name for r in bus.list_rules()} == {"shaped", _expected_name(on_order)}
    async with bus:
        await bus.put_events([entry(detail={"n": 5})])
        assert await bus.wait_idle(5)
    assert got_sync[0]["detail"] == {"n": 5} and got_sync[0]["source"] == "shop"
    assert got_async == [{"number": 5}]


def _expected_name(func: Any) -> str:
    return str(func.__qualname__).replace("<locals>.", "")


async def test_failed_transformation_delivers_nothing_and_is_counted() -> None:
    target = Collector()
    bus = EventBus()
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets(
        "r",
        [
            RuleTarget(
                id="t",
                target=target,
                input_transformer={"InputPathsMap": {"v": "$.detail.v"}, "InputTemplate": "{<v>: 1}"},
            )
        ],
    )
    async with bus:
        await bus.put_events([entry(detail={"v": "x"})])
        assert await bus.wait_idle(5)
    assert target.payloads == []
    assert bus.metrics()["bus"]["TransformFailures"] == 1


def _corpus_case(name: str) -> dict[str, Any]:
    if not CORPUS.exists():
        pytest.skip(f"conformance corpus not found at {CORPUS}")
    for line in CORPUS.read_text().splitlines():
        case = json.loads(line)
        if case["name"] == name:
            return case
    pytest.skip(f"corpus case {name!r} not found")


@pytest.mark.parametrize("name", ["input_path", "input_template_json/custom-variables-match-all"])
async def test_corpus_case_through_the_bus(name: str) -> None:
    case = _corpus_case(name)
    event = case["event"]
    target = Collector()
    bus = EventBus("test-bus", account=event["account"], region=event["region"])
    arn = bus.put_rule(case["rule_name"], {"source": [event["source"]]})
    assert arn == case["rule_arn"]
    spec = {k: case[k] for k in ("input_path", "input_transformer") if k in case}
    bus.put_targets(case["rule_name"], [RuleTarget(id=case["target_id"], target=target, **spec)])
    async with bus:
        entry_ = {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"]),
            "Resources": event["resources"],
            "Time": event["time"],
        }
        assert (await bus.put_events([entry_]))["FailedEntryCount"] == 0
        assert await bus.wait_idle(5)
    [raw] = target.raw
    expect = case["expect"]
    if "output_json" in expect:
        got = json.loads(raw)
        if isinstance(got, dict) and "id" in got and "id" in expect["output_json"]:
            got["id"] = expect["output_json"]["id"]
        assert got == expect["output_json"]
    else:
        assert raw == expect["output"]


async def test_targets_in_aws_casing() -> None:
    target, dlq = Collector(), Collector()
    bus = EventBus(backoff={"base": 0.001, "cap": 0.002})
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets(
        "r",
        [
            {
                "Id": "aws",
                "Target": target,
                "Arn": "arn:aws:sqs:us-east-1:123456789012:q",
                "InputPath": "$.detail",
                "RetryPolicy": {"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 60},
                "DeadLetterTarget": dlq,
            }
        ],
    )
    [spec] = bus.list_targets_by_rule("r")
    assert (
        spec.arn == "arn:aws:sqs:us-east-1:123456789012:q" and spec.retry_policy.maximum_retry_attempts == 1
    )
    async with bus:
        await bus.put_events([entry(detail={"n": 3})])
        assert await bus.wait_idle(5)
    assert target.payloads == [{"n": 3}]
    assert target.contexts[0].target_arn == "arn:aws:sqs:us-east-1:123456789012:q"
    assert target.contexts[0].arn == "arn:aws:events:us-east-1:123456789012:rule/r"


async def test_a_plain_function_as_a_rule_target_becomes_a_function_target() -> None:
    from eventbus.targets.function import FunctionTarget

    seen: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []

    def ship(event: dict[str, Any]) -> None:
        seen.append(event)
        if event["detail"].get("fail"):
            raise NonRetryableError("cannot ship")

    async def park(event: dict[str, Any]) -> None:
        failed.append(event)

    target = RuleTarget(id="ship", target=ship, dead_letter=park)
    assert isinstance(target.target, FunctionTarget) and isinstance(target.dead_letter, FunctionTarget)
    bus = EventBus("orders", delivery_batch_size=1)
    bus.put_rule("placed", {"source": ["shop"]})
    bus.put_targets("placed", [target])
    async with bus:
        await bus.put_events([entry(detail={"id": 1}), entry(detail={"id": 2, "fail": True})])
        assert await bus.wait_idle(5)
    assert sorted(e["detail"]["id"] for e in seen) == [1, 2]
    assert [e["detail"]["id"] for e in failed] == [2]


def test_a_rule_target_that_is_neither_target_nor_function_says_what_to_pass() -> None:
    with pytest.raises(ValidationError, match=r"str is not a Target .*FunctionTarget\(func\)"):
        RuleTarget(id="t", target="shop.handlers:ship")


def on_order(event: dict[str, Any]) -> None: ...


def make_handler(bus: EventBus) -> Any:
    @bus.rule({"source": ["crm"]})
    def on_customer(event: dict[str, Any]) -> None: ...

    return on_customer


def test_decorated_rules_are_named_after_the_function_qualname() -> None:
    bus = EventBus()
    bus.rule({"source": ["shop"]})(on_order)
    make_handler(bus)
    # A nested function's qualname is make_handler.<locals>.on_customer: <locals> is dropped.
    assert {r.name for r in bus.list_rules()} == {"on_order", "make_handler.on_customer"}
    assert [t.id for t in bus.list_targets_by_rule("on_order")] == ["on_order"]


def test_a_second_decorated_function_cannot_take_a_name_already_used() -> None:
    bus = EventBus("orders")
    make_handler(bus)
    with pytest.raises(BusValidationError) as caught:
        make_handler(bus)  # the same name again: say, a factory called twice
    assert str(caught.value) == (
        "@bus.rule: rule 'make_handler.on_customer' on bus orders already calls "
        f"{__name__}.make_handler.<locals>.on_customer; give {__name__}.make_handler.<locals>.on_customer "
        'a rule of its own with @bus.rule(..., name="...") (or delete_rule the first one)'
    )

    def second(event: dict[str, Any]) -> None: ...

    second.__qualname__ = "make_handler.<locals>.on_customer"  # called alike, in another module
    with pytest.raises(BusValidationError, match="already calls"):
        bus.rule({"detail-type": ["OrderShipped"]})(second)
    # Nothing of the refused ones was applied: the first pattern and target stand.
    [rule] = bus.list_rules()
    assert rule.event_pattern == {"source": ["crm"]} and len(rule.targets) == 1
    # With a name of its own it is a second rule.
    bus.rule({"detail-type": ["OrderShipped"]}, name="shipped")(second)
    assert {r.name for r in bus.list_rules()} == {rule.name, "shipped"}
    # The same name given explicitly twice is refused too.
    with pytest.raises(BusValidationError, match="'shipped' on bus orders already calls"):
        bus.rule({"source": ["x"]}, name="shipped")(on_order)


def test_put_rule_still_updates_and_delete_rule_frees_a_decorated_name() -> None:
    bus = EventBus()

    @bus.rule({"source": ["a"]}, name="r")
    def handler(event: dict[str, Any]) -> None: ...

    bus.put_rule("r", {"source": ["b"]})  # AWS's PutRule: an update, targets kept
    assert bus.describe_rule("r").event_pattern == {"source": ["b"]}
    assert len(bus.list_targets_by_rule("r")) == 1
    bus.delete_rule("r", force=True)
    bus.rule({"source": ["c"]}, name="r")(handler)
    assert bus.describe_rule("r").event_pattern == {"source": ["c"]}


async def test_the_rule_table_is_the_bus_rule_api() -> None:
    from eventbus.bus.table import RuleTable

    bus = EventBus("orders")
    table = bus.rule_table
    assert isinstance(table, RuleTable)
    target = Collector()
    table.put_rule("direct", {"source": ["shop"]})
    table.put_targets("direct", [RuleTarget(id="c", target=target)])
    assert [r.name for r in bus.list_rules()] == ["direct"] and len(table) == 1
    assert "direct" in table.matcher
    async with bus:
        await bus.put_events([entry(detail={"n": 1})])
        assert await bus.wait_idle(5)
        table.disable_rule("direct")
        assert "direct" not in table.matcher
    assert [p["detail"] for p in target.payloads] == [{"n": 1}]
    assert target.closed
