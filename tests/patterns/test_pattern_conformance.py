"""Every case AWS recorded: the verdict, and for invalid patterns the exact message."""

from __future__ import annotations

from typing import Any

import pytest

from eventbus import Matcher, Pattern, PatternError
from eventbus.patterns.reference import matches as reference_matches

from .corpus import load_cases, require_corpus

CASES = load_cases("patterns-aws.jsonl")
IDS = [case["name"] for case in CASES]


def test_corpus_is_complete() -> None:
    require_corpus("patterns-aws.jsonl")
    assert len(CASES) == 155
    kinds = [case["expect"] for case in CASES]
    assert (kinds.count("match"), kinds.count("no-match"), kinds.count("error")) == (66, 51, 38)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_pattern_case(case: dict[str, Any]) -> None:
    if case["expect"] == "error":
        with pytest.raises(PatternError) as info:
            Pattern(case["pattern"])
        assert str(info.value) == case["error_message"]
        assert info.value.error_code == case["error_code"]
        return
    pattern = Pattern(case["pattern"])
    expected = case["expect"] == "match"
    assert pattern.matches(case["event"]) is expected
    assert reference_matches(case["pattern"], case["event"]) is expected
    assert (pattern.explain(case["event"]) == []) is expected


@pytest.mark.parametrize("case", [c for c in CASES if c["expect"] != "error"], ids=lambda c: c["name"])
def test_matcher_agrees_on_case(case: dict[str, Any]) -> None:
    matcher = Matcher()
    matcher.add("rule", case["pattern"])
    assert (matcher.match(case["event"]) == {"rule"}) is (case["expect"] == "match")
