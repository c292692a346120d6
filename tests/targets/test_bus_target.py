from __future__ import annotations

import json
from typing import Any

import pytest

from eventbus.errors import ConfigError, NonRetryableError, ResourceNotFoundError, RetryableError
from eventbus.targets.base import DeliveryContext
from eventbus.targets.bus import (
    BusTarget,
    PutEventsSink,
    event_to_entry,
    lookup_bus,
    register_bus,
    unregister_bus,
)
from eventbus.targets.registry import build_target

pytestmark = pytest.mark.anyio

CTX = DeliveryContext(kind="rule", name="forward")
EVENT = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "Order Placed",
    "source": "shop",
    "account": "123456789012",
    "time": "2026-11-28T10:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:shop:order/1"],
    "detail": {"order": 1, "text": "é"},
}


class Sink:
    """A minimal bus: records entries and answers with scripted error codes."""

    def __init__(self, name: str, codes: list[str | None] | None = None) -> None:
        self.name = name
        self.codes = codes or []
        self.entries: list[dict[str, Any]] = []

    async def put_events(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries.extend(entries)
        out = []
        for i, _ in enumerate(entries):
            code = self.codes[i] if i < len(self.codes) else None
            out.append({"ErrorCode": code, "ErrorMessage": f"{code} happened"} if code else {"EventId": f"id-{i}"})
        return {"FailedEntryCount": sum(1 for e in out if "ErrorCode" in e), "Entries": out}


def test_sink_satisfies_the_protocol() -> None:
    assert isinstance(Sink("x"), PutEventsSink)


def test_full_event_becomes_a_put_events_entry() -> None:
    entry = event_to_entry(json.dumps(EVENT))
    assert entry == {
        "Source": "shop",
        "DetailType": "Order Placed",
        "Detail": '{"order":1,"text":"é"}',
        "Resources": ["arn:aws:shop:order/1"],
        "Time": "2026-11-28T10:00:00Z",
    }


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('{"order": 1}', "has no source, detail-type, detail"),
        ('{"source": "a", "detail": {}}', "has no detail-type"),
        ("[1, 2]", "is a JSON list"),
        ("not json", "not JSON"),
    ],
)
def test_anything_but_an_event_is_non_retryable(payload: str, message: str) -> None:
    with pytest.raises(NonRetryableError, match=message):
        event_to_entry(payload)


async def test_delivers_by_object_and_by_name() -> None:
    sink = Sink("orders")
    response = await BusTarget(sink).deliver([json.dumps(EVENT)], CTX)
    assert response["FailedEntryCount"] == 0
    assert sink.entries[0]["EventBusName"] == "orders"

    register_bus(sink)
    try:
        assert lookup_bus("orders") is sink
        with pytest.raises(ConfigError, match="already registered"):
            register_bus(Sink("orders"))
        target = build_target("bus", {"bus": "orders"})
        await target.deliver([json.dumps(EVENT), json.dumps(EVENT)], CTX)
        assert len(sink.entries) == 3
    finally:
        unregister_bus(sink)
    assert lookup_bus("orders") is None
    with pytest.raises(ResourceNotFoundError, match="Event bus orders does not exist"):
        await target.deliver([json.dumps(EVENT)], CTX)


@pytest.mark.parametrize(
    ("codes", "error", "code"),
    [
        (["ThrottlingException"], RetryableError, "THROTTLING"),
        ([None, "InternalFailure"], RetryableError, "SDK_CLIENT_ERROR"),
        (["MalformedDetail"], NonRetryableError, "SDK_CLIENT_ERROR"),
        (["InvalidArgument", None], NonRetryableError, "SDK_CLIENT_ERROR"),
    ],
)
async def test_failed_entries_are_classified(codes: list[str | None], error: type[Exception], code: str) -> None:
    target = BusTarget(Sink("b", codes))
    with pytest.raises(error) as info:
        await target.deliver([json.dumps(EVENT)] * 2, CTX)
    assert type(info.value) is error
    assert info.value.error_code == code  # type: ignore[attr-defined]
    failing = next(c for c in codes if c)
    assert f"failed on bus b: {failing}: {failing} happened" in str(info.value)
