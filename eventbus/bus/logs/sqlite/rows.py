"""How values are written in a state file: times as integer microseconds since the epoch (exact,
and ordered as numbers), JSON as ASCII text (any string, lone surrogates included, survives)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "BUS_SHIFT",
    "decode",
    "decode_chain",
    "decode_names",
    "encode",
    "encode_chain",
    "encode_names",
    "event_dict",
    "from_us",
    "key_range",
    "to_us",
]

#: Row keys of a bus are ``bus id << BUS_SHIFT | n``.
BUS_SHIFT = 40

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

#: Compact; ASCII, so that nothing a string may hold fails to be stored as UTF-8.
encode = json.JSONEncoder(separators=(",", ":")).encode
decode = json.loads


def to_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _US


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def key_range(bus_id: int) -> tuple[int, int]:
    """The first and last row key of bus ``bus_id``."""
    low = bus_id << BUS_SHIFT
    return low, low + (1 << BUS_SHIFT) - 1


def encode_chain(chain: tuple[str, ...]) -> str | None:
    return encode(list(chain)) if chain else None


def decode_chain(text: str | None) -> tuple[str, ...]:
    return tuple(decode(text)) if text else ()


def encode_names(names: tuple[str, ...] | None) -> str | None:
    return None if names is None else encode(list(names))


def decode_names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(decode(text))


def event_dict(text: str) -> dict[str, Any]:
    value: dict[str, Any] = decode(text)
    return value
