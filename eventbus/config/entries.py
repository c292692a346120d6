"""Events given by people (arguments, files, test cases) as PutEvents entries.

Either shape is accepted: a PutEvents entry (``Source``, ``DetailType``, ``Detail``...) or an
event as targets receive it (``source``, ``detail-type``, ``detail``...). Text may hold one JSON
object, a JSON array of them, or JSON Lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from eventbus.bus.entries import entry_from_event_shape, is_event_shaped
from eventbus.errors import InvalidEventError

__all__ = ["parse_events", "to_entry"]

#: Python's JSON reader and writer recurse once a level: deeper than about 1,000 they give up.
_TOO_DEEP = "the JSON is nested too deeply"


def to_entry(value: Any) -> dict[str, Any]:
    """One event or entry as a PutEvents entry (``Detail`` as JSON text); bad shapes raise."""
    if not isinstance(value, Mapping):
        raise InvalidEventError(f"an event must be a JSON object, not {type(value).__name__}")
    if is_event_shaped(value):
        try:
            entry, unknown = entry_from_event_shape(value)
        except RecursionError:
            raise InvalidEventError(_TOO_DEEP) from None
        if unknown:
            raise InvalidEventError(f"unknown event field(s): {', '.join(unknown)}")
        return entry
    entry = dict(value)
    detail = entry.get("Detail")
    if detail is not None and not isinstance(detail, str):
        try:
            entry["Detail"] = json.dumps(detail, separators=(",", ":"), ensure_ascii=False)
        except RecursionError:
            raise InvalidEventError(_TOO_DEEP) from None
    return entry


def parse_events(text: str, where: str = "input") -> list[dict[str, Any]]:
    """Entries from JSON text: an object, an array of objects, or JSON Lines."""
    stripped = text.strip()
    if not stripped:
        return []
    try:
        data = json.loads(stripped)
    except RecursionError:
        raise InvalidEventError(f"{where}: {_TOO_DEEP}") from None
    except ValueError:
        data = None
        items: list[Any] = []
        for number, line in enumerate(stripped.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InvalidEventError(f"{where}: line {number} is not valid JSON: {exc.msg}") from None
            except RecursionError:
                raise InvalidEventError(f"{where}: line {number}: {_TOO_DEEP}") from None
        return [_entry(item, where) for item in items]
    items = data if isinstance(data, list) else [data]
    return [_entry(item, where) for item in items]


def _entry(item: Any, where: str) -> dict[str, Any]:
    try:
        return to_entry(item)
    except InvalidEventError as exc:
        raise InvalidEventError(f"{where}: {exc}") from None
