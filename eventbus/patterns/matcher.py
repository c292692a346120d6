"""``Matcher``: many named patterns matched against one event at a time.

Interim implementation: it tests every rule with the reference matcher. The indexed engine
replaces it behind the same API.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from eventbus.patterns.pattern import EventInput, Pattern, PatternInput, load_event
from eventbus.patterns.reference import matches_parsed

__all__ = ["Matcher"]


class Matcher:
    """Named rules; one name may hold several patterns (OR). ``match`` returns the matching names."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, tuple[Pattern, ...]] = {}

    def add(self, name: str, pattern: PatternInput | Pattern) -> None:
        compiled = pattern if isinstance(pattern, Pattern) else Pattern(pattern)
        with self._lock:
            rules = dict(self._rules)
            rules[name] = (*rules.get(name, ()), compiled)
            self._rules = rules

    def remove(self, name: str) -> None:
        with self._lock:
            rules = dict(self._rules)
            rules.pop(name, None)
            self._rules = rules

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, name: object) -> bool:
        return name in self._rules

    def names(self) -> list[str]:
        return list(self._rules)

    def match(self, event: EventInput) -> set[str]:
        data: Mapping[str, Any] = load_event(event)
        rules = self._rules  # one snapshot: copy-on-write keeps readers consistent
        return {
            name for name, patterns in rules.items() if any(matches_parsed(p.parsed, data) for p in patterns)
        }
