"""The per-entry fast path agrees with the envelope's validation; event ids are UUID4s."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus.bus.entries import fast_event, new_event_id
from eventbus.envelope import EnvelopeDefaults, event_from_entry, parse_time, validate_entry

texts = st.one_of(st.text(max_size=12), st.sampled_from(["", "shop", "é", "x" * 130]))
details = st.one_of(
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3).map(json.dumps),
    st.sampled_from(["", "[]", "1", "{", '{"a": NaN}', "null", '{"k": "é"}']),
    st.integers(),
)
optional = {
    "Resources": st.one_of(st.lists(texts, max_size=3), st.just("arn"), st.none()),
    "EventBusName": st.one_of(st.none(), st.text(max_size=5), st.integers()),
    "Time": st.sampled_from(["2025-01-01T00:00:00Z", "yesterday"]),
    "TraceHeader": st.sampled_from(["", "t"]),
    "Other": st.just(1),
}
entries = st.fixed_dictionaries(
    {}, optional={"Source": texts | st.integers(), "DetailType": texts, "Detail": details, **optional}
)


@settings(max_examples=300, deadline=None)
@given(entry=entries, limit=st.sampled_from([10, 256 * 1024]))
def test_fast_path_accepts_only_what_validate_entry_accepts(entry: dict[str, Any], limit: int) -> None:
    event = fast_event(
        entry,
        account="111111111111",
        region="eu-west-1",
        now_text="2026-01-01T00:00:00Z",
        max_entry_size=limit,
    )
    if event is None:
        return
    assert validate_entry(entry, max_entry_size=limit) is None
    expected = event_from_entry(
        entry,
        EnvelopeDefaults(account="111111111111", region="eu-west-1"),
        now=parse_time("2026-01-01T00:00:00Z"),
    ).to_dict()
    assert {k: v for k, v in event.items() if k != "id"} == {k: v for k, v in expected.items() if k != "id"}


def test_plain_valid_entries_take_the_fast_path() -> None:
    entry = {"Source": "shop", "DetailType": "order", "Detail": '{"n": 1}', "Resources": ["arn:a"]}
    event = fast_event(entry, account="111111111111", region="r", now_text="t", max_entry_size=1024)
    assert event is not None and event["detail"] == {"n": 1} and event["resources"] == ["arn:a"]


def test_event_ids_are_uuid4() -> None:
    import uuid

    for _ in range(200):
        text = new_event_id()
        value = uuid.UUID(text)
        assert str(value) == text and value.version == 4 and value.variant == uuid.RFC_4122


def test_batched_event_ids_are_distinct_uuid4() -> None:
    import uuid

    from eventbus.bus.entries import new_event_ids

    ids = new_event_ids(500)
    assert len(set(ids)) == 500
    for text in ids:
        value = uuid.UUID(text)
        assert str(value) == text and value.version == 4 and value.variant == uuid.RFC_4122
