"""Reading an event's JSON text (``load_event``): pydantic-core's reader first, json's for whatever
it refuses. Whichever reads it, the event is the one ``json.loads`` gives, type for type, and
what json refuses is refused with the same message as before."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventbus import InvalidEventError
from eventbus.patterns.index import PathIndex
from eventbus.patterns.pattern import load_event
from eventbus.patterns.reading import read_json

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),  # lone surrogates included: json writes them escaped, and reads them back
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=30)


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (``True == 1`` and ``1 == 1.0`` are not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


@given(st.dictionaries(st.text(max_size=8), values, max_size=6), st.booleans(), st.sampled_from([None, 0, 2]))
def test_an_event_reads_as_json_reads_it(event: dict[str, Any], ascii_only: bool, indent: int | None) -> None:
    text = json.dumps(event, ensure_ascii=ascii_only, indent=indent)
    assert _same(load_event(text), json.loads(text))
    if ascii_only:  # as bytes too (text with raw lone surrogates has no UTF-8 spelling)
        assert _same(load_event(text.encode()), json.loads(text))


@given(values, st.booleans())
def test_stored_json_reads_as_json_reads_it(value: Any, ascii_only: bool) -> None:
    # What the JetStream log and queue read back: records and deliveries they wrote.
    text = json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"))
    assert _same(read_json(text), json.loads(text))
    if ascii_only:
        assert _same(read_json(text.encode()), json.loads(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"s": "\\ud800"}', {"s": "\ud800"}),  # a lone surrogate, escaped: json's reading
        ('{"n": -0}', {"n": 0}),
        ('{"n": -0.0}', {"n": -0.0}),
        ('{"n": 1e400}', {"n": math.inf}),
        ('{"n": 123456789012345678901234567890}', {"n": 123456789012345678901234567890}),
        ('{"a": 1, "a": 2}', {"a": 2}),
        ('{"a": ' + "[" * 300 + "]" * 300 + "}", json.loads('{"a": ' + "[" * 300 + "]" * 300 + "}")),  # deeper than 200
    ],
)
def test_what_the_fast_reader_refuses_or_reads_its_own_way(text: str, expected: dict[str, Any]) -> None:
    assert _same(load_event(text), expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"n": NaN}', "Event is not valid JSON: NaN is not valid JSON"),
        ("\ufeff{}", "Event is not valid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)"),
        ('{"a": 1', "Event is not valid JSON: Expecting ',' delimiter: line 1 column 8 (char 7)"),
        ("[1, 2]", "Event must be a JSON object"),
    ],
)
def test_refusals_keep_their_messages(text: str, message: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        load_event(text)
    assert str(caught.value) == message


def test_an_index_copy_holds_every_table() -> None:
    """``PathIndex.copy`` names its attributes one by one (the compiled build has no slot list
    to walk): a table added to the class must be added there too."""
    slots = getattr(PathIndex, "__slots__", None)
    if not isinstance(slots, tuple):
        pytest.skip("the compiled PathIndex has no __slots__ to compare with (EVENTBUS_PURE_PYTHON=1 runs this)")
    index: PathIndex[str] = PathIndex()
    for anchor in [("exact", "a", True), ("prefix", "p", True), ("numeric", (1, False, None, False), True), ("present", None, True)]:
        index.add(anchor, "x")  # type: ignore[arg-type]
    copy = index.copy()
    assert all(getattr(copy, name) is getattr(index, name) for name in slots)
