"""Properties of the pattern language that must hold for any event and pattern."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from eventbus import Pattern, PatternError
from eventbus.patterns.reference import matches as reference_matches

keys = st.text(alphabet="abcdefgh-_", min_size=1, max_size=6)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)
events = st.dictionaries(keys, json_values, min_size=1, max_size=6)


def _leaf_pattern(event: Any) -> Any:
    """A pattern built from the event's own values: every leaf's value as an exact match."""
    if isinstance(event, dict):
        out = {}
        for key, value in event.items():
            sub = _leaf_pattern(value)
            if sub is not None:
                out[key] = sub
        return out or None
    if isinstance(event, list):
        scalars_here = [v for v in event if not isinstance(v, dict | list)]
        return scalars_here[:1] or None
    return [event]


@settings(max_examples=200, deadline=None)
@given(events)
def test_pattern_from_event_values_matches_it(event: dict[str, Any]) -> None:
    pattern = _leaf_pattern(event)
    assume(pattern is not None)
    try:
        compiled = Pattern(pattern, max_size=None)
    except PatternError:
        assume(False)
        raise
    assert compiled.matches(event)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=10), st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False)))
def test_anything_but_never_matches_its_own_value(value: Any) -> None:
    pattern = Pattern({"field": [{"anything-but": value}]})
    assert not pattern.matches({"field": value})
    assert not pattern.matches({"field": [value]})


@settings(max_examples=200, deadline=None)
@given(st.integers(-(10**9), 10**9), st.integers(0, 6), st.sampled_from(["plain", "exp", "decimal"]))
def test_numeric_equals_matches_any_spelling(mantissa: int, scale: int, style: str) -> None:
    value = Decimal(mantissa).scaleb(-scale)
    pattern = Pattern({"n": [{"numeric": ["=", float(value)]}]})
    if style == "plain":
        text = format(value, "f")
    elif style == "exp":
        text = format(value, "e")
    else:
        text = format(value, "f") + "000" if "." in format(value, "f") else format(value, "f") + ".0"
    assert pattern.matches('{"n": ' + text + "}")


@settings(max_examples=200, deadline=None)
@given(events)
def test_patterns_survive_a_json_round_trip(event: dict[str, Any]) -> None:
    pattern = _leaf_pattern(event)
    assume(pattern is not None)
    compiled = Pattern(pattern, max_size=None)
    again = Pattern(compiled.to_json(), max_size=None)
    assert again == compiled
    assert again.to_dict() == compiled.to_dict()
    assert again.matches(event) == compiled.matches(event)


operators = st.one_of(
    scalars.map(lambda v: [v]),
    st.text(max_size=4).map(lambda s: [{"prefix": s}]),
    st.text(max_size=4).map(lambda s: [{"suffix": s}]),
    st.text(max_size=4).map(lambda s: [{"equals-ignore-case": s}]),
    st.text(max_size=4).map(lambda s: [{"anything-but": s}]),
    st.integers(-100, 100).map(lambda n: [{"numeric": [">", n]}]),
    st.booleans().map(lambda b: [{"exists": b}]),
)


@settings(max_examples=300, deadline=None)
@given(events, st.dictionaries(keys, operators, min_size=1, max_size=3), keys, operators)
def test_adding_a_field_never_turns_a_non_match_into_a_match(
    event: dict[str, Any], base: dict[str, Any], extra_key: str, extra: Any
) -> None:
    assume(extra_key not in base)
    before = reference_matches(base, event)
    after = reference_matches({**base, extra_key: extra}, event)
    assert not (after and not before)
    assert Pattern({**base, extra_key: extra}, max_size=None).matches(event) == after


def test_equal_patterns_hash_alike() -> None:
    a = Pattern('{"a": [1, 2]}')
    b = Pattern({"a": [1, 2]})
    assert a == b and hash(a) == hash(b)
    assert json.loads(a.to_json()) == {"a": [1, 2]}
