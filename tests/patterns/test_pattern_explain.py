"""``Pattern.explain``: what failed, and what the event held there."""

from __future__ import annotations

from eventbus import Pattern


def test_numeric_failure_names_the_value() -> None:
    pattern = Pattern({"detail": {"total": [{"numeric": [">", 100]}]}})
    assert pattern.explain({"detail": {"total": 42}}) == ['detail.total: numeric [">", 100] did not match 42']


def test_missing_field() -> None:
    pattern = Pattern({"detail": {"state": ["running"]}})
    assert pattern.explain({"detail": {}}) == ["detail.state: missing"]
    assert pattern.explain({"detail": {"state": {"nested": "object"}}}) == ["detail.state: missing"]


def test_several_alternatives() -> None:
    pattern = Pattern({"source": ["a", {"prefix": "b"}]})
    assert pattern.explain({"source": "c"}) == ['source: none of ["a", prefix "b"] matched "c"']


def test_only_failing_fields_are_listed() -> None:
    pattern = Pattern({"source": ["shop"], "detail": {"total": [{"numeric": [">=", 10]}]}})
    assert pattern.explain({"source": "shop", "detail": {"total": 3}}) == [
        'detail.total: numeric [">=", 10] did not match 3'
    ]


def test_exists_false_failure() -> None:
    pattern = Pattern({"detail": {"error": [{"exists": False}]}})
    assert pattern.explain({"detail": {"error": "boom"}}) == [
        'detail.error: exists false did not match "boom"'
    ]


def test_array_values_are_shown_whole() -> None:
    pattern = Pattern({"resources": ["arn:x"]})
    assert pattern.explain({"resources": ["arn:y", "arn:z"]}) == [
        'resources: "arn:x" did not match ["arn:y", "arn:z"]'
    ]


def test_array_consistency_is_explained() -> None:
    pattern = Pattern({"items": {"sku": ["A"], "qty": [2]}})
    event = {"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]}
    assert not pattern.matches(event)
    (line,) = pattern.explain(event)
    assert "items.qty" in line and "items.sku" in line and "same element" in line


def test_or_branches_are_numbered() -> None:
    pattern = Pattern({"$or": [{"a": [1]}, {"b": [2]}]})
    assert pattern.explain({"a": 0}) == ["$or branch 1: a: 1 did not match 0", "$or branch 2: b: missing"]


def test_match_explains_nothing() -> None:
    assert Pattern({"a": [1]}).explain('{"a": 1}') == []
