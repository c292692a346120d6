"""The botocore service models: which operations exist, and what their input must look like.

botocore ships the authoritative description of both APIs (``events`` and ``pipes``); the server
reads it to tell an operation it does not implement from one that does not exist, and to check
each request's input against its documented shape (required members, types, lengths, ranges,
enums) with AWS's ``ValidationException`` wording. What a value means (a pattern, a rule name, a
schedule) is then the library's to judge.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from eventbus.server.errors import ApiError

__all__ = ["ServiceModel", "service_model"]

#: At most this many problems are listed in one ValidationException, as AWS does.
MAX_LISTED = 10

#: Operations whose entries the bus judges one by one (PutEvents answers a bad entry at its
#: position, with AWS's per-entry codes): only the list itself is checked here, which also keeps
#: the busiest operation cheap.
ENTRIES_JUDGED_BY_THE_BUS = frozenset({"PutEvents"})


class ServiceModel:
    """One service's operations and shapes, from botocore's ``service-2.json``."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.metadata: dict[str, Any] = data["metadata"]
        self.operations: dict[str, Any] = data["operations"]
        self.shapes: dict[str, Any] = data["shapes"]

    def input_shape(self, operation: str) -> str | None:
        shape = self.operations[operation].get("input")
        return None if shape is None else str(shape["shape"])

    def check_input(self, operation: str, params: dict[str, Any]) -> None:
        """Raise ``ApiError`` when ``params`` does not fit the operation's input shape."""
        shape = self.input_shape(operation)
        if shape is None:
            return
        problems: list[str] = []
        if operation in ENTRIES_JUDGED_BY_THE_BUS:
            self._check_entries(shape, params, problems)
        else:
            self._check(shape, params, "", problems, top=True)
        if problems:
            count = len(problems)
            shown = "; ".join(problems[:MAX_LISTED])
            noun = "error" if count == 1 else "errors"
            raise ApiError("ValidationException", f"{count} validation {noun} detected: {shown}")

    def _check_entries(self, shape_name: str, params: dict[str, Any], problems: list[str]) -> None:
        # The hot path: the list and its length here, each entry's fields by the bus itself.
        entries = params.get("Entries")
        if entries is None:
            problems.append("Value null at 'entries' failed to satisfy constraint: Member must not be null")
            return
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise _serialization("Entries", "a list of structures (JSON objects)")
        for index, entry in enumerate(entries, 1):
            # The server picks each entry's bus by this name before any bus sees the entry.
            if not isinstance(entry.get("EventBusName", ""), str):
                raise _serialization(f"entries.{index}.eventBusName", "a string")
        member = self.shapes[self.shapes[shape_name]["members"]["Entries"]["shape"]]
        self._length(member, entries, "entries", problems, "length")
        for key in params:
            if key != "Entries" and key in self.shapes[shape_name]["members"]:
                self._check(self.shapes[shape_name]["members"][key]["shape"], params[key], _path("", key), problems)

    # Each problem reads like AWS's: "Value 'x' at 'name' failed to satisfy constraint: ...".
    def _check(self, name: str, value: Any, where: str, problems: list[str], *, top: bool = False) -> None:
        shape = self.shapes[name]
        kind = shape["type"]
        if kind == "structure":
            if not isinstance(value, dict):
                raise _serialization(where, "a structure (a JSON object)")
            members = shape.get("members", {})
            for required in shape.get("required", []):
                if value.get(required) is None:
                    problems.append(f"Value null at '{_path(where, required)}' failed to satisfy constraint: Member must not be null")
            for key, item in value.items():
                member = members.get(key)
                if member is None:
                    # AWS ignores members it does not know of (newer clients send them).
                    continue
                if item is None:
                    continue
                self._check(member["shape"], item, _path(where, key), problems)
        elif kind == "list":
            if not isinstance(value, list):
                raise _serialization(where, "a list (a JSON array)")
            self._length(shape, value, where, problems, "length")
            for index, item in enumerate(value):
                self._check(shape["member"]["shape"], item, f"{where}.{index + 1}", problems)
        elif kind == "map":
            if not isinstance(value, dict):
                raise _serialization(where, "a map (a JSON object)")
            self._length(shape, value, where, problems, "length")
            for key, item in value.items():
                self._check(shape["value"]["shape"], item, f"{where}.{key}", problems)
        elif kind == "string":
            if not isinstance(value, str):
                raise _serialization(where, "a string")
            self._length(shape, value, where, problems, "length", sensitive=bool(shape.get("sensitive")))
            enum = shape.get("enum")
            if enum and value not in enum:
                problems.append(
                    f"Value '{value}' at '{where}' failed to satisfy constraint: "
                    f"Member must satisfy enum value set: [{', '.join(enum)}]"
                )
        elif kind in ("integer", "long"):
            if not isinstance(value, int) or isinstance(value, bool):
                raise _serialization(where, "an integer")
            self._range(shape, value, where, problems)
        elif kind in ("double", "float"):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise _serialization(where, "a number")
        elif kind == "boolean":
            if not isinstance(value, bool):
                raise _serialization(where, "a boolean")
        elif kind == "timestamp" and (not isinstance(value, int | float | str) or isinstance(value, bool)):
            raise _serialization(where, "a timestamp (seconds since the epoch)")

    @staticmethod
    def _length(shape: dict[str, Any], value: Any, where: str, problems: list[str], what: str, *, sensitive: bool = False) -> None:
        shown = "***" if sensitive else value
        low, high = shape.get("min"), shape.get("max")
        if low is not None and len(value) < low:
            problems.append(
                f"Value '{shown}' at '{where}' failed to satisfy constraint: "
                f"Member must have {what} greater than or equal to {low}"
            )
        if high is not None and len(value) > high:
            problems.append(
                f"Value '{_short(shown)}' at '{where}' failed to satisfy constraint: "
                f"Member must have {what} less than or equal to {high}"
            )

    @staticmethod
    def _range(shape: dict[str, Any], value: int, where: str, problems: list[str]) -> None:
        low, high = shape.get("min"), shape.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            bound = (
                f"between {low} and {high}"
                if low is not None and high is not None
                else (f"greater than or equal to {low}" if low is not None else f"less than or equal to {high}")
            )
            problems.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must have value {bound}")


def _path(where: str, key: str) -> str:
    key = key[:1].lower() + key[1:]
    return f"{where}.{key}" if where else key


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 100 else text[:100] + "..."


def _serialization(where: str, expected: str) -> ApiError:
    return ApiError("SerializationException", f"The value at '{where or 'the top level'}' must be {expected}.")


@functools.cache
def service_model(service: str) -> ServiceModel:
    """``events`` or ``pipes``, as the installed botocore describes it."""
    from botocore.loaders import Loader

    return ServiceModel(Loader().load_service_model(service, "service-2"))


def timestamp(value: datetime | None) -> float | None:
    """A time as JSON 1.1 and REST-JSON send it: seconds since the epoch."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def parse_timestamp(value: Any, where: str) -> datetime:
    """A timestamp member (epoch seconds, or ISO 8601 text) as an aware datetime."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise ApiError("ValidationException", f"Parameter {where} is not a valid timestamp.")
