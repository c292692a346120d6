"""The reference matcher: small, slow and obviously correct; the oracle for the fast ``Matcher``.

Semantics, in one place:

* An event is seen as its *leaves*: scalar values reached by following a pattern field's path.
  Arrays along the way (and arrays of arrays) are walked element by element; each leaf remembers
  which element of which array it came from (its *membership*). Objects are not leaves, so
  ``exists`` only ever sees scalars and ``null``.
* A branch (one ``$or`` combination) matches when every field rule can be given one leaf that
  satisfies one of its alternatives, and the chosen leaves agree on every array they share
  (array consistency, as event-ruler's ``rulesForJSONEvent``). A field rule that allows absence
  (``exists: false``) is also satisfied when no leaf at its path agrees with the chosen leaves.
* A pattern matches when any branch does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from eventbus.patterns.parse import Branch, FieldRule, ParsedPattern, parse_pattern
from eventbus.patterns.values import Scalar

__all__ = ["Leaf", "leaves_at", "matches", "matches_parsed"]

Membership = tuple[tuple[int, int], ...]
#: A leaf value and the (array identity, element index) pairs on its way from the root.
Leaf = tuple[Scalar, Membership]


def leaves_at(event: Any, path: str) -> Iterator[Leaf]:
    """Every scalar at dotted ``path`` in ``event`` with its array membership, in document order.

    Event keys may themselves hold dots (``{"a.b": 1}`` sits at ``a.b``), so at each object we
    try every split of the rest of the path at a dot.
    """
    stack: list[tuple[Any, int, Membership]] = [(event, 0, ())]
    out: list[Leaf] = []
    end = len(path)
    while stack:
        node, pos, membership = stack.pop()
        if isinstance(node, list):
            # Reverse so that popping yields document order.
            for index in range(len(node) - 1, -1, -1):
                stack.append((node[index], pos, (*membership, (id(node), index))))
        elif pos > end:
            if not isinstance(node, dict):
                out.append((node, membership))
        elif isinstance(node, dict):
            cut = path.find(".", pos)
            found: list[tuple[Any, int, Membership]] = []
            while True:
                key = path[pos:] if cut < 0 else path[pos:cut]
                if key in node:
                    found.append((node[key], end + 1 if cut < 0 else cut + 1, membership))
                if cut < 0:
                    break
                cut = path.find(".", cut + 1)
            stack.extend(reversed(found))
    return iter(out)


def _consistent(a: Membership, chosen: dict[int, int]) -> bool:
    return all(chosen.get(array, index) == index for array, index in a)


def _branch_matches(branch: Branch, event: Any) -> bool:
    rules = list(branch)
    candidates: list[list[Leaf]] = []
    for rule in rules:
        wanted = rule.requires_leaf
        candidates.append(
            [leaf for leaf in leaves_at(event, rule.path) if any(c.test(leaf[0]) for c in wanted)]
        )
    # Cheap early exit before any backtracking.
    for rule, found in zip(rules, candidates, strict=True):
        if not found and not rule.allows_absence:
            return False
    absent: list[FieldRule] = []

    def choose(i: int, chosen: dict[int, int]) -> bool:
        if i == len(rules):
            return all(
                not any(_consistent(m, chosen) for _, m in leaves_at(event, rule.path)) for rule in absent
            )
        for _, membership in candidates[i]:
            if _consistent(membership, chosen):
                extended = dict(chosen)
                extended.update(membership)
                if choose(i + 1, extended):
                    return True
        if rules[i].allows_absence:
            absent.append(rules[i])
            try:
                if choose(i + 1, chosen):
                    return True
            finally:
                absent.pop()
        return False

    return choose(0, {})


def matches_parsed(parsed: ParsedPattern, event: Mapping[str, Any]) -> bool:
    return any(_branch_matches(branch, event) for branch in parsed.branches)


def matches(pattern: Mapping[str, Any] | str, event: Mapping[str, Any]) -> bool:
    """Does ``pattern`` (a dict or JSON text) match ``event`` (a dict)? Raises PatternError."""
    return matches_parsed(parse_pattern(pattern, max_size=None), event)
