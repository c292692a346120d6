"""Array consistency for one branch: the exact search, run only when the fast verdict cannot hold.

When at most one of a branch's fields has leaves inside arrays, every leaf the others offer
agrees with every choice (their membership is empty), so the branch holds exactly when each
field holds on its own: the matcher's fast path. Only a branch with two or more fields in arrays
comes here. The search is the reference matcher's: give each field a satisfying leaf that agrees
with the leaves chosen so far on every array they share, or, for a field that allows absence,
no leaf at all, provided that none of its leaves agrees with the final choice.

Fields with the fewest candidate leaves are tried first and those that may be absent last, which
prunes early; the answer does not depend on the order. Each field's leaves are grouped by the
outermost array they sit in, so once a chosen leaf pins that array's element, only the leaves of
that element are considered: fields in the same array of objects cost the array's length, not its
square.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from eventbus.patterns.fields import Field
from eventbus.patterns.flatten import Membership

__all__ = ["consistent"]


def _agrees(membership: Membership, chosen: dict[int, int]) -> bool:
    return all(chosen.get(array, index) == index for array, index in membership)


class _Candidates:
    """One field's satisfying memberships, grouped by the outermost array they pass through,
    so that once that array is pinned only the leaves in the pinned element are looked at."""

    __slots__ = ("by_first", "count", "outside")

    def __init__(self, memberships: list[Membership]) -> None:
        self.count = len(memberships)
        self.outside: list[Membership] = []
        self.by_first: dict[int, dict[int, list[Membership]]] = {}
        for membership in memberships:
            if not membership:
                self.outside.append(membership)
            else:
                array, index = membership[0]
                self.by_first.setdefault(array, {}).setdefault(index, []).append(membership)

    def agreeing(self, chosen: dict[int, int]) -> Iterator[Membership]:
        yield from self.outside
        for array, by_index in self.by_first.items():
            pinned = chosen.get(array)
            groups = by_index.values() if pinned is None else (by_index.get(pinned, ()),)
            for group in groups:
                for membership in group:
                    if _agrees(membership, chosen):
                        yield membership


def consistent(fields: Sequence[Field], leaves: dict[str, list[tuple[Any, Membership]]]) -> bool:
    """Can every field be satisfied by leaves that agree on the arrays they share?"""
    steps: list[tuple[Field, list[Membership], list[Membership]]] = []
    for field in fields:
        at_path = leaves.get(field.path, [])
        test = field.test
        # Leaves that share a membership are interchangeable here.
        good = list(dict.fromkeys(membership for value, membership in at_path if test(value)))
        if not good and not field.absence:
            return False
        steps.append((field, good, [membership for _, membership in at_path]))
    steps.sort(key=lambda step: (step[0].absence, len(step[1])))

    # The arrays that the fields from step i on look at.
    later: list[frozenset[int]] = [frozenset()] * (len(steps) + 1)
    for i in range(len(steps) - 1, -1, -1):
        later[i] = later[i + 1] | {array for membership in steps[i][2] for array, _ in membership}
    # Of a step's leaves, only their elements of arrays that earlier steps may have pinned, or
    # that later steps or absent fields look at, make a difference: one leaf per distinct such
    # projection is enough. A field in an array of its own then costs one try, not one per
    # element, whatever came before.
    absence_arrays = frozenset(
        array for field, _, everything in steps if field.absence for membership in everything for array, _ in membership
    )
    plan: list[tuple[Field, _Candidates, _Candidates, frozenset[int]]] = []
    earlier: set[int] = set()
    for i, (field, good, everything) in enumerate(steps):
        keep = later[i + 1] | absence_arrays | earlier
        projected = list(dict.fromkeys(tuple(pair for pair in membership if pair[0] in keep) for membership in good))
        earlier.update(array for membership in projected for array, _ in membership)
        arrays = frozenset(array for membership in everything for array, _ in membership)
        plan.append((field, _Candidates(projected), _Candidates(everything), arrays))

    # Results are remembered per step, fields judged absent so far, and choice restricted to the
    # arrays still looked at: a choice elsewhere cannot change what happens next.
    absent: list[_Candidates] = []
    absent_arrays: list[frozenset[int]] = []
    absent_steps: list[int] = []
    seen: dict[tuple[Any, ...], bool] = {}

    def choose(i: int, chosen: dict[int, int]) -> bool:
        if i == len(plan):
            # An absent field holds when none of its leaves agrees with the choice.
            return not any(next(gone.agreeing(chosen), None) is not None for gone in absent)
        relevant = later[i].union(*absent_arrays) if absent_arrays else later[i]
        key = (i, tuple(absent_steps), frozenset((a, x) for a, x in chosen.items() if a in relevant))
        known = seen.get(key)
        if known is None:
            known = seen[key] = step(i, chosen)
        return known

    def step(i: int, chosen: dict[int, int]) -> bool:
        field, good, everything, arrays = plan[i]
        for membership in good.agreeing(chosen):
            extended = dict(chosen)
            extended.update(membership)
            if choose(i + 1, extended):
                return True
        if field.absence:
            absent.append(everything)
            absent_arrays.append(arrays)
            absent_steps.append(i)
            try:
                return choose(i + 1, chosen)
            finally:
                absent.pop()
                absent_arrays.pop()
                absent_steps.pop()
        return False

    return choose(0, {})
