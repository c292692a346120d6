"""CloudEvents 1.0 in: ``POST /cloudevents/{bus}`` in binary, structured or batched mode.

| CloudEvents | event on the bus |
| --- | --- |
| ``id`` | ``id`` (kept, not replaced) |
| ``source`` | ``source`` |
| ``type`` | ``detail-type`` |
| ``time`` | ``time`` (the moment the bus took it when absent) |
| ``data`` (a JSON object) | ``detail`` |
| ``data`` (any other JSON value, or text) | ``detail.data`` |
| a binary-mode body without ``Content-Type`` | as JSON when it reads as JSON, else as text |
| ``data_base64`` / a binary body that is not text | ``detail.data_base64`` |
| ``subject``, ``dataschema`` and every extension attribute | ``detail.cloudevents`` (an object) |

A ``datacontenttype`` that is JSON (``application/json``, ``*+json``) is implied by ``detail`` and
not kept; any other is kept under ``detail.cloudevents`` with the rest. Each event is also judged
as the PutEvents entry it amounts to (``validate_entry``: sizes, field lengths), so the bus's
limits hold here too. A request is taken whole or not at all: any malformed event is answered 400
with the reason (naming the event of a batch); accepted events are answered 202 with their ids.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from eventbus import Event, EventBus
from eventbus.envelope import parse_time, validate_entry
from eventbus.server.errors import ApiError
from eventbus.targets.cloudevents import EXTENSIONS_KEY

__all__ = ["EXTENSIONS_KEY", "event_from_cloudevent", "receive"]

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
_CONTEXT = {"id", "source", "type", "specversion", "time", "datacontenttype", "data", "data_base64"}


async def receive(bus: EventBus, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """Read one request's CloudEvents, put them on ``bus``; the answer's body (202)."""
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == BATCH:
        items = _json(body, "the batch")
        if not isinstance(items, list) or not items:
            raise ApiError("InvalidCloudEvent", "A batch must be a non-empty JSON array of CloudEvents.")
        limit = bus.config.max_entries_per_put
        if len(items) > limit:
            raise ApiError("InvalidCloudEvent", f"A batch holds at most {limit} CloudEvents (PutEvents' limit).")
        events = [_structured(item, f"event {index}", bus) for index, item in enumerate(items, 1)]
    elif media == STRUCTURED:
        events = [_structured(_json(body, "the CloudEvent"), "the CloudEvent", bus)]
    else:
        events = [_binary(headers, body, media, bus)]
    answer = await bus.put_events(events)
    failures = [
        f"event {index}: {entry['ErrorCode']}: {entry.get('ErrorMessage', '')}"
        for index, entry in enumerate(answer["Entries"], 1)
        if "ErrorCode" in entry
    ]
    if failures:
        throttled = all("ThrottlingException" in f for f in failures)
        raise ApiError("ThrottlingException" if throttled else "InvalidCloudEvent", "; ".join(failures), 429 if throttled else 400)
    return {"EventIds": [entry["EventId"] for entry in answer["Entries"]]}


def _json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError("InvalidCloudEvent", f"{what} is not valid JSON.") from None


def _structured(value: Any, what: str, bus: EventBus) -> Event:
    if not isinstance(value, dict):
        raise ApiError("InvalidCloudEvent", f"{what} must be a JSON object.")
    attributes = {k: v for k, v in value.items() if k not in ("data", "data_base64")}
    if "data" in value and "data_base64" in value:
        raise ApiError("InvalidCloudEvent", f"{what} has both data and data_base64; a CloudEvent has one.")
    if "data_base64" in value:
        encoded = value["data_base64"]
        try:
            if not isinstance(encoded, str):
                raise ValueError
            base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise ApiError("InvalidCloudEvent", f"{what}: data_base64 is not base64.") from None
        data: Any = {"data_base64": encoded}
    else:
        data = value.get("data")
        data = data if isinstance(data, dict) else ({} if "data" not in value else {"data": data})
    return event_from_cloudevent(attributes, data, what, bus)


def _binary(headers: Mapping[str, str], body: bytes, media: str, bus: EventBus) -> Event:
    attributes: dict[str, Any] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith("ce-"):
            # The HTTP binding percent-encodes header values.
            attributes[lower[3:]] = unquote(value)
    if not attributes:
        raise ApiError(
            "InvalidCloudEvent",
            f"Content-Type {media or '(none)'} with no ce- headers is not a CloudEvent: send binary mode "
            f"(ce-specversion, ce-id, ce-source, ce-type headers), {STRUCTURED} or {BATCH}.",
        )
    if media:
        attributes["datacontenttype"] = headers.get("content-type", media)
    data: dict[str, Any]
    if not body:
        data = {}
    elif _is_json(media):
        parsed = _json(body, "the data")
        data = parsed if isinstance(parsed, dict) else {"data": parsed}
    elif not media and _json_or_none(body) is not None:
        # No Content-Type (some SDKs send none for JSON data): JSON if it reads as JSON.
        parsed = _json_or_none(body)
        data = parsed if isinstance(parsed, dict) else {"data": parsed}
    else:
        try:
            data = {"data": body.decode("utf-8")}
        except UnicodeDecodeError:
            data = {"data_base64": base64.b64encode(body).decode("ascii")}
    return event_from_cloudevent(attributes, data, "the CloudEvent", bus)


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json") or media == "text/json"


def event_from_cloudevent(attributes: Mapping[str, Any], detail: dict[str, Any], what: str, bus: EventBus) -> Event:
    """The event a CloudEvent's context attributes and data make (see the table above)."""
    if attributes.get("specversion") != "1.0":
        raise ApiError("InvalidCloudEvent", f"{what}: specversion must be 1.0, not {attributes.get('specversion')!r}.")
    for name in ("id", "source", "type"):
        value = attributes.get(name)
        if not isinstance(value, str) or not value:
            raise ApiError("InvalidCloudEvent", f"{what}: the required attribute {name} is missing or empty.")
    extra = {
        k: v
        for k, v in attributes.items()
        if k not in _CONTEXT or (k == "datacontenttype" and not _is_json(str(v).split(";", 1)[0].strip().lower()))
    }
    if extra:
        if EXTENSIONS_KEY in detail:
            raise ApiError("InvalidCloudEvent", f"{what}: its data has a {EXTENSIONS_KEY!r} key, where its extension attributes go.")
        detail = {**detail, EXTENSIONS_KEY: extra}
    entry: dict[str, Any] = {
        "Source": attributes["source"],
        "DetailType": attributes["type"],
        "Detail": json.dumps(detail, separators=(",", ":"), ensure_ascii=False),
    }
    if attributes.get("time") is not None:
        try:
            parse_time(attributes["time"])
        except ValueError:
            raise ApiError("InvalidCloudEvent", f"{what}: time is not an RFC 3339 timestamp.") from None
        entry["Time"] = attributes["time"]
    problem = validate_entry(entry, max_entry_size=bus.config.max_entry_size)
    if problem is not None:
        raise ApiError("InvalidCloudEvent", f"{what}: {problem.error_code}: {problem.error_message}")
    try:
        fields: dict[str, Any] = {
            "id": attributes["id"],
            "detail-type": attributes["type"],
            "source": attributes["source"],
            "account": bus.config.account,
            "region": bus.config.region,
            "detail": detail,
        }
        if "Time" in entry:
            fields["time"] = entry["Time"]
        return Event.model_validate(fields)
    except ValueError as exc:
        raise ApiError("InvalidCloudEvent", f"{what}: {str(exc).splitlines()[0]}") from None
