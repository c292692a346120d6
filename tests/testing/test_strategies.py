"""The strategies against the reference matcher: matching events match, non-matching ones do not,
generated patterns compile, generated events and entries are valid envelopes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from eventbus.envelope import Event, event_from_entry, validate_entry
from eventbus.patterns import Pattern
from eventbus.patterns.reference import matches
from eventbus.patterns.values import Condition
from eventbus.testing._analysis import Analysis
from eventbus.testing._layout import EnvelopeSpec
from eventbus.testing.strategies import (
    OPERATORS,
    events,
    matching_events,
    non_matching_events,
    patterns,
    put_events_entries,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_envelope(event: dict[str, Any]) -> None:
    # Round trip through the envelope model: valid, and already in the delivered shape.
    assert Event.from_dict(event).to_dict() == event


def _conditions(pattern: dict[str, Any]) -> list[Condition]:
    return [c for b in Pattern(pattern).branches for r in b for c in r.conditions]


# --- events and entries --------------------------------------------------------------------------


@SETTINGS
@given(events())
def test_events_are_valid_envelopes(event: dict[str, Any]) -> None:
    _valid_envelope(event)


@SETTINGS
@given(
    events(
        source="com.example.orders",
        detail_type=st.sampled_from(["A", "B"]),
        detail={"order": {"total": st.integers(1, 9), "currency": "EUR"}},
    )
)
def test_events_fix_source_detail_type_and_parts_of_detail(event: dict[str, Any]) -> None:
    _valid_envelope(event)
    assert event["source"] == "com.example.orders"
    assert event["detail-type"] in ("A", "B")
    assert event["detail"]["order"]["currency"] == "EUR"
    assert 1 <= event["detail"]["order"]["total"] <= 9


def test_events_refuse_an_invalid_envelope() -> None:
    with pytest.raises(InvalidArgument, match="account"):

        @given(events(account="123"))
        def inner(event: dict[str, Any]) -> None:
            pass

        inner()


@SETTINGS
@given(put_events_entries(source="com.example", detail={"kind": "x"}, event_bus_name="orders"))
def test_put_events_entries_are_valid(entry: dict[str, Any]) -> None:
    assert validate_entry(entry) is None
    assert entry["EventBusName"] == "orders"
    event = event_from_entry(entry).to_dict()
    assert event["source"] == "com.example"
    assert event["detail"]["kind"] == "x"


PATTERN = {"source": ["com.example.orders"], "detail": {"total": [{"numeric": [">", 100]}]}}


@SETTINGS
@given(put_events_entries(matching_events(PATTERN)))
def test_entries_from_matching_events_produce_matching_events(entry: dict[str, Any]) -> None:
    assert validate_entry(entry) is None
    assert matches(PATTERN, event_from_entry(entry).to_dict())


def test_put_events_entries_refuse_both_forms() -> None:
    with pytest.raises(InvalidArgument):
        put_events_entries(events(), source="x").validate()


# --- patterns --------------------------------------------------------------------------------------


@SETTINGS
@given(patterns(max_fields=3, max_size=300))
def test_generated_patterns_compile_within_bounds(pattern: dict[str, Any]) -> None:
    compiled = Pattern(json.dumps(pattern))
    assert len(compiled.to_json()) <= 300
    assert Analysis(compiled.parsed, EnvelopeSpec()).matchable


@settings(max_examples=25, deadline=None)
@given(patterns(max_fields=6, max_size=60))
def test_small_size_bounds_are_kept(pattern: dict[str, Any]) -> None:
    assert len(json.dumps(pattern, separators=(",", ":"), ensure_ascii=False)) <= 60
    Pattern(pattern, max_size=60)


@pytest.mark.parametrize("operator", [op for op in OPERATORS if op != "$or"])
def test_patterns_use_the_operators_asked_for(operator: str) -> None:
    kinds: set[str] = set()

    @settings(max_examples=15, deadline=None, database=None)
    @given(patterns(operators=[operator], max_fields=2))
    def inner(pattern: dict[str, Any]) -> None:
        found = {c.kind for c in _conditions(pattern)}
        kinds.update(found)
        assert found <= {operator}

    inner()
    assert kinds == {operator}


def test_patterns_use_or() -> None:
    # A search, not a sample: some 40 draws in a row can all hold one branch, so this asks
    # hypothesis to find one with several (derandomized, so every run searches alike).
    pattern = find(
        patterns(operators=["exact", "$or"]),
        lambda p: len(Pattern(p).branches) > 1,
        settings=settings(max_examples=1000, deadline=None, database=None, derandomize=True),
    )
    assert "$or" in json.dumps(pattern)


@pytest.mark.parametrize(
    "kwargs", [{"operators": ["nope"]}, {"operators": ["$or"]}, {"max_fields": 0}, {"max_size": 10}]
)
def test_patterns_refuse_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        patterns(**kwargs).validate()


# --- the self-test: generated events against generated patterns ---------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patterns(), st.data())
def test_matching_events_match_and_non_matching_events_do_not(
    pattern: dict[str, Any], data: st.DataObject
) -> None:
    compiled = Pattern(pattern)
    arrays = data.draw(st.booleans(), label="arrays")
    event = data.draw(matching_events(pattern, arrays=arrays), label="matching")
    _valid_envelope(event)
    assert matches(pattern, event)
    assert compiled.matches(json.dumps(event))
    if Analysis(compiled.parsed, EnvelopeSpec()).static_violation is None:
        with pytest.raises(InvalidArgument, match="Every valid event matches"):
            non_matching_events(pattern).validate()
        return
    other = data.draw(non_matching_events(pattern, arrays=arrays), label="non-matching")
    _valid_envelope(other)
    assert not matches(pattern, other)
    assert compiled.explain(other)


# --- one pattern per operator, by hand -----------------------------------------------------------

EXAMPLES: list[dict[str, Any]] = [
    {"source": ["com.example"], "detail-type": [{"exactly": "Order Placed"}]},
    {"detail": {"n": [5, "5", None, True]}},
    {"detail": {"s": [{"prefix": "ord-"}]}, "source": [{"suffix": ".orders"}]},
    {"detail": {"s": [{"prefix": {"equals-ignore-case": "ORD"}}, {"suffix": {"equals-ignore-case": "Xy"}}]}},
    {"detail": {"s": [{"equals-ignore-case": "Straße"}]}},
    {"detail": {"s": [{"wildcard": "a*b*c"}, {"wildcard": "x\\*y*"}]}},
    {"detail": {"s": [{"anything-but": ["a", "b"]}], "n": [{"anything-but": [1, 2]}]}},
    {"detail": {"s": [{"anything-but": {"prefix": "tmp"}}], "t": [{"anything-but": {"suffix": ["x", "y"]}}]}},
    {"detail": {"s": [{"anything-but": {"equals-ignore-case": ["A", "b"]}}]}},
    {"detail": {"s": [{"anything-but": {"wildcard": "*.tmp"}}]}},
    {"detail": {"n": [{"numeric": [">", 0, "<=", 5]}], "m": [{"numeric": ["=", 3.5]}]}},
    {"detail": {"n": [{"numeric": ["<", -1e9]}], "m": [{"numeric": [">=", 1e9]}]}},
    {"detail": {"gone": [{"exists": False}], "here": [{"exists": True}]}},
    {"detail": {"ip": [{"cidr": "10.0.0.0/24"}], "ip6": [{"cidr": "2001:db8::/32"}]}},
    {"$or": [{"source": ["a"]}, {"detail": {"x": [1]}}, {"detail-type": [{"prefix": "Ord"}]}]},
    {"detail": {"$or": [{"a": [1]}, {"b": [{"exists": False}]}], "c": ["x"]}},
    {"detail": {"a": [1], "a.b": [2], "a.b.c": [{"exists": True}]}},
    {
        "resources": [{"prefix": "arn:aws:s3"}],
        "detail": {"items": {"sku": ["x"], "qty": [{"numeric": [">", 1]}]}},
    },
    {"account": ["111122223333"], "region": [{"prefix": "eu-"}], "time": [{"prefix": "2025-06"}]},
    {"replay-name": [{"exists": True}]},
    {"detail": {"s": [{"wildcard": "*"}]}},
    {"detail": {"x": [{"numeric": [">", 0, "<", 5e-324]}, "fallback"]}},
]


@pytest.mark.parametrize("pattern", EXAMPLES, ids=lambda p: json.dumps(p)[:60])
def test_hand_written_patterns(pattern: dict[str, Any]) -> None:
    @settings(max_examples=25, deadline=None, database=None)
    @given(
        st.booleans().flatmap(
            lambda arrays: st.tuples(
                matching_events(pattern, arrays=arrays), non_matching_events(pattern, arrays=arrays)
            )
        )
    )
    def inner(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
        good, bad = pair
        _valid_envelope(good)
        _valid_envelope(bad)
        assert matches(pattern, good)
        assert not matches(pattern, bad)

    inner()


@settings(max_examples=30, deadline=None)
@given(
    matching_events(
        {"account": [{"exists": True}], "detail": {"a": [1]}}, account="210987654321", region="eu-north-1"
    )
)
def test_pinned_account_and_region(event: dict[str, Any]) -> None:
    assert event["account"] == "210987654321"
    assert event["region"] == "eu-north-1"


# --- asking for the impossible ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ({"source": [5]}, "source is a non-empty string"),
        ({"foo": ["x"]}, "no top-level field 'foo'"),
        ({"detail": ["x"]}, "never a leaf"),
        ({"detail": {"n": [{"numeric": [">", 0, "<", 5e-324]}]}}, "detail.n"),
        ({"account": ["12"]}, "twelve digits"),
    ],
)
def test_unmatchable_patterns_say_why(pattern: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidArgument, match="No valid event matches") as info:
        matching_events(pattern).validate()
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ({"detail": {"x": [{"exists": True}, {"exists": False}]}}, "accepts absence"),
        ({"detail": [{"exists": False}]}, "never holds a leaf"),
        ({"foo": [{"exists": False}]}, "never holds a leaf"),
        ({"source": [{"prefix": ""}]}, "always present"),
        ({"detail": {"$or": [{"x": [{"exists": True}]}, {"x": [{"exists": False}]}]}}, "every $or branch"),
    ],
)
def test_unrefutable_patterns_say_why(pattern: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidArgument, match="Every valid event matches") as info:
        non_matching_events(pattern).validate()
    assert words in str(info.value)
    assert "Remove" in str(info.value)


def test_invalid_pattern_is_an_invalid_argument_with_aws_words() -> None:
    with pytest.raises(InvalidArgument, match="Event pattern is not valid"):
        matching_events({"detail": []}).validate()


def _has_array(value: Any) -> bool:
    if isinstance(value, list):
        return True
    return isinstance(value, dict) and any(_has_array(v) for v in value.values())


def test_scalars_unless_arrays_are_asked_for() -> None:
    pattern = {"detail": {"order": {"total": [{"numeric": [">=", 100]}], "id": [{"prefix": "o-"}]}}}
    seen = []

    @settings(max_examples=40, deadline=None, database=None)
    @given(matching_events(pattern), matching_events(pattern, arrays=True))
    def inner(plain: dict[str, Any], arrayed: dict[str, Any]) -> None:
        order = plain["detail"]["order"]
        assert order["total"] >= 100 and order["id"].startswith("o-")
        seen.append(_has_array(arrayed["detail"]["order"]))

    inner()
    assert any(seen)


def test_non_matching_events_are_mostly_near_misses() -> None:
    pattern = {"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}], "id": [{"prefix": "o-"}]}}
    compiled = Pattern(pattern)
    broken: list[list[str]] = []

    @settings(max_examples=60, deadline=None, database=None)
    @given(non_matching_events(pattern))
    def inner(event: dict[str, Any]) -> None:
        broken.append(compiled.explain(event))

    inner()
    single = [lines for lines in broken if len(lines) == 1]
    assert len(single) >= len(broken) // 2
    # Each field gets its turn at being the broken one.
    assert {lines[0].split(":")[0] for lines in single} == {"source", "detail.total", "detail.id"}
