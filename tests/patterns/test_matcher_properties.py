"""Differential tests: ``Matcher.match`` agrees with the reference matcher on every rule."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import Matcher, Pattern, PatternError
from eventbus.patterns.reference import matches_parsed

from .corpus import load_cases, require_corpus
from .test_matcher_strategies import (
    array_events,
    array_patterns,
    condition_json,
    event_scalars,
    events,
    literals_of,
    valid_patterns,
)


def expected(rules: dict[str, list[Pattern]], event: dict[str, Any]) -> set[str]:
    return {name for name, patterns in rules.items() if any(matches_parsed(p.parsed, event) for p in patterns)}


@settings(max_examples=300, deadline=None)
@given(st.lists(valid_patterns, min_size=1, max_size=6), st.data())
def test_agrees_with_reference(patterns: list[Pattern], data: st.DataObject) -> None:
    evs = data.draw(st.lists(events(literals_of(patterns)), min_size=1, max_size=4))
    matcher = Matcher()
    rules: dict[str, list[Pattern]] = {}
    for i, pattern in enumerate(patterns):
        name = f"r{i % 4}"  # some names hold several patterns
        matcher.add(name, pattern)
        rules.setdefault(name, []).append(pattern)
    for event in evs:
        assert matcher.match(event) == expected(rules, event), (event, [p.to_json() for p in patterns])


@settings(max_examples=100, deadline=None)
@given(st.lists(valid_patterns, min_size=2, max_size=6), st.data())
def test_agrees_after_removals(patterns: list[Pattern], data: st.DataObject) -> None:
    event = data.draw(events(literals_of(patterns)))
    matcher = Matcher()
    rules = {f"r{i}": [p] for i, p in enumerate(patterns)}
    for name, (pattern,) in rules.items():
        matcher.add(name, pattern)
    gone = data.draw(st.sets(st.sampled_from(sorted(rules)), min_size=1))
    for name in gone:
        matcher.remove(name)
        del rules[name]
    assert matcher.match(event) == expected(rules, event)
    # Re-adding restores the same answers: removal left no trace in the shared structures.
    for name in gone:
        matcher.add(name, patterns[int(name[1:])])
        rules[name] = [patterns[int(name[1:])]]
    assert matcher.match(event) == expected(rules, event)


@settings(max_examples=60, deadline=None)
@given(valid_patterns, events())
def test_json_text_and_bytes_match_like_dicts(pattern: Pattern, event: dict[str, Any]) -> None:
    matcher = Matcher()
    matcher.add("p", pattern)
    text = json.dumps(event)
    assert matcher.match(text) == matcher.match(text.encode()) == matcher.match(event)


def test_conformance_cases_all_in_one_matcher() -> None:
    """Every recorded case's pattern in one matcher: each event matches exactly the rules the
    reference matcher says, its own among them when AWS recorded a match."""
    require_corpus("patterns-aws.jsonl")
    cases = [c for c in load_cases("patterns-aws.jsonl") if c["expect"] != "error"]
    matcher = Matcher()
    rules: dict[str, list[Pattern]] = {}
    for case in cases:
        pattern = Pattern(case["pattern"])
        matcher.add(case["name"], pattern)
        rules[case["name"]] = [pattern]
    for case in cases:
        found = matcher.match(case["event"])
        assert found == expected(rules, case["event"]), case["name"]
        assert (case["name"] in found) is (case["expect"] == "match"), case["name"]


@settings(max_examples=300, deadline=None)
@given(st.lists(array_patterns(), min_size=1, max_size=5), st.lists(array_events(), min_size=1, max_size=3))
def test_agrees_on_array_consistency(patterns: list[Pattern], evs: list[dict[str, Any]]) -> None:
    """Fields inside one array of objects: a match must take them from the same element."""
    matcher = Matcher()
    rules = {f"r{i}": [p] for i, p in enumerate(patterns)}
    for name, (pattern,) in rules.items():
        matcher.add(name, pattern)
    for event in evs:
        assert matcher.match(event) == expected(rules, event), (event, [p.to_json() for p in patterns])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["f", "g.h"]), st.lists(condition_json, min_size=1, max_size=3)),
        min_size=1,
        max_size=8,
    ),
    st.data(),
)
def test_agrees_operator_by_operator(fields: list[tuple[str, list[Any]]], data: st.DataObject) -> None:
    """Many one-field rules on two paths, and events whose values are the rules' own literals
    and their variants: every index kind gets hits, near misses and wrong types."""
    rules: dict[str, list[Pattern]] = {}
    for i, (path, conditions) in enumerate(fields):
        head, _, tail = path.partition(".")
        source = {head: {tail: conditions}} if tail else {head: conditions}
        try:
            rules[f"r{i}"] = [Pattern(source)]
        except PatternError:
            continue
    matcher = Matcher()
    for name, (pattern,) in rules.items():
        matcher.add(name, pattern)
    pool = literals_of([p for ps in rules.values() for p in ps]) or ["x"]
    values = st.one_of(st.sampled_from(pool), event_scalars)
    for _ in range(4):
        value = data.draw(st.one_of(values, st.lists(values, max_size=3)))
        event = data.draw(st.sampled_from([{"f": value}, {"g": {"h": value}}, {"g.h": value, "f": value}]))
        assert matcher.match(event) == expected(rules, event), (event, {n: p[0].to_json() for n, p in rules.items()})
