"""Array consistency for one branch: an exact decision in time linear in the event's size.

When at most one of a branch's fields has leaves inside arrays, every other leaf sits outside
all arrays and agrees with any choice, so the branch holds exactly when each field holds on its
own: the matcher's fast path. Only a branch with two or more fields in arrays comes here, with
the event's ``Members`` (the leaves of the used paths and the array element each sits in).

The question is the reference matcher's: can every field be given a satisfying leaf so that
the chosen leaves agree (in each array they share, the same element), a field that allows
absence being also satisfied when none of its leaves agrees with the choice? The reference
tries every combination, exponentially many. Here the event's arrays form a tree (an element
holds arrays, whose elements hold arrays...), and from any element a field's path leads to its
leaves by exactly one route: directly (a scalar in the element itself) or into one array held
there (the event is read so that this holds: one position, one array; see ``flatten``). Call
an element *reached* when the choice picks it (the root always is). Three kinds of field:

* a field that needs a leaf (``P``) must be satisfied by one in every reached element it has
  leaves under, and all the ``P`` fields with leaves in one array must be satisfied inside the
  one element the choice picks there;
* a field allowing only absence (``U``) must have no leaf in a reached element, and every
  array holding one of its leaves must be entered by a chosen leaf, in an element without them
  (the leaves of an array no chosen leaf enters agree with the choice);
* a field allowing absence or a value (``X``) is satisfied by a chosen leaf, or else needs
  every leaf cut off as ``U`` does. In a reached element it has either a leaf, which must then
  satisfy it (it cannot be cut off), or an array that must be entered, as for ``U``.

So an element is *good* when its own leaves pass (no ``U`` leaf, no ``P``/``X`` leaves without
a satisfying one) and every array it holds that has leaves of the branch has a good element
under which lie leaves of every ``P`` field present in that array. A good element with leaves
of the branch under it always holds a chosen leaf, so the array it is picked in is entered.
The branch holds when the root is good. Deciding this level by level from the deepest up
looks at each element once; the steps are set operations, run in C. When every leaf sits in
the root or in arrays of the root (the usual ``items[*].sku`` with ``items[*].qty``), one
level is all there is, and candidate elements are narrowed without a test before the
remaining fields are tested on what is left.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventbus.patterns.fields import Field
from eventbus.patterns.flatten import Members

__all__ = ["consistent"]


class _Places:
    """Where one field's leaves sit in one event: what every branch with the field reuses.

    ``leaves`` costs no test; which elements hold a satisfying leaf is found either for all of
    them at once, testing each distinct value once (``satisfied``), or element by element
    (``holds_at``) when a branch has only a few candidate elements left."""

    __slots__ = ("_at", "_levels", "_satisfied", "arrays", "field", "leaves", "members", "shallow")

    def __init__(self, field: Field, members: Members) -> None:
        self.field = field
        self.members = members
        #: Elements holding a leaf of the field directly.
        self.leaves: set[int] = members.elements(field.path)
        holder = members.holder
        array_of = members.array
        #: Every such element is the root or an element of an array outside all arrays.
        self.shallow = all(holder[e] <= 0 for e in self.leaves)
        #: The arrays those elements belong to, when shallow.
        self.arrays = {array_of[e] for e in self.leaves if e} if self.shallow else set()
        self._satisfied: set[int] | None = None
        self._at: dict[int, bool] = {}
        self._levels: dict[int, set[int]] | None = None

    def satisfied(self) -> set[int]:
        """Elements holding a leaf that satisfies the field."""
        found = self._satisfied
        if found is None:
            found = self._satisfied = set()
            test = self.field.test
            for value, elements in self.members.by_value(self.field.path).items():
                if test(value):
                    found.update(elements)
        return found

    def cheaper_whole(self, candidates: int) -> bool:
        """Is testing every distinct value cheaper than testing the leaves of ``candidates``
        elements one by one?"""
        return self.cost() <= candidates

    def by_level(self) -> dict[int, set[int]]:
        """``leaves`` by the number of arrays around them."""
        levels = self._levels
        if levels is None:
            levels = self._levels = {}
            depth = self.members.depth()
            for element in self.leaves:
                level = depth[element]
                at = levels.get(level)
                if at is None:
                    levels[level] = {element}
                else:
                    at.add(element)
        return levels

    def cost(self) -> int:
        """How many tests ``satisfied`` takes (none once known)."""
        return 0 if self._satisfied is not None else len(self.members.by_value(self.field.path))

    def holds_at(self, element: int) -> bool:
        """Does a leaf directly in ``element`` satisfy the field?"""
        known = self._at.get(element)
        if known is None:
            if self._satisfied is not None:
                known = element in self._satisfied
            else:
                test = self.field.test
                known = any(test(value) for value in self.members.values_at(self.field.path).get(element, ()))
            self._at[element] = known
        return known


def consistent(fields: Sequence[Field], members: Members) -> bool:
    """Can every field be satisfied by leaves that agree on the arrays they share?"""
    if not members.complete:
        for field in fields:
            if field.absence:
                break
        else:
            quick = _needed_only(fields, members)
            if quick is not None:
                return quick
    cache = members.cache
    found: list[_Places] = []
    for field in fields:
        places = cache.get(field)
        if places is None:
            places = cache[field] = _Places(field, members)
        if not places.leaves:
            if field.absence:
                continue  # no leaf at all: absent
            return False
        found.append(places)
    # Leaves in the root: a field allowing only absence fails, any other needs one satisfying.
    for places in found:
        if 0 in places.leaves and not places.holds_at(0):
            return False
    if all(places.shallow for places in found):
        return _shallow(found)
    return _nested(found, members)


def _needed_only(fields: Sequence[Field], members: Members) -> bool | None:
    """The common case, without building ``_Places``: every field needs a value and all their
    leaves sit in elements of arrays of the root (``items[*].sku`` with ``items[*].qty``). Then
    each array needs one element where every field with leaves in it is satisfied. ``None``
    when the leaves sit elsewhere (the root, or deeper arrays)."""
    shallow = members.shallow
    candidates: dict[int, set[int]] = {}
    for field in fields:
        known = shallow.get(field, _UNKNOWN)
        if known is _UNKNOWN:
            known = shallow[field] = _satisfied_in_root_arrays(field, members)
        if known is None:
            return None
        array, satisfied = known
        if not satisfied:
            return False
        here = candidates.get(array)
        here = candidates[array] = satisfied if here is None else here & satisfied
        if not here:
            return False
    return True


_UNKNOWN: Any = object()


def _satisfied_in_root_arrays(field: Field, members: Members) -> tuple[int, set[int]] | None:
    """The array of the root holding the field's leaves, and its elements where a leaf
    satisfies the field; ``None`` when the leaves sit anywhere else. One pass, one test a leaf."""
    leaves = members.leaves.get(field.path)
    if not leaves:
        return None
    holder = members.holder
    test = field.test
    satisfied: set[int] = set()
    for value, element in leaves:
        if holder[element]:
            return None  # held by an element of an array, not by the root
        if test(value):
            satisfied.add(element)
    return members.array[leaves[0][1]], satisfied


def _shallow(found: list[_Places]) -> bool:
    """Every leaf sits in the root or in an element of an array outside all arrays: each such
    array needs one element where every P field of the array has a satisfying leaf, no U field
    has a leaf, and no X field has only leaves that do not satisfy it (one at least, if there is
    no P field, to enter the array). Sets of elements narrow the candidates without a test;
    the remaining fields are then tested on what is left, or on every distinct value when that
    is cheaper."""
    arrays: set[int] = set()
    for places in found:
        arrays |= places.arrays
    for array in arrays:
        inside = [places for places in found if array in places.arrays]
        needed = [places for places in inside if not places.field.absence]
        if needed:
            # A P field's leaves under the root all sit in this one array (one route).
            candidates = set.intersection(*(places.leaves for places in needed))
        else:
            candidates = set().union(*(places.leaves for places in inside if places.field.rule.requires_leaf))
        tested: list[_Places] = []
        for places in inside:
            if not places.field.rule.requires_leaf:
                candidates -= places.leaves  # U: no leaf in the chosen element
            else:
                tested.append(places)
        # Fields whose verdicts are known, or cheap for all elements, narrow the set first.
        tested.sort(key=lambda places: places.cost())
        for places in tested:
            if not candidates:
                return False
            if places.cheaper_whole(len(candidates)):
                if places.field.absence:
                    candidates -= places.leaves - places.satisfied()
                else:
                    candidates &= places.satisfied()
            else:
                candidates = {e for e in candidates if e not in places.leaves or places.holds_at(e)}
                if not places.field.absence:
                    candidates &= places.leaves
        if not candidates:
            return False
    return True


def _nested(found: list[_Places], members: Members) -> bool:
    """The general case, one level of arrays at a time from the deepest up, in set operations.

    At each level: the elements there that matter (they hold leaves of the branch, or arrays
    that do); for each P field, those with its leaves at or under them (``cover``); an element
    is good when it fails on none of its own leaves and every array it holds has a good element
    covering every P field present in that array. An array without one makes its holder bad.
    """
    holder = members.holder
    array_of = members.array
    failing: set[int] = set()
    direct: dict[int, set[int]] = {}  # level -> elements holding leaves of the branch
    cover: list[dict[int, set[int]]] = []  # per P field: level -> elements holding its leaves
    for places in found:
        failing |= places.leaves - places.satisfied()
        levels = places.by_level()
        for level, elements in levels.items():
            here = direct.get(level)
            direct[level] = set(elements) if here is None else here | elements
        if not places.field.absence:
            cover.append(levels)
    present: set[int] = set()  # elements of the current level that matter
    covered: list[set[int]] = [set() for _ in cover]
    bad: set[int] = set()  # elements whose arrays failed
    for level in range(max(direct), 0, -1):
        present = direct.get(level, set()) | set(map(holder.__getitem__, present))
        if not present:
            continue
        covered = [field.get(level, set()) | set(map(holder.__getitem__, below)) for field, below in zip(cover, covered, strict=True)]
        qualifying = present - failing - bad
        for here in covered:
            arrays = set(map(array_of.__getitem__, here))
            qualifying -= {e for e in qualifying if array_of[e] in arrays} - here
        entered = set(map(array_of.__getitem__, qualifying))
        bad = {holder[e] for e in present if array_of[e] not in entered}
    return 0 not in bad
