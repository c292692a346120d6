"""Reading an event: JSON text or UTF-8 bytes to the mapping the matchers walk.

pydantic-core's reader comes first: twice as fast as ``json``'s, and the keys it hands back are
the same objects from one event to the next, whose hashes the matcher's look-ups then find
already computed. Whatever it refuses (lone surrogates, nesting deeper than 200, ``NaN``, a byte
order mark, or invalid JSON) is read again by ``json``, so the events and the error messages are
exactly those ``json`` gives (a property test compares the two readers type for type).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic_core import from_json

from eventbus.errors import InvalidEventError

__all__ = ["EventInput", "load_event", "read_json"]

EventInput = Mapping[str, Any] | str | bytes


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# Made once: ``json.loads`` with an option builds a new decoder on every call (about 1.8 us of a
# 730-byte event's 5 us).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def load_event(event: EventInput) -> Mapping[str, Any]:
    """An event as a mapping: JSON text and UTF-8 bytes are parsed; errors are ``InvalidEventError``."""
    if type(event) is not str:  # text, the usual case, straight to the reader
        if isinstance(event, Mapping):
            return event
        if isinstance(event, bytes | bytearray):
            try:
                event = bytes(event).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidEventError(f"Event is not valid UTF-8 (byte {exc.start})") from None
        elif not isinstance(event, str):
            raise InvalidEventError(f"Event must be a JSON object, not {type(event).__name__}")
    try:
        data = from_json(event, allow_inf_nan=False, cache_strings="keys")
    except ValueError:
        data = _read(str(event))
    if not isinstance(data, dict):
        raise InvalidEventError("Event must be a JSON object")
    return data


def read_json(data: str | bytes) -> Any:
    """JSON text or UTF-8 bytes that this package wrote (a stored record, a queued delivery) as
    values: pydantic-core's reader, then ``json``'s for what it refuses, so the values are those
    ``json.loads`` gives (``ValueError`` when neither can read it)."""
    try:
        return from_json(data, cache_strings="keys")
    except ValueError:
        return json.loads(data)


def _read(event: str) -> Any:
    try:
        if event.startswith("\ufeff"):
            # As json.loads says it: the decoder alone would only see an unexpected character.
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", event, 0)
        return _DECODER.decode(event)
    except RecursionError:
        raise InvalidEventError("Event is nested too deeply to parse") from None
    except ValueError as exc:
        raise InvalidEventError(f"Event is not valid JSON: {exc}") from None
