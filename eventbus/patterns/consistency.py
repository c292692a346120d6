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
    plan: list[tuple[Field, _Candidates, list[Membership]]] = []
    for field in fields:
        at_path = leaves.get(field.path, [])
        test = field.test
        # Leaves that share a membership are interchangeable here.
        good = list(dict.fromkeys(membership for value, membership in at_path if test(value)))
        if not good and not field.absence:
            return False
        plan.append((field, _Candidates(good), [membership for _, membership in at_path]))
    plan.sort(key=lambda step: (step[0].absence, step[1].count))
    absent: list[list[Membership]] = []

    def choose(i: int, chosen: dict[int, int]) -> bool:
        if i == len(plan):
            return not any(_agrees(m, chosen) for everything in absent for m in everything)
        field, good, everything = plan[i]
        tried_neutral = False
        for membership in good.agreeing(chosen):
            # A leaf whose arrays are all pinned already leaves the choice as it is: after one
            # such leaf failed, every other would fail the same way.
            neutral = all(array in chosen for array, _ in membership)
            if neutral:
                if tried_neutral:
                    continue
                tried_neutral = True
            extended = dict(chosen)
            extended.update(membership)
            if choose(i + 1, extended):
                return True
        if field.absence:
            absent.append(everything)
            try:
                return choose(i + 1, chosen)
            finally:
                absent.pop()
        return False

    return choose(0, {})
