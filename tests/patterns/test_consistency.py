"""Array consistency decided exactly and in linear time: differential tests against the
reference matcher on events built to stress it (arrays of objects and of arrays nested several
levels, ``exists: false`` among them, and one path spelled two ways with arrays among the
values), and the pathological events (a backtracking search took seconds on them) run in a subprocess that must finish."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import Matcher, Pattern
from eventbus.patterns.reference import matches_parsed

KEYS = ["a", "b", "c", "a.b", "b.a", "a.c"]
SCALARS: list[Any] = [1, 2, "x", None, True]

scalars = st.sampled_from(SCALARS)
event_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=14,
)
nested_events = st.dictionaries(st.sampled_from(KEYS), event_values, min_size=1, max_size=4)

PATHS = ["a", "b", "c", "a.a", "a.b", "a.c", "b.a", "b.b", "a.b.a", "a.b.c", "a.a.b", "b.a.c"]
conditions = st.sampled_from(
    [
        [1],
        [2],
        ["x"],
        [None],
        [1, "x"],
        [{"exists": True}],
        [{"exists": False}],
        [{"exists": False}, 1],
        [{"anything-but": 1}],
        [{"numeric": [">", 1]}],
        [{"prefix": "x"}],
    ]
)


@st.composite
def nested_patterns(draw: st.DrawFn) -> Pattern:
    fields = draw(st.dictionaries(st.sampled_from(PATHS), conditions, min_size=1, max_size=4))
    source: dict[str, Any] = {}
    for path, condition in fields.items():
        # Each path as one dotted key: a pattern's spelling of a path does not matter.
        source[path] = condition
    return Pattern(source, max_size=None)


@settings(max_examples=1_500, deadline=None)
@given(st.lists(nested_patterns(), min_size=1, max_size=4), st.lists(nested_events, min_size=1, max_size=3))
def test_nested_arrays_and_two_spellings_agree_with_reference(patterns: list[Pattern], events: list[dict[str, Any]]) -> None:
    matcher = Matcher()
    for i, pattern in enumerate(patterns):
        matcher.add(f"r{i}", pattern)
    for event in events:
        expected = {f"r{i}" for i, p in enumerate(patterns) if matches_parsed(p.parsed, event)}
        assert matcher.match(event) == expected, (event, [p.to_json() for p in patterns])
        assert {f"r{i}" for i, p in enumerate(patterns) if p.matches(event)} == expected
        assert matcher.match(json.dumps(event)) == expected


def test_a_path_spelled_two_ways_with_an_array_is_one_array() -> None:
    """``a.b`` as a dotted key and as nested objects, both holding arrays: their elements are
    elements of one array, so fields must be found in one of them."""
    pattern = Pattern({"a": {"b": {"p": [1], "q": [2]}}})
    split = {"a.b": [{"p": 1}], "a": {"b": [{"q": 2}]}}
    together = {"a.b": [{"p": 1}], "a": {"b": [{"q": 2}, {"p": 1, "q": 2}]}}
    for event, expected in ((split, False), (together, True)):
        assert matches_parsed(pattern.parsed, event) is expected
        assert pattern.matches(event) is expected
        matcher = Matcher()
        matcher.add("r", pattern)
        assert (matcher.match(event) == {"r"}) is expected
    # A scalar beside an array at one position is one more element of it.
    mixed = {"a": {"b": [{"q": 2}]}, "a.b": 7}
    both = Pattern({"a": {"b": [7], "b.q": [2]}})
    assert matches_parsed(both.parsed, mixed) is False
    assert both.matches(mixed) is False


def test_a_list_object_used_twice_in_a_dict_event_is_two_arrays() -> None:
    """Array identity is the position in the event, not the Python object: the same list at
    two keys reads as two arrays, as its JSON text would."""
    shared = [1, 2]
    event = {"a": shared, "b": shared}
    pattern = Pattern({"a": [1], "b": [2]})
    assert matches_parsed(pattern.parsed, event) is True
    assert pattern.matches(event) is True
    rows = [{"p": 1, "q": 2}]
    nested = Pattern({"x": {"p": [1]}, "y": {"q": [3]}})
    assert nested.matches({"x": rows, "y": [{"q": 3}]}) is True


def test_arrays_nested_thousands_deep_are_walked_without_recursion() -> None:
    value: Any = {"p": 1, "q": 2}
    for _ in range(5_000):
        value = [value]
    event = {"a": value}
    for pattern, expected in (({"a": {"p": [1], "q": [2]}}, True), ({"a": {"p": [1], "q": [{"exists": False}]}}, False)):
        assert Pattern(pattern).matches(event) is expected
        matcher = Matcher()
        matcher.add("r", pattern)
        assert (matcher.match(event) == {"r"}) is expected


# --- the pathological events: they must finish -------------------------------------------------

_SCRIPT = """
import json, sys
from eventbus import Matcher, Pattern

def three_levels(n):
    # Arrays three levels deep, every element holding the pattern's fields, the
    # last one absent nowhere: no choice works, and a search tries them all.
    return {"a": [{"p": 1, "b": [{"q": 1, "c": [{"r": 1, "s": 1} for _ in range(n)]} for _ in range(n)]}
                  for _ in range(n)]}

def siblings(n):
    # Sibling arrays in every element: a search pairs their elements.
    return {"a": [{"b": [{"x": i} for i in range(n)], "c": [{"y": i} for i in range(n)],
                   "d": [{"z": i} for i in range(n)]} for _ in range(n)]}

cases = [
    (three_levels(23), {"a": {"p": [1], "b": {"q": [1], "c": {"r": [1], "s": [{"exists": False}]}}}}),
    (three_levels(23), {"a": {"p": [1], "b": {"q": [{"exists": False}, 1], "c": {"r": [2], "s": [1]}}}}),
    (siblings(24), {"a": {"b": {"x": [0]}, "c": {"y": [1]}, "d": {"z": [{"exists": False}]}}}),
]
for event, pattern in cases:
    text = json.dumps(event)
    assert len(text) <= 262_144, len(text)
    matcher = Matcher()
    matcher.add("r", pattern)
    compiled = Pattern(pattern)
    print(sorted(matcher.match(event)), sorted(matcher.match(text)), compiled.matches(event),
          len(compiled.explain(event)))
"""


def test_pathological_events_within_the_size_limit_finish() -> None:
    """Each took from seconds (``Matcher``) to hours (``Pattern.matches``, the reference
    search) before the exact decision; now all of them, with ``explain``, finish in well under
    a second. The bound here only catches a return of the exponential search."""
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120, check=True)
    lines = done.stdout.splitlines()
    assert lines == ["[] [] False 1", "[] [] False 1", "[] [] False 1"], done.stdout + done.stderr
