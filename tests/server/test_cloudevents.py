"""CloudEvents 1.0 in (binary, structured, batched; through the cloudevents SDK) and out (the
``cloudevents`` target kind, read back with the SDK)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from .conftest import write
from .helpers import LiveServer, Receiver


@pytest.fixture(scope="module")
def ce_receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture(scope="module")
def ce_server(tmp_path_factory: pytest.TempPathFactory, ce_receiver: Receiver) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("ce")
    config = f"""
buses:
  ce:
    rules:
      binary:
        pattern: {{source: [/sensors]}}
        targets:
          - cloudevents: {{endpoint: "{ce_receiver.url}/binary", mode: binary}}
      structured:
        pattern: {{source: [/sensors]}}
        targets:
          - cloudevents: {{endpoint: "{ce_receiver.url}/structured", mode: structured}}
      transformed:
        pattern: {{source: [/sensors], detail-type: [reading]}}
        targets:
          - cloudevents: {{endpoint: "{ce_receiver.url}/transformed", type: sensor.value}}
            input_transformer:
              input_paths_map: {{value: $.detail.value}}
              input_template: '{{"value": <value>}}'
"""
    server = LiveServer([write(folder, "ce.yaml", config)], cwd=folder)
    yield server
    assert server.stop() == 0, "\n".join(server.lines)


def _event(**attributes: Any) -> CloudEvent:
    data = attributes.pop("data", {"value": 21.5})
    return CloudEvent(attributes={"type": "reading", "source": "/sensors", **attributes}, data=data)


def _post(server: LiveServer, message: HTTPMessage) -> httpx.Response:
    return httpx.post(f"{server.url}/cloudevents/ce", headers=message.headers, content=message.body, timeout=30)


def _arrivals(receiver: Receiver, path: str, count: int) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for _ in range(60):
        seen = [r for r in receiver.requests if r["path"] == path]
        if len(seen) >= count:
            return seen
        receiver.wait_for(len(receiver.requests) + 1, timeout=30)
    raise AssertionError(f"{len(seen)} of {count} requests to {path}")


def test_binary_and_structured_cloudevents_become_events_and_go_out_as_cloudevents(
    ce_server: LiveServer, ce_receiver: Receiver
) -> None:
    binary = _event(id="ce-1", subject="room 1", time=datetime(2025, 6, 1, 12, tzinfo=UTC), sensorgroup="east")
    answer = _post(ce_server, to_binary(binary, JSONFormat()))
    assert answer.status_code == 202 and answer.json() == {"EventIds": ["ce-1"]}
    structured = _event(id="ce-2", data={"value": 3})
    answer = _post(ce_server, to_structured(structured, JSONFormat()))
    assert answer.status_code == 202 and answer.json() == {"EventIds": ["ce-2"]}

    # Out again, binary mode, read back with the SDK: the same id, source, type, data, extensions.
    received = {}
    for request in _arrivals(ce_receiver, "/binary", 2):
        event = from_http(HTTPMessage(headers=request["headers"], body=request["body"]), JSONFormat())
        received[event.get_id()] = event
    first = received["ce-1"]
    assert (first.get_source(), first.get_type(), first.get_data()) == ("/sensors", "reading", {"value": 21.5})
    assert first.get_subject() == "room 1" and first.get_extension("sensorgroup") == "east"
    assert first.get_time() is not None and first.get_time().isoformat().startswith("2025-06-01T12:00:00")
    structured_out = {}
    for request in _arrivals(ce_receiver, "/structured", 2):
        assert request["headers"]["Content-Type"].startswith("application/cloudevents+json")
        event = from_http(HTTPMessage(headers=request["headers"], body=request["body"]), JSONFormat())
        structured_out[event.get_id()] = event.get_data()
    assert structured_out == {"ce-1": {"value": 21.5}, "ce-2": {"value": 3}}
    transformed = {}
    for request in _arrivals(ce_receiver, "/transformed", 2):
        event = from_http(HTTPMessage(headers=request["headers"], body=request["body"]), JSONFormat())
        assert event.get_type() == "sensor.value"
        assert event.get_source() == "arn:aws:events:us-east-1:123456789012:rule/ce/transformed"
        transformed[event.get_id()] = event.get_data()
    assert transformed == {"ce-1": {"value": 21.5}, "ce-2": {"value": 3}}


def test_a_batch_is_taken_whole(ce_server: LiveServer) -> None:
    fmt = JSONFormat()
    batch = b"[" + b",".join(fmt.write(_event(id=f"b-{i}", data={"value": i})) for i in range(3)) + b"]"
    answer = httpx.post(
        f"{ce_server.url}/cloudevents/ce",
        content=batch,
        headers={"Content-Type": "application/cloudevents-batch+json"},
        timeout=30,
    )
    assert answer.status_code == 202 and answer.json() == {"EventIds": ["b-0", "b-1", "b-2"]}


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({"Content-Type": "application/cloudevents+json"}, b"{not json", "the CloudEvent is not valid JSON"),
        ({"Content-Type": "application/cloudevents+json"}, json.dumps({"specversion": "1.0", "id": "x", "source": "/s"}).encode(), "the required attribute type is missing"),
        ({"Content-Type": "application/cloudevents+json"}, json.dumps({"specversion": "0.3", "id": "x", "source": "/s", "type": "t"}).encode(), "specversion must be 1.0"),
        ({"Content-Type": "application/cloudevents-batch+json"}, b"[]", "non-empty JSON array"),
        ({"Content-Type": "application/cloudevents-batch+json"}, b'[{"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}, 5]', "event 2 must be a JSON object"),
        ({"Content-Type": "application/json"}, b"{}", "is not a CloudEvent"),
        ({"Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}, b"{bad", "the data is not valid JSON"),
        ({"Content-Type": "application/cloudevents+json"}, json.dumps({"specversion": "1.0", "id": "x", "source": "/s", "type": "t", "time": "yesterday"}).encode(), "time is not an RFC 3339 timestamp"),
    ],
)
def test_malformed_cloudevents_are_refused_with_400_and_a_reason(
    ce_server: LiveServer, headers: dict[str, str], body: bytes, reason: str
) -> None:
    answer = httpx.post(f"{ce_server.url}/cloudevents/ce", content=body, headers=headers, timeout=30)
    assert answer.status_code == 400
    assert answer.json()["__type"] == "InvalidCloudEvent"
    assert reason in answer.json()["message"]


def test_an_unknown_bus_is_404_like(ce_server: LiveServer) -> None:
    message = to_structured(_event(id="z"), JSONFormat())
    answer = httpx.post(f"{ce_server.url}/cloudevents/nope", headers=message.headers, content=message.body)
    assert answer.status_code == 400 and answer.json()["__type"] == "ResourceNotFoundException"


def test_a_too_large_cloudevent_is_refused_as_the_bus_would(ce_server: LiveServer) -> None:
    message = to_structured(_event(id="big", data={"blob": "x" * 300_000}), JSONFormat())
    answer = httpx.post(f"{ce_server.url}/cloudevents/ce", headers=message.headers, content=message.body)
    assert answer.status_code == 400 and "ValidationException" in answer.json()["message"]
