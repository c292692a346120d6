"""The value index of one field path: from a leaf value to the rule branches anchored on it.

Each operator kind is answered by the structure that finds every hit in one or a few look-ups:

* exact values (strings, numbers by value, ``null``, the boolean tokens) and numeric equality:
  one dict;
* IP addresses spelled as exact strings: a dict keyed by the parsed address, so every spelling
  of it hits; CIDR blocks: one dict per (IP version, mask length) keyed by the masked address,
  probed once per mask length present;
* equals-ignore-case: a dict keyed by the lower-cased value;
* prefixes and suffixes (and their ignore-case forms): one dict per key length, probed with the
  value's own prefix (or suffix) of each length present, so the cost follows the number of
  distinct lengths, not the number of keys;
* numeric ranges: the sorted distinct bounds split the number line into slots (each bound and
  each gap between two); a segment tree over the slots files each range at O(log n) nodes, and a
  value finds its slot by ``bisect`` and collects the nodes above it;
* anything-but a set of values: complement logic, one bucket per distinct excluded set, hit by
  every value outside it;
* everything that accepts almost any leaf (exists, the negated string forms, ``*x*`` wildcards):
  a bucket hit once whenever the path has a leaf.

Buckets are tuples of branches. An index is never changed once published: the writer copies the
index and the one table it changes (``copy`` then ``add``/``discard``), so readers holding the
old snapshot see the old index whole.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, Generic, TypeVar

from eventbus.patterns.fields import Anchor
from eventbus.patterns.values import comparable, ip_number

__all__ = ["PathIndex"]

T = TypeVar("T")

_AFFIXES = ("prefix", "prefix_ic", "suffix", "suffix_ic")


def _bucket_set(table: dict[Any, tuple[T, ...]], key: Any, bucket: tuple[T, ...]) -> dict[Any, tuple[T, ...]]:
    """A copy of ``table`` with ``bucket`` under ``key`` (none, when it is empty)."""
    new = dict(table)
    if bucket:
        new[key] = bucket
    else:
        new.pop(key, None)
    return new


# An affix table: (key length, {key: bucket}) pairs sorted by length.
Affix = tuple[tuple[int, dict[str, tuple[T, ...]]], ...]


def _affix_set(table: Affix[T], key: str, bucket: tuple[T, ...]) -> Affix[T]:
    length = len(key)
    rows = dict(table)
    changed = _bucket_set(rows.get(length, {}), key, bucket)
    if changed:
        rows[length] = changed
    else:
        rows.pop(length, None)
    return tuple(sorted(rows.items()))


def _cidr_slot(version: int, length: int) -> tuple[int, int, int]:
    """(version, mask length, shift): where the CIDR table files blocks of that length."""
    return version, length, (32 if version == 4 else 128) - length


class _NumericTree(Generic[T]):
    """Every range containing a value, in O(log n + hits): a segment tree over bound slots,
    each slot keeping the buckets on its way to the root (O(slots log n) references)."""

    __slots__ = ("bounds", "by_slot")

    def __init__(self, ranges: dict[tuple[Any, bool, Any, bool], tuple[T, ...]]) -> None:
        bounds = sorted({b for (low, _, high, _) in ranges for b in (low, high) if b is not None})
        self.bounds = bounds
        where = {b: i for i, b in enumerate(bounds)}
        slots = 2 * len(bounds) + 1
        size = 1
        while size < slots:
            size *= 2
        nodes: dict[int, list[T]] = {}
        for (low, low_open, high, high_open), bucket in ranges.items():
            first = 0 if low is None else 2 * where[low] + (2 if low_open else 1)
            last = slots - 1 if high is None else 2 * where[high] + (0 if high_open else 1)
            left, right = first + size, last + size + 1
            while left < right:
                if left & 1:
                    nodes.setdefault(left, []).extend(bucket)
                    left += 1
                if right & 1:
                    right -= 1
                    nodes.setdefault(right, []).extend(bucket)
                left >>= 1
                right >>= 1
        filed: dict[int, tuple[T, ...]] = {k: tuple(v) for k, v in nodes.items()}
        #: Per slot, the buckets of the nodes from its leaf to the root: a value's ranges in
        #: one ``bisect`` and one ``extend``.
        self.by_slot: list[tuple[tuple[T, ...], ...]] = []
        for slot in range(slots):
            node = slot + size
            above: list[tuple[T, ...]] = []
            while node:
                held = filed.get(node)
                if held is not None:
                    above.append(held)
                node >>= 1
            self.by_slot.append(tuple(above))

    def collect(self, value: int | float, out: list[tuple[T, ...]]) -> None:
        bounds = self.bounds
        i = bisect_left(bounds, value)
        out.extend(self.by_slot[2 * i + 1 if i < len(bounds) and bounds[i] == value else 2 * i])


class PathIndex(Generic[T]):
    """The anchors of one path. ``collect(values, out)`` appends the bucket of every hit."""

    __slots__ = (
        "_strings",
        "_tree",
        "ab",
        "cidr",
        "exact",
        "exact_only",
        "ic",
        "ip",
        "numeric",
        "prefix",
        "prefix_ic",
        "present",
        "suffix",
        "suffix_ic",
    )

    def __init__(self) -> None:
        self.exact: dict[Any, tuple[T, ...]] = {}
        self.ip: dict[Any, tuple[T, ...]] = {}
        self.ic: dict[str, tuple[T, ...]] = {}
        self.prefix: Affix[T] = ()
        self.prefix_ic: Affix[T] = ()
        self.suffix: Affix[T] = ()
        self.suffix_ic: Affix[T] = ()
        # (version, mask length, shift) -> {masked address: bucket}
        self.cidr: dict[tuple[int, int, int], dict[int, tuple[T, ...]]] = {}
        self.numeric: dict[tuple[Any, bool, Any, bool], tuple[T, ...]] = {}
        self.ab: dict[frozenset[Any], tuple[T, ...]] = {}
        self.present: tuple[T, ...] = ()
        self._strings = False
        self._tree: _NumericTree[T] | None = None
        #: The exact table when it is the only one in use: the matcher then probes it inline.
        self.exact_only: dict[Any, tuple[T, ...]] | None = None

    def copy(self) -> PathIndex[T]:
        new: PathIndex[T] = PathIndex()
        # Attribute by attribute, not through ``__slots__``: the compiled build (native.py)
        # has no class-level slot list to walk.
        new.exact, new.ip, new.ic, new.cidr = self.exact, self.ip, self.ic, self.cidr
        new.prefix, new.prefix_ic, new.suffix, new.suffix_ic = self.prefix, self.prefix_ic, self.suffix, self.suffix_ic
        new.numeric, new.ab, new.present = self.numeric, self.ab, self.present
        new._strings, new._tree, new.exact_only = self._strings, self._tree, self.exact_only
        return new

    def __bool__(self) -> bool:
        return bool(self.exact or self.ip or self.ic or self.cidr or self.numeric or self.ab or self.present) or any(
            getattr(self, name) for name in _AFFIXES
        )

    def add(self, anchor: Anchor, item: T) -> None:
        """File ``item`` under ``anchor``; only on an index not yet published."""
        self.put(anchor, (*self.bucket(anchor), item))

    def discard(self, anchor: Anchor, item: T) -> None:
        self.put(anchor, tuple(x for x in self.bucket(anchor) if x is not item))

    def bucket(self, anchor: Anchor) -> tuple[T, ...]:
        """What is filed under ``anchor`` (empty when nothing is)."""
        kind, key, _ = anchor
        if kind in _AFFIXES:
            table: Affix[T] = getattr(self, kind)
            return dict(table).get(len(key), {}).get(key, ())
        if kind == "present":
            return self.present
        if kind == "cidr":
            version, length, masked = key
            return self.cidr.get(_cidr_slot(version, length), {}).get(masked, ())
        found: tuple[T, ...] = getattr(self, kind).get(key, ())
        return found

    def put(self, anchor: Anchor, bucket: tuple[T, ...]) -> None:
        """File ``bucket`` under ``anchor`` in place of what was there; only on an index not
        yet published. The one table changed is copied, never changed in place."""
        kind, key, _ = anchor
        if kind in _AFFIXES:
            setattr(self, kind, _affix_set(getattr(self, kind), key, bucket))
        elif kind == "present":
            self.present = bucket
        elif kind == "cidr":
            version, length, masked = key
            slot = _cidr_slot(version, length)
            changed = _bucket_set(self.cidr.get(slot, {}), masked, bucket)
            cidr = dict(self.cidr)
            if changed:
                cidr[slot] = changed
            else:
                cidr.pop(slot, None)
            self.cidr = cidr
        else:
            setattr(self, kind, _bucket_set(getattr(self, kind), key, bucket))
            if kind == "numeric":
                self._tree = None
        self._strings = bool(self.ip or self.ic or self.cidr) or any(getattr(self, name) for name in _AFFIXES)
        others = self._strings or self.numeric or self.ab or self.present
        self.exact_only = self.exact if self.exact and not others else None

    def collect(self, values: list[Any], out: list[tuple[T, ...]]) -> None:
        exact = self.exact
        if exact:
            for value in values:
                found = exact.get(value)
                if found is not None:
                    out.append(found)
        if self._strings:
            for value in values:
                if type(value) is str:
                    self._collect_string(value, out)
        if self.numeric:
            tree = self._tree
            if tree is None:
                # Built by the first reader that needs it; concurrent builds agree, and
                # storing an attribute is atomic.
                tree = self._tree = _NumericTree(self.numeric)
            bounds, by_slot, count = tree.bounds, tree.by_slot, len(tree.bounds)
            for value in values:
                kind = type(value)
                if (kind is float and value - value == 0.0) or (
                    kind is int and (-9_007_199_254_740_992 <= value <= 9_007_199_254_740_992 or comparable(value))
                ):
                    i = bisect_left(bounds, value)
                    hits = by_slot[2 * i + 1 if i < count and bounds[i] == value else 2 * i]
                    if hits:
                        out.extend(hits)
        if self.ab:
            for value in values:
                for excluded, bucket in self.ab.items():
                    if value not in excluded:
                        out.append(bucket)
        if self.present:
            out.append(self.present)

    def _collect_string(self, value: str, out: list[tuple[T, ...]]) -> None:
        size = len(value)
        for length, table in self.prefix:
            if length > size:
                break
            found = table.get(value[:length])
            if found is not None:
                out.append(found)
        for length, table in self.suffix:
            if length > size:
                break
            found = table.get(value[size - length :])
            if found is not None:
                out.append(found)
        if self.ic or self.prefix_ic or self.suffix_ic:
            lowered = value.lower()
            found = self.ic.get(lowered)
            if found is not None:
                out.append(found)
            size = len(lowered)
            for length, table in self.prefix_ic:
                if length > size:
                    break
                found = table.get(lowered[:length])
                if found is not None:
                    out.append(found)
            for length, table in self.suffix_ic:
                if length > size:
                    break
                found = table.get(lowered[size - length :])
                if found is not None:
                    out.append(found)
        if self.ip or self.cidr:
            address = ip_number(value)
            if address is None:
                return
            found = self.ip.get(address)
            if found is not None:
                out.append(found)
            kind, number = address
            for (version, _, shift), masks in self.cidr.items():
                if version == kind:
                    found = masks.get(number >> shift)
                    if found is not None:
                        out.append(found)
