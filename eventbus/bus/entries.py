"""From PutEvents entries to events, on the per-event hot path.

``validate_entry`` (envelope.py) is the authority on what PutEvents accepts and what it answers.
``fast_event`` handles the common case, a plain dict of well-typed ASCII fields without ``Time``
or ``TraceHeader``, in one pass that parses ``Detail`` once; whatever it is unsure about it hands
back (``None``) for ``validate_entry`` to judge, so every error answer stays the envelope's.
A property test holds the two to agreeing.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from typing import Any

from eventbus import json_strict
from eventbus.envelope import MAX_DETAIL_TYPE_LENGTH, format_time

__all__ = [
    "EVENT_FIELDS",
    "entry_from_event_shape",
    "event_from_valid_entry",
    "fast_event",
    "is_event_shaped",
    "new_event_id",
    "new_event_ids",
]

_FIELDS = frozenset(("Source", "DetailType", "Detail", "Resources", "EventBusName"))


#: The fields of a PutEvents entry: a dict holding any of them is an entry.
_ENTRY_FIELDS = frozenset(("Source", "DetailType", "Detail", "Resources", "Time", "EventBusName", "TraceHeader"))

#: An event's fields, as targets receive it, and the entry field each one is put as.
EVENT_FIELDS = {
    "source": "Source",
    "detail-type": "DetailType",
    "detail": "Detail",
    "resources": "Resources",
    "time": "Time",
}
#: Event fields the bus assigns itself: accepted in an event-shaped dict, and left out.
_ASSIGNED = frozenset(("version", "id", "account", "region"))


def is_event_shaped(value: object) -> bool:
    """Whether ``value`` is an event as targets receive it (``source``, ``detail-type``,
    ``detail``...) rather than a PutEvents entry (``Source``, ``DetailType``, ``Detail``...)."""
    return (
        isinstance(value, Mapping)
        and not _ENTRY_FIELDS.intersection(value)
        and any(key in value for key in ("source", "detail-type", "detail"))
    )


def entry_from_event_shape(event: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The PutEvents entry an event-shaped dict stands for, and its keys that are no event field.

    ``detail`` becomes ``Detail`` as compact JSON text; ``version``, ``id``, ``account`` and
    ``region`` are dropped, as PutEvents assigns them.
    """
    entry = {EVENT_FIELDS[key]: value for key, value in event.items() if key in EVENT_FIELDS}
    detail = entry.get("Detail")
    if detail is not None and not isinstance(detail, str):
        # What cannot be written as JSON is left as it is, for validate_entry to answer.
        with contextlib.suppress(TypeError, ValueError):
            entry["Detail"] = json.dumps(detail, separators=(",", ":"), ensure_ascii=False)
    unknown = sorted(str(key) for key in event if key not in EVENT_FIELDS and key not in _ASSIGNED)
    return entry, unknown


def new_event_id() -> str:
    """A random (version 4) UUID as text; ``uuid.uuid4()`` gives the same, built more slowly."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_event_ids(n: int) -> list[str]:
    """``n`` event ids from one read of the random source (one system call, not ``n``)."""
    raw = bytearray(os.urandom(16 * n))
    ids = []
    for at in range(0, 16 * n, 16):
        raw[at + 6] = (raw[at + 6] & 0x0F) | 0x40
        raw[at + 8] = (raw[at + 8] & 0x3F) | 0x80
        h = raw[at : at + 16].hex()
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids


def fast_event(
    entry: object,
    *,
    account: str,
    region: str,
    now_text: str,
    max_entry_size: int,
    event_id: str | None = None,
) -> dict[str, Any] | None:
    """The event for a plainly valid entry, or ``None`` when ``validate_entry`` must decide."""
    if type(entry) is not dict or not _FIELDS.issuperset(entry):
        return None
    source = entry.get("Source")
    detail_type = entry.get("DetailType")
    detail = entry.get("Detail")
    if (
        type(source) is not str
        or type(detail_type) is not str
        or type(detail) is not str
        or not source
        or not detail_type
        or len(detail_type) > MAX_DETAIL_TYPE_LENGTH
        or not (source.isascii() and detail_type.isascii() and detail.isascii())
    ):
        return None
    bus_name = entry.get("EventBusName")
    if bus_name is not None and type(bus_name) is not str:
        return None
    size = len(source) + len(detail_type) + len(detail)
    resources = entry.get("Resources")
    if resources is not None:
        if type(resources) is not list:
            return None
        for resource in resources:
            if type(resource) is not str or not resource.isascii():
                return None
            size += len(resource)
    if size > max_entry_size:
        return None
    try:
        # Strict, as validate_entry reads it: NaN, 1e999, an escaped lone surrogate or nesting
        # too deep to read is handed back, to be answered MalformedDetail there.
        parsed = json_strict.loads(detail)
    except (ValueError, RecursionError):
        return None
    if type(parsed) is not dict:
        return None
    return {
        "version": "0",
        "id": event_id or new_event_id(),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": now_text,
        "region": region,
        "resources": list(resources) if resources else [],
        "detail": parsed,
    }


def event_from_valid_entry(
    entry: Mapping[str, Any], *, account: str, region: str, now_text: str, event_id: str | None = None
) -> dict[str, Any]:
    """The event for an entry ``validate_entry`` accepted (any accepted shape)."""
    detail = entry["Detail"]
    when = entry.get("Time")
    return {
        "version": "0",
        "id": event_id or new_event_id(),
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": account,
        "time": now_text if when is None else format_time(when),
        "region": region,
        "resources": list(entry.get("Resources") or ()),
        "detail": json_strict.loads(detail) if isinstance(detail, str) else dict(detail),
    }
