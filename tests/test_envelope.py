"""The event envelope and PutEvents entries: AWS's JSON shape, AWS's per-entry errors, AWS's sizes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus.envelope import (
    DEFAULT_MAX_ENTRY_SIZE,
    MAX_ENTRY_SIZE_LIMIT,
    EntryError,
    EnvelopeDefaults,
    Event,
    PutEventsEntry,
    entry_size,
    event_from_entry,
    scheduled_event,
    validate_entry,
)
from eventbus.errors import InvalidEventError

CONFORMANCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "conformance"


def aws_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "111122223333",
        "time": "2017-12-22T18:43:48Z",
        "region": "us-west-1",
        "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
        "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated"},
    }
    event.update(overrides)
    return event


def good_entry(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "Source": "com.example.orders",
        "DetailType": "Order Placed",
        "Detail": '{"id": 7}',
    }
    entry.update(overrides)
    return entry


# --- the envelope ----------------------------------------------------------------------------------


def test_event_round_trips_aws_json_exactly() -> None:
    data = aws_event()
    event = Event.from_dict(data)
    assert event.detail_type == "EC2 Instance State-change Notification"
    assert event.time == datetime(2017, 12, 22, 18, 43, 48, tzinfo=UTC)
    assert event.replay_name is None
    assert event.to_dict() == data
    assert list(event.to_dict()) == list(data)  # AWS's key order, no replay-name
    assert Event.from_dict(event.to_dict()) == event


def test_to_json_is_compact_and_keeps_unicode() -> None:
    event = Event.from_dict(aws_event(detail={"name": "café"}))
    text = event.to_json()
    assert " " not in text.replace("EC2 Instance State-change Notification", "")
    assert "café" in text
    assert json.loads(text) == event.to_dict()
    assert text.startswith('{"version":"0","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","detail-type":')


def test_replay_name_appears_only_when_set() -> None:
    event = Event.from_dict(aws_event())
    replayed = event.model_copy(update={"replay_name": "nightly"})
    assert replayed.to_dict()["replay-name"] == "nightly"
    assert list(replayed.to_dict())[-1] == "replay-name"
    assert "replay-name" not in event.to_dict()
    assert Event.from_dict(replayed.to_dict()) == replayed


def test_event_built_with_python_names_and_defaults() -> None:
    event = Event(detail_type="Thing", source="me", account="123456789012", region="eu-west-1")
    assert event.version == "0"
    assert uuid.UUID(event.id).version == 4
    assert event.resources == [] and event.detail == {}
    assert event.time.tzinfo is not None and event.time.microsecond == 0
    assert Event(detail_type="T", source="s", account="123456789012", region="r").id != event.id


@pytest.mark.parametrize(
    ("given_time", "text"),
    [
        ("2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
        ("2025-01-01T02:00:00+02:00", "2025-01-01T00:00:00Z"),
        ("2025-01-01T00:00:00.999Z", "2025-01-01T00:00:00Z"),
        ("2025-01-01t00:00:00z", "2025-01-01T00:00:00Z"),
        (datetime(2025, 1, 1), "2025-01-01T00:00:00Z"),  # naive means UTC
        (datetime(2024, 12, 31, 19, tzinfo=timezone(timedelta(hours=-5))), "2025-01-01T00:00:00Z"),
    ],
)
def test_time_is_serialised_in_utc_whole_seconds(given_time: Any, text: str) -> None:
    event = Event.from_dict(aws_event(time=given_time))
    assert event.to_dict()["time"] == text


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"account": "12345"}, "account"),
        ({"account": "12345678901a"}, "account"),
        ({"account": "123456789012\n"}, "account"),
        ({"account": "\u0661" * 12}, "account"),  # Arabic-Indic digits are not an account
        ({"time": "0001-01-01T00:00:00+01:00"}, "time"),
        ({"time": "yesterday"}, "time"),
        ({"time": "2025-01-01"}, "time"),
        ({"detail": "not an object"}, "detail"),
        ({"resources": "arn:x"}, "resources"),
        ({"detail-type": 5}, "detail-type"),
        ({"ingestion-time": "2025-01-01T00:00:00Z"}, "ingestion-time"),
    ],
)
def test_bad_events_are_refused_with_the_field_named(change: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        Event.from_dict(aws_event(**change))
    assert str(caught.value).startswith(f"Event is not valid: {where}")
    assert isinstance(caught.value, ValueError)


def test_missing_required_field_is_named() -> None:
    data = aws_event()
    del data["source"]
    with pytest.raises(InvalidEventError, match=r"^Event is not valid: source: Field required\.$"):
        Event.from_dict(data)


def test_from_dict_refuses_non_objects() -> None:
    with pytest.raises(InvalidEventError, match="must be a JSON object"):
        Event.from_dict([1, 2])  # type: ignore[arg-type]


def test_events_are_immutable() -> None:
    event = Event.from_dict(aws_event())
    with pytest.raises(ValueError):
        event.source = "other"  # type: ignore[misc]


def test_events_recorded_from_aws_round_trip() -> None:
    corpus = CONFORMANCE / "input-transformers.jsonl"
    if not corpus.is_file():
        pytest.skip(f"conformance corpus not found at {corpus} (it sits beside the checkout)")
    lines = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines
    for line in lines:
        recorded = json.loads(line)["event"]
        assert Event.from_dict(recorded).to_dict() == recorded


# --- PutEvents entries ----------------------------------------------------------------------------


def test_entry_takes_aws_names_and_python_names() -> None:
    by_aws = PutEventsEntry.model_validate(
        {
            "Source": "s",
            "DetailType": "t",
            "Detail": "{}",
            "Resources": ["arn:a"],
            "Time": "2025-01-01T00:00:00Z",
            "EventBusName": "orders",
            "TraceHeader": "Root=1-5759e988-bd862e3fe1be46a994272793",
        }
    )
    by_python = PutEventsEntry(
        source="s",
        detail_type="t",
        detail="{}",
        resources=["arn:a"],
        time=datetime(2025, 1, 1, tzinfo=UTC),
        event_bus_name="orders",
        trace_header="Root=1-5759e988-bd862e3fe1be46a994272793",
    )
    assert by_aws == by_python
    assert by_aws.to_dict()["Time"] == "2025-01-01T00:00:00Z"
    assert set(by_aws.to_dict()) == {
        "Source",
        "DetailType",
        "Detail",
        "Resources",
        "Time",
        "EventBusName",
        "TraceHeader",
    }


def test_entry_detail_may_be_given_as_a_mapping() -> None:
    entry = PutEventsEntry(source="s", detail_type="t", detail={"a": [1, "é"]})
    assert entry.detail == '{"a":[1,"é"]}'
    assert validate_entry(entry) is None


def test_entry_to_dict_leaves_out_what_is_unset() -> None:
    assert PutEventsEntry(source="s").to_dict() == {"Source": "s"}


# --- validate_entry: AWS's codes and messages -----------------------------------------------------


REQUIRED = "Parameter {0} is not valid. Reason: {0} is a required argument."


@pytest.mark.parametrize(
    ("entry", "code", "message"),
    [
        ({}, "InvalidArgument", REQUIRED.format("Source")),
        ({"DetailType": "t", "Detail": "{}"}, "InvalidArgument", REQUIRED.format("Source")),
        (good_entry(Source=""), "InvalidArgument", REQUIRED.format("Source")),
        (good_entry(Source=None), "InvalidArgument", REQUIRED.format("Source")),
        ({"Source": "s"}, "InvalidArgument", REQUIRED.format("DetailType")),
        (good_entry(DetailType=""), "InvalidArgument", REQUIRED.format("DetailType")),
        ({"Source": "s", "DetailType": "t"}, "InvalidArgument", REQUIRED.format("Detail")),
        (good_entry(Detail=""), "InvalidArgument", REQUIRED.format("Detail")),
        (good_entry(Detail="{"), "MalformedDetail", "Detail is malformed."),
        (good_entry(Detail="not json"), "MalformedDetail", "Detail is malformed."),
        (good_entry(Detail="[1, 2]"), "MalformedDetail", "Detail is malformed."),
        (good_entry(Detail='"text"'), "MalformedDetail", "Detail is malformed."),
        (good_entry(Detail="42"), "MalformedDetail", "Detail is malformed."),
        (good_entry(Detail="null"), "MalformedDetail", "Detail is malformed."),
        (good_entry(Detail=42), "MalformedDetail", "Detail is malformed."),
        (good_entry(Detail='{"a": NaN}'), "MalformedDetail", "Detail is malformed."),
        (good_entry(Detail='{"a": -Infinity}'), "MalformedDetail", "Detail is malformed."),
        (good_entry(Detail='{"a":' * 100_000), "MalformedDetail", "Detail is malformed."),
        (good_entry(Detail='{"a":' * 50_000 + "1" + "}" * 50_000), "MalformedDetail", "Detail is malformed."),
        (
            good_entry(DetailType="x" * 129),
            "InvalidArgument",
            "Parameter DetailType is not valid. Reason: DetailType must be at most 128 characters long.",
        ),
        (
            good_entry(TraceHeader=""),
            "InvalidArgument",
            "Parameter TraceHeader is not valid. Reason: TraceHeader must be between 1 and 500 characters long.",
        ),
        (
            good_entry(TraceHeader="x" * 501),
            "InvalidArgument",
            "Parameter TraceHeader is not valid. Reason: TraceHeader must be between 1 and 500 characters long.",
        ),
        (
            good_entry(Time="last tuesday"),
            "InvalidArgument",
            "Parameter Time is not valid. Reason: Time must be an RFC 3339 timestamp such as 2025-01-01T00:00:00Z.",
        ),
        (
            good_entry(Time="0001-01-01T00:30:00+01:00"),
            "InvalidArgument",
            "Parameter Time is not valid. Reason: Time must be an RFC 3339 timestamp such as 2025-01-01T00:00:00Z.",
        ),
        (
            good_entry(Time=float("nan")),
            "InvalidArgument",
            "Parameter Time is not valid. Reason: Time must be an RFC 3339 timestamp such as 2025-01-01T00:00:00Z.",
        ),
        (
            good_entry(Time=True),
            "InvalidArgument",
            "Parameter Time is not valid. Reason: Time must be an RFC 3339 timestamp such as 2025-01-01T00:00:00Z.",
        ),
        (
            good_entry(Resources=["arn:a", 5]),
            "InvalidArgument",
            "Parameter Resources is not valid. Reason: Resources must be a list of strings.",
        ),
        (
            good_entry(Resources="arn:a"),
            "InvalidArgument",
            "Parameter Resources is not valid. Reason: Resources must be a list of strings.",
        ),
        (
            good_entry(Source=["a"]),
            "InvalidArgument",
            "Parameter Source is not valid. Reason: Source must be a string.",
        ),
        (
            good_entry(EventBusName=3),
            "InvalidArgument",
            "Parameter EventBusName is not valid. Reason: EventBusName must be a string.",
        ),
        (
            good_entry(detail="{}"),
            "InvalidArgument",
            "Parameter detail is not valid. Reason: detail is not a field of a PutEvents entry.",
        ),
        (
            good_entry(Detail="{" + '"a":"' + "x" * DEFAULT_MAX_ENTRY_SIZE + '"}'),
            "ValidationException",
            "Total size of the entries in the request is over the limit.",
        ),
    ],
)
def test_invalid_entries(entry: dict[str, Any], code: str, message: str) -> None:
    assert validate_entry(entry) == EntryError(code, message)


def test_required_fields_are_reported_before_anything_else() -> None:
    # Missing Source wins over a malformed Detail and an over-long DetailType.
    error = validate_entry({"DetailType": "x" * 200, "Detail": "nope"})
    assert error is not None and error.error_message == REQUIRED.format("Source")


def test_entry_error_as_aws_response_entry() -> None:
    error = validate_entry({})
    assert error is not None
    assert error.to_dict() == {"ErrorCode": "InvalidArgument", "ErrorMessage": REQUIRED.format("Source")}


@pytest.mark.parametrize(
    "entry",
    [
        good_entry(),
        good_entry(DetailType="x" * 128),
        good_entry(TraceHeader="x"),
        good_entry(TraceHeader="x" * 500),
        good_entry(Detail="{}"),
        good_entry(Detail='  {"nested": {"deep": [1, 2.5, null, true]}} '),
        good_entry(Resources=[]),
        good_entry(Resources=None),
        good_entry(Resources=["arn:aws:s3:::bucket", "anything at all"]),
        good_entry(Time="2025-01-01T00:00:00Z"),
        good_entry(Time="2025-01-01T10:00:00.123+05:30"),
        good_entry(Time=datetime(2025, 1, 1, tzinfo=UTC)),
        good_entry(Time=1735689600),
        good_entry(EventBusName="arn:aws:events:us-east-1:123456789012:event-bus/orders"),
        good_entry(Detail={"given": "as a mapping"}),
    ],
)
def test_valid_entries(entry: dict[str, Any]) -> None:
    assert validate_entry(entry) is None
    assert validate_entry(PutEventsEntry.model_validate(entry)) is None


def test_non_mapping_entry_is_an_entry_error_not_a_crash() -> None:
    error = validate_entry("Source=s")  # type: ignore[arg-type]
    assert error is not None and error.error_code == "InvalidArgument"


# --- sizes ------------------------------------------------------------------------------------------------


def test_entry_size_counts_as_aws_does() -> None:
    entry = {"Source": "ab", "DetailType": "cde", "Detail": '{"é":1}', "Resources": ["r1", "ü"]}
    # 2 + 3 + 8 (é is two bytes) + 2 + 2 (ü is two bytes)
    assert entry_size(entry) == 17
    assert entry_size({**entry, "Time": "2025-01-01T00:00:00Z"}) == 17 + 14
    assert entry_size({**entry, "Time": datetime(2025, 1, 1, tzinfo=UTC)}) == 17 + 14
    assert entry_size(PutEventsEntry.model_validate(entry)) == 17
    # EventBusName and TraceHeader do not count
    assert entry_size({**entry, "EventBusName": "b" * 100, "TraceHeader": "t" * 100}) == 17
    assert entry_size({}) == 0


def _entry_of_size(size: int, *, with_time: bool = False) -> dict[str, Any]:
    base = good_entry(Detail='{"p":""}')
    if with_time:
        base["Time"] = "2025-01-01T00:00:00Z"
    pad = size - entry_size(base)
    base["Detail"] = '{"p":"' + "x" * pad + '"}'
    assert entry_size(base) == size
    return base


def test_size_limit_is_256_kb_by_default_inclusive() -> None:
    assert validate_entry(_entry_of_size(256 * 1024)) is None
    assert validate_entry(_entry_of_size(256 * 1024, with_time=True)) is None
    too_big = validate_entry(_entry_of_size(256 * 1024 + 1))
    assert too_big is not None and too_big.error_code == "ValidationException"


def test_size_limit_is_configurable_up_to_1_mb() -> None:
    big = _entry_of_size(MAX_ENTRY_SIZE_LIMIT)
    assert validate_entry(big) is not None
    assert validate_entry(big, max_entry_size=MAX_ENTRY_SIZE_LIMIT) is None
    assert validate_entry(_entry_of_size(1000), max_entry_size=999) is not None
    with pytest.raises(ValueError, match="between 1 and 1048576"):
        validate_entry(good_entry(), max_entry_size=MAX_ENTRY_SIZE_LIMIT + 1)
    with pytest.raises(ValueError, match="between 1 and 1048576"):
        validate_entry(good_entry(), max_entry_size=0)


# --- building events from entries -------------------------------------------------------------------------


def test_event_from_entry_fills_the_envelope() -> None:
    now = datetime(2025, 5, 5, 5, 5, 5, 555, tzinfo=UTC)
    event = event_from_entry(
        good_entry(Resources=["arn:a"], EventBusName="orders", TraceHeader="Root=1"), now=now
    )
    assert event.to_dict() == {
        "version": "0",
        "id": event.id,
        "detail-type": "Order Placed",
        "source": "com.example.orders",
        "account": "123456789012",
        "time": "2025-05-05T05:05:05Z",
        "region": "us-east-1",
        "resources": ["arn:a"],
        "detail": {"id": 7},
    }
    assert uuid.UUID(event.id).version == 4


def test_event_from_entry_takes_time_from_the_entry_and_defaults_from_config() -> None:
    defaults = EnvelopeDefaults(account="999988887777", region="eu-central-1")
    event = event_from_entry(
        PutEventsEntry.model_validate(good_entry(Time="2024-02-29T23:00:00-01:00")), defaults
    )
    assert event.account == "999988887777" and event.region == "eu-central-1"
    assert event.to_dict()["time"] == "2024-03-01T00:00:00Z"


def test_event_from_entry_defaults_time_to_now() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    event = event_from_entry(good_entry())
    assert before <= event.time <= datetime.now(UTC)


def test_event_from_entry_refuses_invalid_entries_with_aws_words() -> None:
    with pytest.raises(InvalidEventError, match=r"^MalformedDetail: Detail is malformed\.$"):
        event_from_entry(good_entry(Detail="[]"))
    with pytest.raises(InvalidEventError, match="Source is a required argument"):
        event_from_entry({})


def test_scheduled_event_has_aws_shape() -> None:
    arn = "arn:aws:events:eu-west-1:111122223333:rule/nightly"
    event = scheduled_event(
        arn, datetime(2025, 1, 1, 2, tzinfo=UTC), EnvelopeDefaults(account="111122223333", region="eu-west-1")
    )
    assert event.to_dict() == {
        "version": "0",
        "id": event.id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "111122223333",
        "time": "2025-01-01T02:00:00Z",
        "region": "eu-west-1",
        "resources": [arn],
        "detail": {},
    }


def test_envelope_defaults_are_checked() -> None:
    assert EnvelopeDefaults().account == "123456789012"
    assert EnvelopeDefaults().region == "us-east-1"
    with pytest.raises(ValueError, match="12 digits"):
        EnvelopeDefaults(account="42")
    with pytest.raises(ValueError):
        EnvelopeDefaults(region="")


# --- properties -----------------------------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=20))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=5)
nonempty_text = st.text(min_size=1, max_size=40)


@settings(max_examples=100, deadline=None)
@given(
    source=nonempty_text,
    detail_type=st.text(min_size=1, max_size=128),
    detail=json_objects,
    resources=st.lists(st.text(max_size=30), max_size=3),
    when=st.one_of(
        st.none(),
        st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2199, 1, 1), timezones=st.just(UTC)),
    ),
)
def test_valid_entries_become_events_that_round_trip(
    source: str, detail_type: str, detail: dict[str, Any], resources: list[str], when: datetime | None
) -> None:
    entry: dict[str, Any] = {
        "Source": source,
        "DetailType": detail_type,
        "Detail": json.dumps(detail),
        "Resources": resources,
    }
    if when is not None:
        entry["Time"] = when.isoformat()
    assert validate_entry(entry, max_entry_size=MAX_ENTRY_SIZE_LIMIT) is None
    expected_size = (14 if when is not None else 0) + sum(
        len(part.encode()) for part in [source, detail_type, entry["Detail"], *resources]
    )
    assert entry_size(entry) == expected_size
    event = event_from_entry(entry)
    assert event.detail == detail
    assert event.resources == resources
    if when is not None:
        assert event.time == when.replace(microsecond=0)
    again = Event.from_dict(json.loads(event.to_json()))
    assert again == event


entry_keys = st.sampled_from(
    ["Source", "DetailType", "Detail", "Resources", "Time", "EventBusName", "TraceHeader", "Other"]
)
anything = st.one_of(
    json_values, st.just("{}"), st.just("2025-01-01T00:00:00Z"), st.lists(st.text(max_size=5))
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(entry_keys, anything, max_size=8))
def test_validate_entry_never_raises(entry: dict[str, Any]) -> None:
    error = validate_entry(entry)
    if error is None:
        # whatever validate_entry accepts, event_from_entry can build
        assert isinstance(event_from_entry(entry), Event)
    else:
        assert error.error_code in {"InvalidArgument", "MalformedDetail", "ValidationException"}
        assert error.error_message.endswith(".")


event_keys = st.sampled_from(
    [
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
        "replay-name",
        "x",
    ]
)


@settings(max_examples=200, deadline=None)
@given(changes=st.dictionaries(event_keys, anything, max_size=4), dropped=st.lists(event_keys, max_size=2))
def test_from_dict_accepts_or_refuses_cleanly(changes: dict[str, Any], dropped: list[str]) -> None:
    data = aws_event(**changes)
    for key in dropped:
        data.pop(key, None)
    try:
        event = Event.from_dict(data)
    except InvalidEventError as exc:
        assert str(exc).startswith("Event is not valid: ")
    else:
        assert Event.from_dict(json.loads(event.to_json())) == event
