"""The reference matcher: small, slow and obviously correct; the oracle for the fast ``Matcher``.

Semantics, in one place:

* An event is seen as its *leaves*: scalar values reached by following a pattern field's path.
  Objects are not leaves, so ``exists`` only ever sees scalars and ``null``.
* A key holding dots names the nested position its segments spell: ``{"a.b": 1}`` holds 1 at
  ``a`` then ``b``, as event-ruler joins field names with dots. So one position may be reached
  by several keys, and then holds all their values.
* Arrays along the way (and arrays of arrays) are walked element by element; each leaf remembers
  which element of which array it came from: its *membership*, one ``(position, index)`` pair
  per array, outermost first, where ``position`` is the dotted path at which the array sits. If
  one position holds an array and anything else beside it (another array, a scalar or an object,
  which only two spellings of one path can bring together), they count as one array: the
  elements of the arrays, then the scalars, then the objects together as one element. event-ruler
  keeps such arrays apart, but then deciding array consistency is as hard as satisfiability for
  an event built for it; no producer sends such events, and this reading keeps every match close
  to linear in the event's size.
* Two leaves *agree* unless, at the first array both sit in, they are in different elements.
* A branch (one ``$or`` combination) matches when every field rule can be given one leaf that
  satisfies one of its alternatives, all chosen leaves agreeing with one another (array
  consistency, as event-ruler's ``rulesForJSONEvent``). A field rule that allows absence
  (``exists: false``) is also satisfied when none of the leaves at its path agrees with all the
  chosen leaves.
* A pattern matches when any branch does.

The search below tries every combination of leaves: it is the definition, written out, and it is
exponential in the worst case. It is the test oracle and nothing else: ``Pattern.matches``,
``Pattern.explain`` and ``Matcher`` decide the same thing in time close to linear in the event's
size (``consistency.py``), and only tests call this module's ``matches``. ``leaves_at`` is
linear and is what ``Pattern.explain`` shows values with.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from eventbus.patterns.parse import Branch, ParsedPattern, parse_pattern
from eventbus.patterns.values import Scalar

__all__ = ["Leaf", "Membership", "agree", "leaves_at", "matches", "matches_parsed"]

#: One ``(position of the array, element index)`` pair per array from the root to a leaf.
Membership = tuple[tuple[str, int], ...]
#: A leaf value and the array elements on its way from the root.
Leaf = tuple[Scalar, Membership]


def leaves_at(event: Any, path: str) -> Iterator[Leaf]:
    """Every scalar at dotted ``path`` in ``event`` with its membership.

    Each step holds every value found at one position (usually one); objects are followed by
    the next segment, a key with dots counting as the object its segments spell.
    """
    if not isinstance(event, dict):
        return iter(())
    segments = path.split(".")
    out: list[Leaf] = []
    stack: list[tuple[list[Any], int, Membership]] = [([event], 0, ())]
    while stack:
        values, depth, membership = stack.pop()
        arrays = [v for v in values if isinstance(v, list)]
        if arrays:
            if len(values) == 1:
                elements = [[element] for element in arrays[0]]
            else:
                objects = [v for v in values if isinstance(v, dict)]
                scalars = [[v] for v in values if not isinstance(v, list | dict)]
                elements = [[e] for array in arrays for e in array] + scalars + ([objects] if objects else [])
            position = ".".join(segments[:depth])
            # Pushed last to first, so that leaves come out in document order.
            for index in range(len(elements) - 1, -1, -1):
                stack.append((elements[index], depth, (*membership, (position, index))))
        elif depth == len(segments):
            out.extend((v, membership) for v in values if not isinstance(v, dict))
        else:
            segment = segments[depth]
            dotted = segment + "."
            found: list[Any] = []
            for value in values:
                if isinstance(value, dict):
                    for key, inner in value.items():
                        if key == segment:
                            found.append(inner)
                        elif isinstance(key, str) and key.startswith(dotted):
                            found.append({key[len(dotted) :]: inner})
            if found:
                stack.append((found, depth + 1, membership))
    return iter(out)


def agree(a: Membership, b: Membership) -> bool:
    """Two leaves agree unless, at the first array both sit in, they are in different elements."""
    for (position_a, index_a), (position_b, index_b) in zip(a, b, strict=False):
        if position_a != position_b:
            return True  # different arrays of one element: they share no array from here on
        if index_a != index_b:
            return False
    return True


def _branch_matches(branch: Branch, event: Any) -> bool:
    rules = list(branch)
    everything = [list(leaves_at(event, rule.path)) for rule in rules]
    candidates = [
        [leaf for leaf in leaves if any(c.test(leaf[0]) for c in rule.requires_leaf)]
        for rule, leaves in zip(rules, everything, strict=True)
    ]
    # Cheap early exit before any backtracking.
    for rule, found in zip(rules, candidates, strict=True):
        if not found and not rule.allows_absence:
            return False
    absent: list[int] = []

    def choose(i: int, chosen: list[Membership]) -> bool:
        if i == len(rules):
            return not any(
                all(agree(membership, other) for other in chosen) for k in absent for _, membership in everything[k]
            )
        for _, membership in candidates[i]:
            if all(agree(membership, other) for other in chosen) and choose(i + 1, [*chosen, membership]):
                return True
        if rules[i].allows_absence:
            absent.append(i)
            try:
                if choose(i + 1, chosen):
                    return True
            finally:
                absent.pop()
        return False

    return choose(0, [])


def matches_parsed(parsed: ParsedPattern, event: Mapping[str, Any]) -> bool:
    return any(_branch_matches(branch, event) for branch in parsed.branches)


def matches(pattern: Mapping[str, Any] | str, event: Mapping[str, Any]) -> bool:
    """Does ``pattern`` (a dict or JSON text) match ``event`` (a dict)? Raises PatternError.

    Exponential in the worst case: for tests; applications use ``Pattern`` or ``Matcher``.
    """
    return matches_parsed(parse_pattern(pattern, max_size=None), event)

