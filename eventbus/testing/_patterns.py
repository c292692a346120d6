"""Random EventBridge patterns: every operator, ``$or``, dotted paths, within a size bound.

Fields sit where a valid envelope can satisfy them: string operators on ``source``,
``detail-type`` and ``resources``; anything under ``detail``. Keys come from a small set so that
fields of different ``$or`` branches meet on the same paths, which is where matchers go wrong.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from eventbus.errors import PatternError
from eventbus.patterns.parse import parse_pattern
from eventbus.testing._analysis import Analysis
from eventbus.testing._layout import EnvelopeSpec, place

__all__ = ["OPERATORS", "pattern_dicts"]

#: Operator names ``patterns(operators=...)`` takes: the condition kinds of
#: ``eventbus.patterns.values`` plus ``$or``.
OPERATORS: tuple[str, ...] = (
    "exact",
    "prefix",
    "prefix-ignore-case",
    "suffix",
    "suffix-ignore-case",
    "equals-ignore-case",
    "wildcard",
    "anything-but",
    "anything-but-prefix",
    "anything-but-suffix",
    "anything-but-ignore-case",
    "anything-but-wildcard",
    "numeric",
    "exists",
    "cidr",
    "$or",
)
# Operators that a string-only field (source, detail-type, resources) can satisfy.
_STRING_OPERATORS = frozenset(OPERATORS) - {"numeric", "$or"}

_KEYS = ("a", "b", "c", "id", "state", "n")
_TEXT = st.text(st.sampled_from("abAB.-:01é"), max_size=4)
_NON_EMPTY = st.text(st.sampled_from("abAB.-:01é"), min_size=1, max_size=4)
_NUMBER = st.one_of(st.integers(-100, 100), st.floats(-1000, 1000).map(lambda f: round(f, 3)))


def _one_or_list(item: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(item, st.lists(item, min_size=1, max_size=3, unique=True))


def _wildcard() -> st.SearchStrategy[str]:
    # Literal * and \ escaped; never two stars in a row (an error), at most two stars.
    segment = st.text(st.sampled_from("abA.-*\\"), max_size=3).map(
        lambda s: s.replace("\\", "\\\\").replace("*", "\\*")
    )
    inner = segment.filter(bool)
    return st.one_of(
        segment,
        st.tuples(segment, segment).map("*".join),
        st.tuples(segment, inner, segment).map("*".join),
    )


def _numeric() -> st.SearchStrategy[list[Any]]:
    def ranged(pair: tuple[float, float, str, str]) -> list[Any]:
        a, b, low_op, high_op = pair
        low, high = min(a, b), max(a, b)
        if low == high:
            high = low + 1
        return [low_op, low, high_op, high]

    return st.one_of(
        st.tuples(st.sampled_from(["=", "<", "<=", ">", ">="]), _NUMBER).map(list),
        st.tuples(_NUMBER, _NUMBER, st.sampled_from([">", ">="]), st.sampled_from(["<", "<="])).map(ranged),
    )


def _cidr() -> st.SearchStrategy[str]:
    v4 = st.tuples(st.ip_addresses(v=4), st.integers(0, 32))
    v6 = st.tuples(st.ip_addresses(v=6), st.integers(0, 128))
    return st.one_of(v4, v6).map(lambda p: f"{p[0]}/{p[1]}")


def _condition(operator: str, strings_only: bool) -> st.SearchStrategy[Any]:
    if operator == "exact":
        values: list[st.SearchStrategy[Any]] = [_TEXT, _TEXT.map(lambda s: {"exactly": s})]
        if not strings_only:
            values += [_NUMBER, st.booleans(), st.none()]
        return st.one_of(values)
    if operator in ("prefix", "suffix"):
        return _TEXT.map(lambda s: {operator: s})
    if operator in ("prefix-ignore-case", "suffix-ignore-case"):
        name = operator.split("-")[0]
        return _TEXT.map(lambda s: {name: {"equals-ignore-case": s}})
    if operator == "equals-ignore-case":
        return _TEXT.map(lambda s: {"equals-ignore-case": s})
    if operator == "wildcard":
        return _wildcard().map(lambda s: {"wildcard": s})
    if operator == "anything-but":
        numbers = st.one_of(st.integers(-100, 100), st.lists(st.integers(-100, 100), min_size=1, max_size=3))
        return st.one_of(_one_or_list(_TEXT), numbers).map(lambda v: {"anything-but": v})
    if operator in ("anything-but-prefix", "anything-but-suffix"):
        name = operator.rsplit("-", 1)[1]
        return _one_or_list(_NON_EMPTY).map(lambda v: {"anything-but": {name: v}})
    if operator == "anything-but-ignore-case":
        return _one_or_list(_TEXT).map(lambda v: {"anything-but": {"equals-ignore-case": v}})
    if operator == "anything-but-wildcard":
        return _one_or_list(_wildcard()).map(lambda v: {"anything-but": {"wildcard": v}})
    if operator == "numeric":
        return _numeric().map(lambda v: {"numeric": v})
    if operator == "exists":
        return st.booleans().map(lambda v: {"exists": v})
    if operator == "cidr":
        return _cidr().map(lambda v: {"cidr": v})
    raise ValueError(operator)


def _leaf(operators: tuple[str, ...], strings_only: bool) -> st.SearchStrategy[list[Any]]:
    usable = [op for op in operators if op != "$or" and (not strings_only or op in _STRING_OPERATORS)]
    return st.lists(
        st.sampled_from(usable).flatmap(lambda op: _condition(op, strings_only)), min_size=1, max_size=3
    )


@st.composite
def _field(draw: st.DrawFn, operators: tuple[str, ...], in_detail: bool) -> tuple[str, list[Any]]:
    has_strings = any(op in _STRING_OPERATORS for op in operators)
    if in_detail or not has_strings or draw(st.integers(0, 3)) > 0:
        keys = draw(st.lists(st.sampled_from((*_KEYS, "x.y")), min_size=1, max_size=2))
        path = ".".join(keys) if in_detail else "detail." + ".".join(keys)
        return path, draw(_leaf(operators, strings_only=False))
    path = draw(st.sampled_from(("source", "detail-type", "resources")))
    return path, draw(_leaf(operators, strings_only=True))


def _nest(fields: list[tuple[str, list[Any]]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path, leaf in sorted(fields, key=lambda f: f[0].split(".")):
        try:
            place(root, path, leaf)
        except ValueError:
            continue  # the same path twice: keep the first
    return root


@st.composite
def _item(draw: st.DrawFn, operators: tuple[str, ...]) -> tuple[dict[str, Any], int]:
    """One piece of a pattern: a field, or an ``$or`` group at the top or inside ``detail``."""
    if "$or" in operators and draw(st.integers(0, 4)) == 0:
        in_detail = draw(st.booleans())
        groups = draw(
            st.lists(st.lists(_field(operators, in_detail), min_size=1, max_size=2), min_size=2, max_size=3)
        )
        alternatives = [_nest(g) for g in groups]
        size = sum(len(g) for g in groups)
        return ({"detail": {"$or": alternatives}} if in_detail else {"$or": alternatives}), size
    return _nest([draw(_field(operators, in_detail=False))]), 1


def _merge(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine pieces; a later piece that would clash with an earlier one is dropped."""
    out: dict[str, Any] = {}
    for item in items:
        for key, value in item.items():
            if key not in out:
                out[key] = value
            elif isinstance(out[key], dict) and isinstance(value, dict):
                for k, v in value.items():
                    out[key].setdefault(k, v)
    return out


@st.composite
def pattern_dicts(
    draw: st.DrawFn, *, max_fields: int, max_size: int, operators: Collection[str]
) -> dict[str, Any]:
    ops = tuple(op for op in OPERATORS if op in operators)
    drawn = draw(st.lists(_item(ops), min_size=1, max_size=max_fields))
    # Keep at most max_fields fields, then drop trailing pieces until the pattern fits max_size.
    items: list[dict[str, Any]] = []
    fields = 0
    for item, size in drawn:
        if fields + size <= max_fields:
            items.append(item)
            fields += size
    assume(items)
    for count in range(len(items), 0, -1):
        pattern = _merge(json.loads(json.dumps(items[:count])))
        if len(json.dumps(pattern, separators=(",", ":"), ensure_ascii=False)) <= max_size:
            break
    else:
        assume(False)
    try:
        parsed = parse_pattern(pattern, max_size=max_size)
    except PatternError:
        assume(False)
        raise  # pragma: no cover - assume(False) does not return
    assume(Analysis(parsed, EnvelopeSpec()).matchable)
    return pattern
