"""Field rules compiled for the matcher: a fast test per field, and the keys that index it.

A ``Field`` is one ``FieldRule`` (a path and the alternatives OR'ed on it) turned into

* ``test(value)``: does one normalized leaf value (see ``flatten``) satisfy some alternative?
  Exact values become one frozen set (a hash probe whatever their number); every other operator
  keeps its own ``Condition.test``, which is what the reference matcher calls, so the two cannot
  disagree on what an operator means. Normalized values are chosen so that ``Condition.test``
  answers for them exactly as for the raw value (booleans aside, which only exact values match);
* ``anchors``: for a field that needs a leaf to be present, the keys under which the per-path
  value index files it (``index.PathIndex``), each with a flag telling whether a hit proves the
  field satisfied (exact) or only makes it a candidate to test (a wildcard filed under its
  literal prefix, say).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

from eventbus.patterns.flatten import FALSE, TRUE
from eventbus.patterns.parse import FieldRule
from eventbus.patterns.values import (
    AnythingBut,
    AnythingButWildcard,
    Cidr,
    Condition,
    EqualsIgnoreCase,
    Exact,
    Exists,
    Numeric,
    Prefix,
    PrefixIgnoreCase,
    Suffix,
    SuffixIgnoreCase,
    Wildcard,
    comparable,
    ip_number,
    wildcard_match,
)

__all__ = ["Anchor", "AnchorKind", "Field", "field_key"]

AnchorKind = Literal[
    "exact", "ip", "ic", "prefix", "prefix_ic", "suffix", "suffix_ic", "cidr", "numeric", "ab", "present"
]
#: (kind, key, exact): where the value index files a condition, and whether a hit is proof.
Anchor = tuple[AnchorKind, Any, bool]

def _key_of_exact(value: Any) -> Any:
    """An exact value as the normalized event values spell it."""
    if value is True:
        return TRUE
    if value is False:
        return FALSE
    return value


def field_key(rule: FieldRule) -> tuple[Any, ...]:
    """Equal keys mean equal fields. Types are spelled out: ``Exact(True) == Exact(1)`` in Python."""
    return (rule.path, tuple((type(c).__name__, type(getattr(c, "value", None)).__name__, c) for c in rule.conditions))


def _anchors(condition: Condition) -> list[Anchor]:
    if isinstance(condition, Exact):
        value = condition.value
        if isinstance(value, str):
            address = ip_number(value)
            return [("ip", address, True)] if address is not None else [("exact", value, True)]
        return [("exact", _key_of_exact(value), True)]
    if isinstance(condition, Numeric):
        if condition.low is not None and condition.low == condition.high:
            return [("exact", condition.low, True)]
        return [("numeric", (condition.low, condition.low_open, condition.high, condition.high_open), True)]
    if isinstance(condition, EqualsIgnoreCase):
        return [("ic", condition.value, True)]
    if isinstance(condition, Prefix):
        return [("prefix", condition.prefix, True)]
    if isinstance(condition, PrefixIgnoreCase):
        return [("prefix_ic", condition.prefix, True)]
    if isinstance(condition, Suffix):
        return [("suffix", condition.suffix, True)]
    if isinstance(condition, SuffixIgnoreCase):
        return [("suffix_ic", condition.suffix, True)]
    if isinstance(condition, Wildcard):
        segments = condition.segments
        if len(segments) == 1:
            return [("exact", segments[0], True)]
        first, last = segments[0], segments[-1]
        # The literal before the first star and the one after the last are necessary; the
        # longer is the more selective. A hit is then confirmed by the segment search.
        if first and len(first) >= len(last):
            return [("prefix", first, False)]
        if last:
            return [("suffix", last, False)]
        return [("present", None, False)]
    if isinstance(condition, AnythingBut):
        return [("ab", condition.strings | condition.numbers, True)]
    if isinstance(condition, Exists):
        return [("present", None, True)]
    if isinstance(condition, Cidr):
        network = condition.network
        shift = network.max_prefixlen - network.prefixlen
        key = (network.version, network.prefixlen, int(network.network_address) >> shift)
        return [("cidr", key, True)]
    # The other negated forms (anything-but prefix, suffix, ignore-case, wildcard) accept almost
    # everything: any leaf makes the branch a candidate.
    return [("present", None, False)]


def _compile_test(conditions: Iterable[Condition]) -> Callable[[Any], bool]:
    keys: set[Any] = set()
    addresses: set[tuple[int, int]] = set()
    others: list[Callable[[Any], bool]] = []
    for condition in conditions:
        if isinstance(condition, Exact):
            value = condition.value
            address = ip_number(value) if isinstance(value, str) else None
            if address is not None:
                addresses.add(address)
            keys.add(_key_of_exact(value))
        elif isinstance(condition, Numeric) and condition.low is not None and condition.low == condition.high:
            keys.add(condition.low)
        elif isinstance(condition, Exists):
            return _always  # exists: true; exists: false never reaches here
        elif isinstance(condition, Cidr):
            others.append(_cidr_test(condition))
        else:
            others.append(_fast_test(condition))
    frozen = frozenset(keys)
    if not addresses and not others:
        return frozen.__contains__
    if not addresses and len(others) == 1 and not frozen:
        return others[0]
    ips = frozenset(addresses)

    def test(value: Any) -> bool:
        if value in frozen:
            return True
        if ips and type(value) is str and ip_number(value) in ips:
            return True
        return any(other(value) for other in others)

    return test


#: Every integer up to this size is a double exactly (2**53).
_EXACT = 9_007_199_254_740_992


def _fast_test(condition: Condition) -> Callable[[Any], bool]:
    """``condition.test`` for normalized values, inlined for the operators rules use most;
    the rest keep the condition's own method."""
    if isinstance(condition, Numeric):
        low, high = condition.low, condition.high
        low_open, high_open = condition.low_open, condition.high_open

        def numeric(value: Any) -> bool:
            kind = type(value)
            if kind is float:
                if value - value != 0.0:  # NaN or infinity
                    return False
            elif kind is not int or not (-_EXACT <= value <= _EXACT or comparable(value)):
                return False
            if low is not None and (value <= low if low_open else value < low):
                return False
            return high is None or (value < high if high_open else value <= high)

        return numeric
    if isinstance(condition, Prefix):
        prefix = condition.prefix
        return lambda value: type(value) is str and value.startswith(prefix)
    if isinstance(condition, Suffix):
        suffix = condition.suffix
        return lambda value: type(value) is str and value.endswith(suffix)
    if isinstance(condition, EqualsIgnoreCase):
        lowered = condition.value
        return lambda value: type(value) is str and value.lower() == lowered
    if isinstance(condition, AnythingBut):
        excluded = condition.strings | condition.numbers
        return lambda value: value not in excluded
    if isinstance(condition, Wildcard):
        segments = condition.segments
        return lambda value: type(value) is str and wildcard_match(segments, value)
    if isinstance(condition, AnythingButWildcard):
        alternatives = condition.segments
        return lambda value: type(value) is not str or not any(wildcard_match(s, value) for s in alternatives)
    return condition.test


def _cidr_test(condition: Cidr) -> Callable[[Any], bool]:
    """``Cidr.test`` on integers."""
    network = condition.network
    version, low, high = network.version, int(network.network_address), int(network.broadcast_address)

    def test(value: Any) -> bool:
        if type(value) is not str:
            return False
        address = ip_number(value)
        return address is not None and address[0] == version and low <= address[1] <= high

    return test


def _always(value: Any) -> bool:
    return True


class Field:
    """A compiled field rule, shared by every branch that has an equal one.

    ``holds(values)`` is the rule's verdict when array consistency plays no part: some leaf
    satisfies an alternative (a rule that allows absence holds with no leaf at all, which the
    caller decides since it sees whether the path is in the event).
    """

    __slots__ = ("absence", "anchors", "depth", "path", "rule", "test")

    def __init__(self, rule: FieldRule) -> None:
        self.rule = rule
        self.path = rule.path
        self.depth = rule.path.count(".")
        self.absence = rule.allows_absence
        wanted = rule.requires_leaf
        self.test: Callable[[Any], bool] = _compile_test(wanted) if wanted else _never
        unique: dict[tuple[str, Any], Anchor] = {}
        if not self.absence:
            for condition in wanted:
                for kind, key, exact in _anchors(condition):
                    previous = unique.get((kind, key))
                    unique[(kind, key)] = (kind, key, exact or (previous is not None and previous[2]))
        self.anchors: tuple[Anchor, ...] = tuple(unique.values())

    def holds(self, values: list[Any]) -> bool:
        test = self.test
        # Most paths hold one leaf: a plain loop beats building a generator for any().
        for value in values:  # noqa: SIM110
            if test(value):
                return True
        return False

    def __repr__(self) -> str:
        return f"Field({self.path!r}, {[c.describe() for c in self.rule.conditions]})"


def _never(value: Any) -> bool:
    return False
