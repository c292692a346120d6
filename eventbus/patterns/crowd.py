"""A crowded bucket: many rule branches filed under one index key, indexed again inside.

A company's bus carries a handful of sources and a dozen detail-types, and its rules differ in
their ``detail`` conditions: thousands of branches end up filed under a few hundred
(source, detail-type) pairs, or under a source alone, and an event that hits such a key would
make every one of them a candidate. Once a bucket holds more than ``CROWD`` branches it becomes
a ``Crowd``: each branch is filed again, in a value index of the crowd's own, under its next
field (the one, besides the keys that led here, whose values other rules share least). An event
that hits the crowd looks its values up in those indexes, as at the top level, and meets only
the branches whose next field it hits too: about the branches it matches, whatever the crowd's
size. Branches with no field left to file under stay in ``rest``, always candidates.

A crowd is never changed once published: adding or removing a branch builds a new one that
shares every sub-index it does not touch, as ``PathIndex`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from eventbus.patterns.fields import Field
from eventbus.patterns.index import PathIndex

__all__ = ["CROWD", "Crowd"]

T = TypeVar("T")

#: Above this many branches a bucket is indexed again; at half of it, a crowd is a plain bucket
#: again (the gap keeps a rule added and removed at the edge from rebuilding it each time).
CROWD = 16


class Crowd(Generic[T]):
    """Branches indexed under their next field. ``expand`` adds the hit buckets to a match."""

    __slots__ = ("entries", "indexes", "rest")

    def __init__(self, entries: tuple[T, ...], indexes: dict[str, PathIndex[T]], rest: tuple[T, ...]) -> None:
        #: Every branch in the crowd, in the order they came.
        self.entries = entries
        self.indexes = indexes
        self.rest = rest

    @classmethod
    def of(cls, entries: tuple[T, ...], onward: Callable[[T], tuple[Field | None, T]]) -> Crowd[T]:
        """A crowd of ``entries``; ``onward(entry)`` is the field to file it under (``None``:
        kept in ``rest``) and what to file there (the entry, or a stand-in for it that need
        not check that field again)."""
        indexes: dict[str, PathIndex[T]] = {}
        rest: list[T] = []
        for entry in entries:
            field, stand_in = onward(entry)
            if field is None:
                rest.append(entry)
                continue
            index = indexes.get(field.path)
            if index is None:
                index = indexes[field.path] = PathIndex()
            for anchor in field.anchors:
                index.add(anchor, stand_in)
        return cls(entries, indexes, tuple(rest))

    def adding(self, entry: T, field: Field | None, stand_in: T) -> Crowd[T]:
        if field is None:
            return Crowd((*self.entries, entry), self.indexes, (*self.rest, entry))
        indexes = dict(self.indexes)
        old = indexes.get(field.path)
        index = indexes[field.path] = old.copy() if old is not None else PathIndex()
        for anchor in field.anchors:
            index.add(anchor, stand_in)
        return Crowd((*self.entries, entry), indexes, self.rest)

    def removing(self, entry: T, field: Field | None, stand_in: T) -> Crowd[T]:
        entries = tuple(x for x in self.entries if x is not entry)
        if field is None:
            return Crowd(entries, self.indexes, tuple(x for x in self.rest if x is not entry))
        indexes = dict(self.indexes)
        index = indexes[field.path] = indexes[field.path].copy()
        for anchor in field.anchors:
            index.discard(anchor, stand_in)
        if not index:
            del indexes[field.path]
        return Crowd(entries, indexes, self.rest)

    def expand(self, flat: dict[str, list[Any]], out: list[tuple[Any, ...]]) -> None:
        """Append the buckets the event's values hit in the crowd's indexes, and ``rest``."""
        for path, index in self.indexes.items():
            values = flat.get(path)
            if values is None:
                continue
            exact = index.exact_only
            if exact is None:
                index.collect(values, out)
            else:
                for value in values:
                    hit = exact.get(value)
                    if hit is not None:
                        out.append(hit)
        if self.rest:
            out.append(self.rest)

    def __len__(self) -> int:
        return len(self.entries)
