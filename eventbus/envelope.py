"""The EventBridge event envelope and the PutEvents entries it is built from.

An application hands the bus ``PutEventsEntry`` values (AWS casing: ``Source``, ``DetailType``, ...);
``validate_entry`` judges each one the way PutEvents does, returning AWS's ``ErrorCode`` and
``ErrorMessage`` instead of raising, because PutEvents fails entries one by one and still answers
200 for the rest. A valid entry becomes an ``Event`` (dash-cased envelope: ``detail-type``, ...)
through ``event_from_entry``, which fills what the caller does not send: id, time, account, region.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)

from eventbus import json_strict
from eventbus.errors import InvalidEventError

__all__ = [
    "DEFAULT_MAX_ENTRY_SIZE",
    "MAX_DETAIL_TYPE_LENGTH",
    "MAX_ENTRY_SIZE_LIMIT",
    "EntryError",
    "EnvelopeDefaults",
    "Event",
    "PutEventsEntry",
    "entry_size",
    "event_from_entry",
    "format_time",
    "parse_time",
    "scheduled_event",
    "validate_entry",
]

DEFAULT_MAX_ENTRY_SIZE = 256 * 1024
# AWS raised the PutEvents payload limit from 256 KB to 1 MB in January 2026; we allow up to that.
MAX_ENTRY_SIZE_LIMIT = 1024 * 1024
MAX_DETAIL_TYPE_LENGTH = 128
MAX_TRACE_HEADER_LENGTH = 500
# AWS counts 14 bytes for an entry's Time, whatever its textual form.
TIME_SIZE = 14

# [0-9], not \d (which takes any script's digits); used with fullmatch (no trailing newline).
_ACCOUNT_RE = re.compile(r"[0-9]{12}")
_ENTRY_FIELDS = ("Time", "Source", "Resources", "DetailType", "Detail", "EventBusName", "TraceHeader")


def parse_time(value: object) -> datetime:
    """An RFC 3339 string, an epoch number or a ``datetime`` as an aware UTC ``datetime``.

    Naive datetimes are taken to be UTC already: EventBridge has no other zone.
    Raises ``ValueError`` for anything else.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, bool):
        # bool is an int to Python, never a time to anyone.
        raise ValueError(f"{value!r} is not a timestamp")
    elif isinstance(value, int | float):
        try:
            parsed = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a timestamp") from exc
    elif isinstance(value, str):
        text = value.strip()
        # fromisoformat takes "Z" since 3.11, but also a bare date or a space separator, which
        # RFC 3339 does not; insist on the "T" between date and time.
        if len(text) < 19 or text[10] not in "Tt":
            raise ValueError(f"{value!r} is not an RFC 3339 timestamp")
        try:
            parsed = datetime.fromisoformat(text[:10] + "T" + text[11:].upper())
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an RFC 3339 timestamp") from exc
    else:
        raise ValueError(f"{value!r} is not a timestamp")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+01:00 is before datetime.min in UTC
        raise ValueError(f"{value!r} is out of range") from exc


def format_time(value: datetime) -> str:
    """The envelope's time text: UTC, whole seconds, ``Z`` (``2025-01-01T00:00:00Z``)."""
    # Callers also hand in RFC 3339 text and epoch numbers, which parse_time normalises.
    if not isinstance(value, datetime) or value.tzinfo is not UTC:
        value = parse_time(value)
    # isoformat, not strftime: a third cheaper, on a path taken for every event.
    return value.isoformat(timespec="seconds")[:19] + "Z"


class Event(BaseModel):
    """An event as EventBridge delivers it.

    Python names are snake_case; ``to_dict``/``from_dict`` speak AWS's dash-cased JSON. The time is
    kept to whole seconds, as AWS sends it, so that ``from_dict(e.to_dict()) == e``.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    version: str = "0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1)
    detail_type: str = Field(alias="detail-type")
    source: str
    account: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    region: str
    resources: list[str] = Field(default_factory=list)
    detail: dict[str, Any] = Field(default_factory=dict)
    replay_name: str | None = Field(default=None, alias="replay-name")

    @field_validator("account")
    @classmethod
    def _account_is_twelve_digits(cls, value: str) -> str:
        if not _ACCOUNT_RE.fullmatch(value):
            raise ValueError("account must be 12 digits")
        return value

    @field_validator("time", mode="before")
    @classmethod
    def _time_in_utc_seconds(cls, value: object) -> datetime:
        return parse_time(value).replace(microsecond=0)

    @field_validator("id", "detail_type", "source", "region", "replay_name")
    @classmethod
    def _text_is_unicode(cls, value: str | None) -> str | None:
        if value is not None and not json_strict.is_unicode(value):
            raise ValueError("must be valid UTF-8 text (it holds a lone surrogate)")
        return value

    @field_validator("resources")
    @classmethod
    def _resources_are_unicode(cls, value: list[str]) -> list[str]:
        if not all(json_strict.is_unicode(r) for r in value):
            raise ValueError("must be valid UTF-8 text (a resource holds a lone surrogate)")
        return value

    @field_validator("detail")
    @classmethod
    def _detail_is_deliverable(cls, value: dict[str, Any]) -> dict[str, Any]:
        # What no target could write (NaN, an infinite number, a lone surrogate) is refused here.
        problem = json_strict.problem(value)
        if problem is not None:
            raise ValueError(f"not JSON every target can deliver: {problem}")
        return value

    @field_serializer("time")
    def _time_text(self, value: datetime) -> str:
        return format_time(value)

    def to_dict(self) -> dict[str, Any]:
        """The exact AWS JSON shape: dash keys, AWS's key order, no ``replay-name`` unless replayed."""
        data = self.model_dump(mode="json", by_alias=True)
        if data.get("replay-name") is None:
            data.pop("replay-name", None)
        return data

    def to_json(self) -> str:
        """Compact JSON text of ``to_dict()``; non-ASCII stays as UTF-8, as AWS delivers it."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """The reverse of ``to_dict``; raises ``InvalidEventError`` (a ``ValueError``) naming the
        first field that is wrong. Keys outside the envelope are refused, not dropped."""
        if not isinstance(data, Mapping):
            raise InvalidEventError(f"An event must be a JSON object, not {type(data).__name__}.")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise InvalidEventError(f"Event is not valid: {_first_problem(exc)}.") from None


class PutEventsEntry(BaseModel):
    """One entry of a PutEvents request, with AWS's field names as aliases.

    Every field is optional here because PutEvents itself takes incomplete entries and fails them
    one by one: call ``validate_entry`` to learn whether AWS would accept this one. ``Detail`` may be
    given as a mapping for convenience; it is stored as compact JSON text.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    time: datetime | None = Field(default=None, alias="Time")
    source: str | None = Field(default=None, alias="Source")
    resources: list[str] = Field(default_factory=list, alias="Resources")
    detail_type: str | None = Field(default=None, alias="DetailType")
    detail: str | None = Field(default=None, alias="Detail")
    event_bus_name: str | None = Field(default=None, alias="EventBusName")
    trace_header: str | None = Field(default=None, alias="TraceHeader")

    @field_validator("time", mode="before")
    @classmethod
    def _time_in_utc(cls, value: object) -> datetime | None:
        return None if value is None else parse_time(value)

    @field_validator("detail", mode="before")
    @classmethod
    def _detail_as_text(cls, value: object) -> object:
        if isinstance(value, Mapping):
            try:
                return json_strict.dumps(value)
            except ValueError as exc:
                raise ValueError(f"Detail is malformed: {exc}") from None
        return value

    @field_validator("resources", mode="before")
    @classmethod
    def _no_resources_is_empty(cls, value: object) -> object:
        return [] if value is None else value

    def to_dict(self) -> dict[str, Any]:
        """The entry as AWS's request JSON names it, leaving out what is unset."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if not data.get("Resources"):
            data.pop("Resources", None)
        return data


@dataclass(frozen=True, slots=True)
class EntryError:
    """Why PutEvents fails one entry: the ``ErrorCode`` and ``ErrorMessage`` AWS answers with."""

    error_code: str
    error_message: str

    def to_dict(self) -> dict[str, str]:
        """The entry of a PutEvents response: ``{"ErrorCode": ..., "ErrorMessage": ...}``."""
        return {"ErrorCode": self.error_code, "ErrorMessage": self.error_message}


class EnvelopeDefaults(BaseModel):
    """What the envelope takes from where the bus runs rather than from the entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account: str = "123456789012"
    region: str = Field(default="us-east-1", min_length=1)

    @field_validator("account")
    @classmethod
    def _account_is_twelve_digits(cls, value: str) -> str:
        if not _ACCOUNT_RE.fullmatch(value):
            raise ValueError("account must be 12 digits")
        return value


def _first_problem(exc: ValidationError) -> str:
    problem = exc.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    # pydantic prefixes messages from our own validators with "Value error, ".
    message = str(problem["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _invalid(parameter: str, reason: str) -> EntryError:
    return EntryError("InvalidArgument", f"Parameter {parameter} is not valid. Reason: {reason}")


_MALFORMED_DETAIL = EntryError("MalformedDetail", "Detail is malformed.")
# AWS rejects the whole request with this ValidationException; reported per entry, the code and
# the words stay AWS's so a caller that fails the request with it answers as AWS does.
_TOO_LARGE = EntryError("ValidationException", "Total size of the entries in the request is over the limit.")


def _load_detail(text: str) -> Any:
    # Strict: NaN, Infinity, numbers beyond a double and lone surrogates are malformed detail,
    # as nothing is accepted that a target could not deliver (see docs/events.md).
    return json_strict.loads(text)


def _utf8_len(value: str) -> int:
    return len(value.encode("utf-8", errors="surrogatepass"))


def entry_size(entry: Mapping[str, Any] | PutEventsEntry) -> int:
    """The entry's size as AWS counts it against the PutEvents limit.

    14 bytes if ``Time`` is set, plus the UTF-8 bytes of ``Source``, ``DetailType``, ``Detail`` and
    each ``Resources`` entry. Fields of the wrong type count nothing (``validate_entry`` reports them).
    """
    if isinstance(entry, PutEventsEntry):
        entry = entry.to_dict()
    size = TIME_SIZE if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        value = entry.get(name)
        if isinstance(value, Mapping):
            try:
                value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            except (TypeError, ValueError, RecursionError):
                continue
        if isinstance(value, str):
            size += _utf8_len(value)
    resources = entry.get("Resources")
    if isinstance(resources, list | tuple):
        size += sum(_utf8_len(r) for r in resources if isinstance(r, str))
    return size


def _check_max_entry_size(max_entry_size: int) -> None:
    if isinstance(max_entry_size, bool) or not isinstance(max_entry_size, int):
        raise TypeError("max_entry_size must be an int")
    if not 1 <= max_entry_size <= MAX_ENTRY_SIZE_LIMIT:
        raise ValueError(
            f"max_entry_size must be between 1 and {MAX_ENTRY_SIZE_LIMIT} bytes, not {max_entry_size}"
        )


def validate_entry(
    entry: Mapping[str, Any] | PutEventsEntry, *, max_entry_size: int = DEFAULT_MAX_ENTRY_SIZE
) -> EntryError | None:
    """``None`` when PutEvents would accept the entry, else the ``EntryError`` it would answer.

    Checks run in the order AWS reports them: required fields first (Source, DetailType, Detail),
    then the shape of each field, then the size. ``max_entry_size`` is the per-entry byte limit
    (256 KB by default, at most 1 MB).
    """
    _check_max_entry_size(max_entry_size)
    raw: Mapping[str, Any]
    if isinstance(entry, PutEventsEntry):
        raw = entry.to_dict()
    elif isinstance(entry, Mapping):
        raw = entry
    else:
        return _invalid("Entries", "Each entry must be a JSON object.")

    for key in raw:
        if key not in _ENTRY_FIELDS:
            return _invalid(str(key), f"{key} is not a field of a PutEvents entry.")

    for name in ("Source", "DetailType", "Detail"):
        value = raw.get(name)
        if value is None or value == "":
            return _invalid(name, f"{name} is a required argument.")
    for name in ("Source", "DetailType", "EventBusName", "TraceHeader"):
        value = raw.get(name)
        if value is not None and not isinstance(value, str):
            return _invalid(name, f"{name} must be a string.")
        if value is not None and not json_strict.is_unicode(value):
            # A lone surrogate (what surrogateescape makes of bytes that are not UTF-8): no
            # target can write it, so it is refused here rather than failing every delivery.
            return _invalid(name, f"{name} must be valid UTF-8 text.")

    detail_type: str = raw["DetailType"]
    if len(detail_type) > MAX_DETAIL_TYPE_LENGTH:
        return _invalid("DetailType", f"DetailType must be at most {MAX_DETAIL_TYPE_LENGTH} characters long.")

    detail = raw["Detail"]
    if isinstance(detail, Mapping):
        if json_strict.problem(detail) is not None:
            return _MALFORMED_DETAIL
    elif not isinstance(detail, str):
        return _MALFORMED_DETAIL
    else:
        try:
            parsed = _load_detail(detail)
        except (ValueError, RecursionError):
            return _MALFORMED_DETAIL
        if not isinstance(parsed, dict):
            return _MALFORMED_DETAIL

    resources = raw.get("Resources")
    if resources is not None and (
        not isinstance(resources, list | tuple) or not all(isinstance(r, str) for r in resources)
    ):
        return _invalid("Resources", "Resources must be a list of strings.")
    if resources and not all(json_strict.is_unicode(r) for r in resources):
        return _invalid("Resources", "Resources must be valid UTF-8 text.")

    trace_header = raw.get("TraceHeader")
    if trace_header is not None and not 1 <= len(trace_header) <= MAX_TRACE_HEADER_LENGTH:
        return _invalid(
            "TraceHeader", f"TraceHeader must be between 1 and {MAX_TRACE_HEADER_LENGTH} characters long."
        )

    time = raw.get("Time")
    if time is not None:
        try:
            parse_time(time)
        except ValueError:
            return _invalid("Time", "Time must be an RFC 3339 timestamp such as 2025-01-01T00:00:00Z.")

    if entry_size(raw) > max_entry_size:
        return _TOO_LARGE
    return None


def _as_entry(entry: Mapping[str, Any] | PutEventsEntry) -> PutEventsEntry:
    if isinstance(entry, PutEventsEntry):
        return entry
    try:
        return PutEventsEntry.model_validate(dict(entry))
    except ValidationError as exc:
        raise InvalidEventError(f"Not a PutEvents entry: {_first_problem(exc)}.") from None


def event_from_entry(
    entry: Mapping[str, Any] | PutEventsEntry,
    defaults: EnvelopeDefaults | None = None,
    *,
    now: datetime | None = None,
) -> Event:
    """The event EventBridge makes of an accepted entry.

    Fills a fresh uuid4 ``id``, the entry's ``Time`` or else ``now`` (default: the current UTC time),
    and the account and region of ``defaults``. ``EventBusName`` and ``TraceHeader`` are not part of
    the delivered envelope. Raises ``InvalidEventError`` (a ``ValueError``) with AWS's code and
    message if the entry is not valid
    (``validate_entry`` first to get the ``EntryError`` instead); the size limit is not checked here.
    """
    error = validate_entry(entry, max_entry_size=MAX_ENTRY_SIZE_LIMIT)
    if error is not None and error is not _TOO_LARGE:
        raise InvalidEventError(f"{error.error_code}: {error.error_message}")
    parsed = _as_entry(entry)
    defaults = defaults if defaults is not None else EnvelopeDefaults()
    if parsed.source is None or parsed.detail_type is None or parsed.detail is None:
        raise InvalidEventError("Source, DetailType and Detail are required.")  # unreachable once validated
    return Event(
        detail_type=parsed.detail_type,
        source=parsed.source,
        account=defaults.account,
        time=parsed.time if parsed.time is not None else (now if now is not None else datetime.now(UTC)),
        region=defaults.region,
        resources=list(parsed.resources),
        detail=_load_detail(parsed.detail),
    )


def scheduled_event(rule_arn: str, fire_time: datetime, defaults: EnvelopeDefaults | None = None) -> Event:
    """The event a scheduled rule emits when it fires: AWS's ``Scheduled Event`` from ``aws.events``,
    with an empty detail and the rule's ARN as its one resource."""
    defaults = defaults if defaults is not None else EnvelopeDefaults()
    return Event(
        detail_type="Scheduled Event",
        source="aws.events",
        account=defaults.account,
        time=fire_time,
        region=defaults.region,
        resources=[rule_arn],
        detail={},
    )
