"""Crowded buckets (``crowd.py``): when many rules share a source and detail-type, the bucket
they share is indexed again on their next field. Same answers as the reference matcher, as
rules come and go across the crowding threshold, and fewer candidates than rules."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import Matcher, Pattern
from eventbus.patterns.crowd import CROWD, Crowd
from eventbus.patterns.reference import matches_parsed

from .test_matcher_strategies import event_scalars, literals_of

SOURCES = ["shop", "pay"]
TYPES = ["Order Placed", "Order Paid"]
_WORDS = ["a", "ab", "b", "x.y", "10.0.0.1", "A", "", "abc"]
#: Mostly operators: an exact detail value is often a better anchor than a shared source, and
#: then the rules do not crowd.
CONDITIONS: list[Any] = [
    *({"prefix": w} for w in _WORDS if w),
    *({"suffix": w} for w in _WORDS if w),
    *({"equals-ignore-case": w} for w in _WORDS),
    *({"prefix": {"equals-ignore-case": w}} for w in _WORDS[:3]),
    *({"wildcard": w} for w in ("a*", "*b", "*", "a*c")),
    *({"anything-but": w} for w in _WORDS[:4]),
    {"anything-but": [1, 5]},
    {"anything-but": {"prefix": "a"}},
    *({"numeric": r} for r in ([">", 0], [">", 1], [">=", 5], ["<", 2], [">=", 1, "<", 5], ["=", 2])),
    {"exists": True},
    {"exists": False},
    {"cidr": "10.0.0.0/8"},
    {"cidr": "::/0"},
    *_WORDS,
    1,
    2,
    None,
    True,
]


def shared_rules(seed: int, count: int) -> list[dict[str, Any]]:
    """Rules on one of two sources (mostly the first), usually on one or two detail-types, with
    one or two detail conditions on paths inside and outside an array. Built from a seed, so
    that hypothesis draws two integers, not hundreds of values, for a list of rules."""
    rng = random.Random(seed)
    rules = []
    for _ in range(count):
        rule: dict[str, Any] = {"source": [rng.choice(SOURCES[:1] * 3 + SOURCES)]}
        if rng.random() < 0.7:
            rule["detail-type"] = sorted(set(rng.choices(TYPES[:1] * 3 + TYPES, k=rng.randint(1, 2))))
        detail: dict[str, Any] = {}
        for path in rng.sample(["a", "b", "items.sku", "items.qty"], rng.randint(1, 2)):
            head, _, tail = path.partition(".")
            conditions = rng.sample(CONDITIONS, rng.randint(1, 2))
            if tail:
                detail.setdefault(head, {})[tail] = conditions
            else:
                detail[head] = conditions
        rule["detail"] = detail
        rules.append(rule)
    return rules


def _valid(rules: list[dict[str, Any]]) -> list[Pattern]:
    out = []
    for rule in rules:
        try:
            out.append(Pattern(rule))
        except ValueError:
            continue
    return out


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32), st.integers(2 * CROWD, 4 * CROWD), st.data())
def test_crowded_buckets_agree_with_reference(seed: int, count: int, data: st.DataObject) -> None:
    patterns = _valid(shared_rules(seed, count))
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
    """Most rule sets of the property above build at least one crowd (seeds 0 to 99: fixed,
    so the share cannot change from one run to the next)."""
    formed = []
    for seed in range(100):
        matcher = Matcher()
        for i, pattern in enumerate(_valid(shared_rules(seed, 2 * CROWD + seed % (2 * CROWD)))):
            matcher.add(f"r{i}", pattern)
        formed.append(bool(_crowds(matcher)))
    assert sum(formed) >= 50


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
