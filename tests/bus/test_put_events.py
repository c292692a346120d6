"""PutEvents semantics: request-order answers, per-entry errors, limits, throttling."""

from __future__ import annotations

import json
import uuid

import pytest

from eventbus.bus import BusConfig, EventBus, RuleTarget
from eventbus.envelope import EnvelopeDefaults, Event, PutEventsEntry, event_from_entry
from eventbus.errors import BusClosedError, BusValidationError

from .helpers import Collector, Slow, entry

pytestmark = pytest.mark.anyio


async def test_answers_in_request_order_with_per_entry_errors() -> None:
    target = Collector()
    bus = EventBus("orders")
    bus.put_rule("all", {"source": ["shop"]})
    bus.put_targets("all", [RuleTarget(id="c", target=target)])
    async with bus:
        response = await bus.put_events(
            [
                entry(detail={"n": 1}),
                {"Source": "shop", "DetailType": "order"},
                {"Source": "shop", "DetailType": "order", "Detail": "not json"},
                entry(detail={"n": 2}),
                {"Source": "shop", "DetailType": "x" * 129, "Detail": "{}"},
            ]
        )
        assert await bus.wait_idle(5)
    assert response["FailedEntryCount"] == 3
    results = response["Entries"]
    assert len(results) == 5
    assert set(results[0]) == {"EventId"} and set(results[3]) == {"EventId"}
    uuid.UUID(results[0]["EventId"], version=4)
    assert results[1] == {
        "ErrorCode": "InvalidArgument",
        "ErrorMessage": "Parameter Detail is not valid. Reason: Detail is a required argument.",
    }
    assert results[2] == {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    assert results[4]["ErrorCode"] == "InvalidArgument"
    assert [p["detail"] for p in target.payloads] == [{"n": 1}, {"n": 2}]
    assert [p["id"] for p in target.payloads] == [results[0]["EventId"], results[3]["EventId"]]
    counters = bus.metrics()["bus"]
    assert counters["PutEventsEntries"] == 5 and counters["PutEventsFailedEntries"] == 3


async def test_too_many_entries_fail_the_call() -> None:
    async with EventBus() as bus:
        with pytest.raises(BusValidationError, match="less than or equal to 10"):
            await bus.put_events([entry()] * 11)
        with pytest.raises(BusValidationError, match="greater than or equal to 1"):
            await bus.put_events([])
        with pytest.raises(BusValidationError):
            await bus.put_events(entry())  # type: ignore[arg-type]
    async with EventBus(max_entries_per_put=20) as bus:
        assert (await bus.put_events([entry()] * 20))["FailedEntryCount"] == 0


async def test_entry_size_limit_is_configurable() -> None:
    big = entry(detail={"blob": "x" * 300_000})
    async with EventBus() as bus:
        answer = (await bus.put_events([big, entry()]))["Entries"]
        assert answer[0]["ErrorCode"] == "ValidationException"
        assert "EventId" in answer[1]
    async with EventBus(max_entry_size=1024 * 1024) as bus:
        assert "EventId" in (await bus.put_events([big]))["Entries"][0]
    with pytest.raises(ValueError):
        BusConfig(max_entry_size=1024 * 1024 + 1)


async def test_envelope_models_are_accepted_and_the_event_matches_the_envelope() -> None:
    target = Collector()
    bus = EventBus("orders", account="111111111111", region="eu-west-1")
    bus.put_rule("all", {"source": [{"prefix": ""}]})
    bus.put_targets("all", [RuleTarget(id="c", target=target)])
    raw = {
        "Source": "shop",
        "DetailType": "order",
        "Detail": json.dumps({"k": [1, "é"]}),
        "Resources": ["arn:x"],
        "Time": "2025-03-04T05:06:07Z",
    }
    made = Event(detail_type="d", source="src", account="111111111111", region="eu-west-1")
    async with bus:
        response = await bus.put_events([raw, PutEventsEntry.model_validate(raw), made])
        assert await bus.wait_idle(5)
    assert response["FailedEntryCount"] == 0
    expected = event_from_entry(raw, EnvelopeDefaults(account="111111111111", region="eu-west-1")).to_dict()
    for got in target.payloads[:2]:
        assert {k: v for k, v in got.items() if k != "id"} == {k: v for k, v in expected.items() if k != "id"}
    assert target.payloads[2] == made.to_dict()
    assert response["Entries"][2] == {"EventId": made.id}


async def test_event_bus_name_must_name_this_bus() -> None:
    async with EventBus("orders") as bus:
        answer = (
            await bus.put_events(
                [
                    {**entry(), "EventBusName": "orders"},
                    {**entry(), "EventBusName": bus.arn},
                    {**entry(), "EventBusName": "other"},
                ]
            )
        )["Entries"]
    assert "EventId" in answer[0] and "EventId" in answer[1]
    assert answer[2]["ErrorCode"] == "InvalidArgument"


async def test_full_log_throttles_per_entry_when_configured() -> None:
    slow = Slow(0.05)
    bus = EventBus(log_capacity=3, when_full="throttle", drain_timeout=5)
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="s", target=slow, max_concurrency=1)])
    async with bus:
        answer = await bus.put_events([entry(detail={"n": i}) for i in range(5)])
    codes = [e.get("ErrorCode") for e in answer["Entries"]]
    assert codes == [None, None, None, "ThrottlingException", "ThrottlingException"]
    assert answer["FailedEntryCount"] == 2
    assert [p["detail"]["n"] for p in slow.payloads] == [0, 1, 2]
    assert bus.metrics()["bus"]["PutEventsThrottledEntries"] == 2


async def test_full_log_makes_put_events_wait_by_default() -> None:
    slow = Slow(0.01)
    bus = EventBus(log_capacity=2, target_queue_size=2)
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="s", target=slow, max_concurrency=1)])
    async with bus:
        for i in range(3):
            answer = await bus.put_events([entry(detail={"n": i * 3 + k}) for k in range(3)])
            assert answer["FailedEntryCount"] == 0
            # At most log_capacity events not routed plus the target's queue_size deliveries.
            assert bus.pending() <= 2 + 2
    assert sorted(p["detail"]["n"] for p in slow.payloads) == list(range(9))


async def test_put_events_outside_the_running_bus_is_refused() -> None:
    bus = EventBus()
    with pytest.raises(BusClosedError, match="not running"):
        await bus.put_events([entry()])
    async with bus:
        pass
    with pytest.raises(BusClosedError):
        await bus.put_events([entry()])
    with pytest.raises(BusClosedError, match="already started"):
        async with bus:
            pass


def test_bad_bus_names_and_configs_are_refused() -> None:
    with pytest.raises(BusValidationError):
        EventBus("no spaces")
    with pytest.raises(ValueError):
        EventBus(max_entries_per_put=0)
    with pytest.raises(ValueError):
        EventBus(when_full="drop")


async def test_event_shaped_dicts_are_accepted_beside_entries() -> None:
    # What `eventbus put` and config tests take: the event as targets receive it.
    target = Collector()
    bus = EventBus("orders", account="111122223333")
    bus.put_rule("all", {"source": ["shop"]})
    bus.put_targets("all", [RuleTarget(id="c", target=target)])
    async with bus:
        response = await bus.put_events(
            [
                {"source": "shop", "detail-type": "OrderPlaced", "detail": {"id": "o-1", "total": 250}},
                entry(detail={"id": "o-2"}),
                {
                    "version": "0",
                    "id": "not-kept",
                    "account": "999999999999",
                    "region": "eu-west-1",
                    "source": "shop",
                    "detail-type": "OrderPlaced",
                    "time": "2025-01-01T00:00:00Z",
                    "resources": ["arn:aws:shop:::o-3"],
                    "detail": {"id": "o-3"},
                },
            ]
        )
        assert await bus.wait_idle(5)
    assert response["FailedEntryCount"] == 0
    by_id = {p["detail"]["id"]: p for p in target.payloads}
    assert by_id["o-1"]["detail-type"] == "OrderPlaced" and by_id["o-1"]["detail"]["total"] == 250
    third = by_id["o-3"]
    # The bus assigns id, account and region, as PutEvents does; time and resources are the entry's.
    assert third["id"] == response["Entries"][2]["EventId"] != "not-kept"
    assert (third["account"], third["region"]) == ("111122223333", "us-east-1")
    assert third["time"] == "2025-01-01T00:00:00Z" and third["resources"] == ["arn:aws:shop:::o-3"]


async def test_an_event_shaped_dict_is_judged_like_an_entry() -> None:
    async with EventBus("orders") as bus:
        response = await bus.put_events(
            [
                {"source": "shop", "detail-type": "OrderPlaced", "detail": {}, "colour": "red"},
                {"source": "shop", "detail": {"id": 1}},
                {"source": "shop", "detail-type": "OrderPlaced", "detail": [1, 2]},
                {"source": "shop", "detail-type": "OrderPlaced", "detail": {"id": 1}},
            ]
        )
    first, second, third, fourth = response["Entries"]
    assert first == {
        "ErrorCode": "InvalidArgument",
        "ErrorMessage": "Parameter colour is not valid. Reason: colour is not a field of an event "
        "(source, detail-type, detail, resources, time) nor of a PutEvents entry.",
    }
    assert second["ErrorMessage"] == "Parameter DetailType is not valid. Reason: DetailType is a required argument."
    assert third == {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    assert set(fourth) == {"EventId"} and response["FailedEntryCount"] == 3


async def test_a_detail_nested_too_deeply_to_read_is_malformed_and_costs_only_its_entry() -> None:
    target = Collector()
    bus = EventBus("orders")
    bus.put_rule("all", {"source": ["shop"]})
    bus.put_targets("all", [RuleTarget(id="c", target=target)])
    deep = '{"a": ' * 5000 + "1" + "}" * 5000
    async with bus:
        response = await bus.put_events(
            [{"Source": "shop", "DetailType": "order", "Detail": deep}, entry(detail={"n": 1})]
        )
        assert await bus.wait_idle(5)
    assert response["FailedEntryCount"] == 1
    assert response["Entries"][0] == {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    assert [p["detail"] for p in target.payloads] == [{"n": 1}]
