"""``Pattern``: one EventBridge event pattern, validated once, matched many times, and explained."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from eventbus.patterns.compiled import CompiledPattern
from eventbus.patterns.parse import DEFAULT_MAX_PATTERN_SIZE, Branch, ParsedPattern, parse_pattern
from eventbus.patterns.reading import EventInput, load_event
from eventbus.patterns.reference import leaves_at

__all__ = ["EventInput", "Pattern", "PatternInput", "load_event"]

PatternInput = Mapping[str, Any] | str | bytes


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class Pattern:
    """An EventBridge event pattern.

    >>> p = Pattern({"detail": {"total": [{"numeric": [">", 100]}]}})
    >>> p.matches({"detail": {"total": 150}})
    True
    >>> p.explain({"detail": {"total": 42}})
    ['detail.total: numeric [">", 100] did not match 42']

    Invalid patterns raise ``PatternError`` whose ``str()`` is AWS's message.
    """

    __slots__ = ("_compiled", "_parsed", "_source_text")

    def __init__(self, source: PatternInput | Pattern, *, max_size: int | None = DEFAULT_MAX_PATTERN_SIZE):
        #: Built by the first ``matches``: a ``Matcher`` only needs ``parsed``.
        self._compiled: CompiledPattern | None = None
        if isinstance(source, Pattern):
            self._parsed: ParsedPattern = source._parsed
            self._source_text: str = source._source_text
            self._compiled = source._compiled
            return
        self._parsed = parse_pattern(source, max_size=max_size)
        self._source_text = json.dumps(self._parsed.source, separators=(",", ":"), ensure_ascii=False)

    @property
    def parsed(self) -> ParsedPattern:
        """The compiled form the matchers consume: ``$or`` expanded into branches of field rules."""
        return self._parsed

    @property
    def branches(self) -> tuple[Branch, ...]:
        return self._parsed.branches

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self._source_text)
        return result

    def to_json(self) -> str:
        return self._source_text

    def matches(self, event: EventInput) -> bool:
        """Does the event match? ``event`` is a dict, JSON text or UTF-8 bytes.

        Time close to linear in the event's size, as ``Matcher.match``.
        """
        return self._matches(load_event(event))

    def _matches(self, data: Mapping[str, Any]) -> bool:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = CompiledPattern(self._parsed)
        return compiled.matches(data)

    def explain(self, event: EventInput) -> list[str]:
        """Why the event does not match, one line a failed condition; ``[]`` when it matches."""
        data = load_event(event)
        if self._matches(data):
            return []
        branches = self._parsed.branches
        if len(branches) == 1:
            return _explain_branch(branches[0], data)
        lines: list[str] = []
        for number, branch in enumerate(branches, 1):
            lines.extend(f"$or branch {number}: {line}" for line in _explain_branch(branch, data))
        return lines

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and other._source_text == self._source_text

    def __hash__(self) -> int:
        return hash(self._source_text)

    def __repr__(self) -> str:
        text = self._source_text if len(self._source_text) <= 120 else self._source_text[:117] + "..."
        return f"Pattern({text})"


def _explain_branch(branch: Branch, event: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    satisfied: list[str] = []
    for rule in branch:
        leaves = list(leaves_at(event, rule.path))
        wanted = rule.requires_leaf
        good = [leaf for leaf in leaves if any(c.test(leaf[0]) for c in wanted)]
        absent_ok = rule.allows_absence and not leaves
        if good or absent_ok:
            satisfied.append(rule.dotted)
            continue
        conditions = [c.describe() for c in rule.conditions]
        wanted_text = conditions[0] if len(conditions) == 1 else "none of [" + ", ".join(conditions) + "]"
        if not leaves:
            lines.append(f"{rule.dotted}: missing")
            continue
        values = [leaf[0] for leaf in leaves]
        shown = _show(values[0]) if len(values) == 1 else _show(values)
        verb = "did not match" if len(conditions) == 1 else "matched"
        lines.append(f"{rule.dotted}: {wanted_text} {verb} {shown}")
    if not lines:
        # Every field is fine on its own: the failure is array consistency or an absence that
        # only holds in some array elements.
        lines.append(
            "fields "
            + ", ".join(satisfied)
            + " each match, but not within the same element of an event array"
        )
    return lines
