"""Crowded buckets (``crowd.py``): when many rules share a source and detail-type, the bucket
they share is indexed again on their next field. Same answers as the reference matcher, as
rules come and go across the crowding threshold, and fewer candidates than rules."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import Matcher, Pattern
from eventbus.patterns.crowd import CROWD, Crowd
from eventbus.patterns.reference import matches_parsed

from .test_matcher_strategies import condition_json, event_scalars, literals_of

SOURCES = ["shop", "pay"]
TYPES = ["Order Placed", "Order Paid"]
#: Mostly operators: an exact detail value is often a better anchor than a shared source, and
#: then the rules do not crowd.
_WORDS = ["a", "ab", "b", "x.y", "10.0.0.1", "A"]
operators = st.one_of(
    st.sampled_from(_WORDS).map(lambda w: {"prefix": w}),
    st.sampled_from(_WORDS).map(lambda w: {"suffix": w}),
    st.sampled_from(_WORDS).map(lambda w: {"equals-ignore-case": w}),
    st.sampled_from(["a*", "*b", "*"]).map(lambda w: {"wildcard": w}),
    st.sampled_from(_WORDS).map(lambda w: {"anything-but": w}),
    st.sampled_from([0, 1, 5]).map(lambda n: {"numeric": [">", n]}),
    st.sampled_from([[">=", 1, "<", 5], ["=", 2]]).map(lambda r: {"numeric": r}),
    st.booleans().map(lambda b: {"exists": b}),
    st.sampled_from(["10.0.0.0/8", "::/0"]).map(lambda c: {"cidr": c}),
)
detail_conditions = st.one_of(operators, operators, operators, condition_json)


@st.composite
def shared_rule(draw: st.DrawFn) -> dict[str, Any]:
    """A rule on one of two sources, usually one of two detail-types, with one or two detail
    conditions on paths inside and outside an array."""
    rule: dict[str, Any] = {"source": [draw(st.sampled_from(SOURCES[:1] * 3 + SOURCES))]}
    if draw(st.integers(0, 9)) < 7:
        rule["detail-type"] = draw(st.lists(st.sampled_from(TYPES[:1] * 3 + TYPES), min_size=1, max_size=2, unique=True))
    detail: dict[str, Any] = {}
    for path in draw(st.sets(st.sampled_from(["a", "b", "items.sku", "items.qty"]), min_size=1, max_size=2)):
        head, _, tail = path.partition(".")
        conditions = draw(st.lists(detail_conditions, min_size=1, max_size=2))
        if tail:
            detail.setdefault(head, {})[tail] = conditions
        else:
            detail[head] = conditions
    rule["detail"] = detail
    return rule


def _valid(rules: list[dict[str, Any]]) -> list[Pattern]:
    out = []
    for rule in rules:
        try:
            out.append(Pattern(rule))
        except ValueError:
            continue
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(shared_rule(), min_size=2 * CROWD, max_size=4 * CROWD), st.data())
def test_crowded_buckets_agree_with_reference(rules: list[dict[str, Any]], data: st.DataObject) -> None:
    patterns = _valid(rules)
    matcher = Matcher()
    for i, pattern in enumerate(patterns):
        matcher.add(f"r{i}", pattern)
    live = dict(enumerate(patterns))
    pool = literals_of(patterns) or ["x"]
    values = st.one_of(st.sampled_from(pool), event_scalars)
    for round_ in range(3):
        for _ in range(3):
            detail: dict[str, Any] = {"a": data.draw(values), "b": data.draw(st.one_of(values, st.lists(values, max_size=2)))}
            detail["items"] = [
                {"sku": data.draw(values), "qty": data.draw(values)} for _ in range(data.draw(st.integers(0, 3)))
            ]
            event = {"source": data.draw(st.sampled_from(SOURCES)), "detail-type": data.draw(st.sampled_from(TYPES)), "detail": detail}
            expected = {f"r{i}" for i, p in live.items() if matches_parsed(p.parsed, event)}
            assert matcher.match(event) == expected, (event, round_)
            assert matcher.match_many([event, event]) == [expected, expected]
        # Remove some rules, crossing the threshold downwards at times, then add some back.
        gone = data.draw(st.sets(st.sampled_from(sorted(live)), max_size=max(1, len(live) // 2)))
        for i in gone:
            matcher.remove(f"r{i}")
            del live[i]
        for i in data.draw(st.sets(st.sampled_from(sorted(gone)), max_size=len(gone))) if gone else ():
            matcher.add(f"r{i}", patterns[i])
            live[i] = patterns[i]


def test_the_rules_do_crowd() -> None:
    """Most draws of the property above build at least one crowd."""
    formed: list[bool] = []

    @settings(max_examples=100, database=None)
    @given(st.lists(shared_rule(), min_size=2 * CROWD, max_size=4 * CROWD))
    def collect(rules: list[dict[str, Any]]) -> None:
        matcher = Matcher()
        for i, pattern in enumerate(_valid(rules)):
            matcher.add(f"r{i}", pattern)
        formed.append(bool(_crowds(matcher)))

    collect()
    assert sum(formed) / len(formed) > 0.5


def _crowds(matcher: Matcher) -> list[Crowd[Any]]:
    snapshot = matcher._snapshot
    buckets: list[Any] = [b for index in snapshot.indexes.values() for b in index.exact.values()]
    buckets += [b for seconds in snapshot.pairs.values() for table in seconds.values() for inner in table.values() for b in inner.values()]
    return [b[0] for b in buckets if type(b[0]) is Crowd]


def test_a_crowd_forms_past_the_threshold_and_dissolves_below_half() -> None:
    matcher = Matcher()
    for i in range(CROWD + 1):
        # The source is the only exact field: every rule is filed under it.
        matcher.add(f"r{i}", {"source": ["shop"], "detail": {"s": [{"prefix": f"p{i}-"}]}})
    (crowd,) = _crowds(matcher)
    assert len(crowd) == CROWD + 1
    # Inside, each rule is filed under its prefix: an event meets the rule for its own value.
    hits: list[tuple[Any, ...]] = []
    crowd.expand({"source": ["shop"], "detail.s": ["p3-x"]}, hits)
    assert [branch.name for bucket in hits for branch in bucket] == ["r3"]
    assert matcher.match({"source": "shop", "detail": {"s": "p3-x"}}) == {"r3"}
    assert matcher.match({"source": "shop", "detail": {"s": "q"}}) == set()
    for i in range(CROWD // 2 + 1):
        matcher.remove(f"r{i}")
    assert _crowds(matcher) == []
    assert matcher.match({"source": "shop", "detail": {"s": f"p{CROWD}-"}}) == {f"r{CROWD}"}


def test_match_many_reads_one_snapshot_and_rejects_bad_text_first() -> None:
    matcher = Matcher()
    matcher.add("r", {"source": ["shop"]})
    assert matcher.match_many([{"source": "shop"}, '{"source": "pay"}', b'{"source": "shop"}']) == [{"r"}, set(), {"r"}]
    assert Matcher().match_many([{"source": "shop"}]) == [set()]
    try:
        matcher.match_many([{"source": "shop"}, "not json"])
    except ValueError as exc:
        assert "not valid JSON" in str(exc)
    else:
        raise AssertionError("bad JSON text was accepted")
