"""Every case AWS recorded: the verdict, and for invalid patterns the exact message."""

from __future__ import annotations

from typing import Any

import pytest

from eventbus import Matcher, Pattern, PatternError
from eventbus.patterns.reference import matches as reference_matches

from .corpus import case_params, load_cases, require_corpus

CORPUS = "patterns-aws.jsonl"
CASES = load_cases(CORPUS)


def test_corpus_is_complete() -> None:
    require_corpus(CORPUS)
    assert len(CASES) == 155
    kinds = [case["expect"] for case in CASES]
    assert (kinds.count("match"), kinds.count("no-match"), kinds.count("error")) == (66, 51, 38)


@pytest.mark.parametrize("case", case_params(CORPUS, CASES))
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


@pytest.mark.parametrize("case", case_params(CORPUS, [c for c in CASES if c["expect"] != "error"]))
def test_matcher_agrees_on_case(case: dict[str, Any]) -> None:
    matcher = Matcher()
    matcher.add("rule", case["pattern"])
    assert (matcher.match(case["event"]) == {"rule"}) is (case["expect"] == "match")
