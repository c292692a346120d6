"""``Matcher``: many named patterns against one event, at a cost that follows the event, not the
number of rules. The design, with what each step costs and why, is in docs/matcher.md.

In short: every ``$or`` branch of every rule is *anchored* on one of its fields (the one whose
values are least shared with other rules) and filed in that field path's value index. A match
flattens the event once, visiting only paths some rule uses; looks each leaf value up in its
path's index, which names the branches anchored on it; and verifies only those branches' other
fields, each field evaluated at most once per event however many branches share it. Array
consistency is checked only for a branch with two or more fields whose leaves sit in arrays.

Writers (``add``, ``remove``) take a lock, build a new snapshot that shares everything they did
not change, and publish it with one assignment; ``match`` reads whichever snapshot is current
when it starts and never locks, so it never sees half of a change.
"""

from __future__ import annotations

import heapq
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from mypy_extensions import mypyc_attr

from eventbus.patterns.consistency import consistent
from eventbus.patterns.crowd import CROWD, Crowd
from eventbus.patterns.fields import Field, field_key
from eventbus.patterns.flatten import (
    EMPTY_TRIE,
    PathNode,
    flatten,
    trie_with,
    trie_without,
)
from eventbus.patterns.index import PathIndex
from eventbus.patterns.parse import Branch, FieldRule
from eventbus.patterns.pattern import Pattern, PatternInput
from eventbus.patterns.reading import EventInput, load_event

__all__ = ["Matcher"]

#: Kinds whose keys hit regardless of how the rules share them: anything-but and the catch-all
#: bucket pass nearly every event, a numeric range or CIDR block a fair part of them.
HIT_RATE: dict[str, float] = {"ab": 1.0, "present": 1.0, "numeric": 0.3, "cidr": 0.3}
#: Kinds hit by a value's prefixes or suffixes: one key covers more values than an exact one.
SHARED_KINDS = frozenset({"prefix", "prefix_ic", "suffix", "suffix_ic"})
AFFIX_FLOOR = 0.05
#: Above this estimated hit rate, an exact anchor looks for an exact partner field.
PAIR_THRESHOLD = 0.002
#: A crowded bucket is indexed again once it holds this many branches per path they would be
#: filed under (see ``_pays``).
PER_PATH = 3


class _Branch:
    """One ``$or`` branch of one named rule, as filed in the indexes."""

    __slots__ = ("absent", "anchor", "check", "fields", "insides", "mask", "name", "onward", "partner", "twin")

    def __init__(
        self,
        name: str,
        fields: tuple[Field, ...],
        anchor: Field | None,
        check: tuple[Field, ...],
        partner: Field | None = None,
        onward: Field | None = None,
        mask: int = 0,
    ):
        self.name = name
        #: One bit per path of its fields (``Matcher._bits``): two of them among the paths an
        #: event has in arrays, and array consistency must be decided.
        self.mask = mask
        #: Its fields in arrays for each set of the event's array paths met (as their bits):
        #: filled by readers, the answer never changes.
        self.insides: dict[int, tuple[Field, ...]] | None = None
        #: The field the branch is filed under inside a crowded bucket (see ``crowd.py``): its
        #: best field besides the anchor and partner, if it has one that needs a value.
        self.onward = onward
        #: What a crowd files under ``onward``: when a hit there proves the field (an exact
        #: key), a twin that has nothing more to check on it; else the branch itself.
        self.twin = self
        if onward is not None and onward in check and all(exact for _, _, exact in onward.anchors):
            self.twin = _Branch(name, fields, anchor, tuple(f for f in check if f is not onward), partner, mask=mask)
        self.fields = fields
        self.anchor = anchor
        #: With a partner, the branch is filed under the pair of the two fields' exact values.
        self.partner = partner
        #: The fields still to verify once the anchor's index hit (the anchor itself too when
        #: the hit does not prove it, as for a wildcard filed under its prefix).
        self.check = check
        #: Has a field that allows absence (the only kind array consistency can rescue).
        self.absent = any(f.absence for f in fields)


class _Snapshot:
    """Everything ``match`` reads. Never changed after publication."""

    __slots__ = ("always", "bits", "indexes", "pairs", "probes", "rules", "trie")

    def __init__(
        self,
        trie: PathNode,
        indexes: dict[str, PathIndex[Any]],
        pairs: dict[str, dict[str, PairTable]],
        always: tuple[_Branch, ...],
        rules: dict[str, tuple[_Branch, ...]],
        bits: dict[str, int],
    ) -> None:
        self.trie = trie
        #: The bit of each used path in the branches' masks.
        self.bits = bits
        self.indexes = indexes
        #: first path -> second path -> {first value: {second value: branches}}: branches
        #: anchored on two exact fields at once (say source and detail-type), far more selective
        #: than either alone.
        self.pairs = pairs
        #: Branches with no field that needs a leaf (only ``exists: false``): checked every time.
        self.always = always
        self.rules = rules
        #: (path, its index, its pair tables) for every path that has either: an event with more
        #: used paths than these is looked up through them.
        self.probes = tuple((path, indexes.get(path), pairs.get(path)) for path in {*indexes, *pairs})


#: What an index key holds: branches, or one ``Crowd`` of them.
Bucket = tuple[Any, ...]
PairTable = dict[Any, dict[Any, Bucket]]


def _put(container: dict[Any, Any], key: Any, value: Any) -> None:
    """Store a level of the pair index, or drop it once empty."""
    if value:
        container[key] = value
    else:
        container.pop(key, None)


class _Edit:
    """A snapshot being derived from the published one: copies only what it touches."""

    def __init__(self, base: _Snapshot) -> None:
        self.base = base
        self.trie = base.trie
        self.bits = base.bits
        self.always = base.always
        self._indexes: dict[str, PathIndex[Any]] | None = None
        self._copied: set[str] = set()
        self.pairs = base.pairs

    def index(self, path: str) -> PathIndex[Any]:
        if self._indexes is None:
            self._indexes = dict(self.base.indexes)
        if path not in self._copied:
            old = self._indexes.get(path)
            self._indexes[path] = old.copy() if old is not None else PathIndex()
            self._copied.add(path)
        return self._indexes[path]

    def pair(self, first: str, second: str, a: Any, b: Any, change: Callable[[Bucket], Bucket]) -> None:
        """Change the bucket filed under values ``a`` at ``first`` and ``b`` at ``second``,
        copying the three dict levels on the way down."""
        pairs = dict(self.pairs)
        seconds = dict(pairs.get(first, {}))
        table = dict(seconds.get(second, {}))
        inner = dict(table.get(a, {}))
        bucket = change(inner.get(b, ()))
        _put(inner, b, bucket)
        _put(table, a, inner)
        _put(seconds, second, table)
        _put(pairs, first, seconds)
        self.pairs = pairs

    def publish(self, rules: dict[str, tuple[_Branch, ...]]) -> _Snapshot:
        indexes = self.base.indexes
        if self._indexes is not None:
            indexes = self._indexes
            for path in self._copied:
                if not indexes[path]:
                    del indexes[path]
        return _Snapshot(self.trie, indexes, self.pairs, self.always, rules, self.bits)


@mypyc_attr(allow_interpreted_subclasses=True)
class Matcher:
    """Named rules; one name may hold several patterns (OR). ``match`` returns the matching names.

    >>> m = Matcher()
    >>> m.add("big", {"detail": {"total": [{"numeric": [">", 100]}]}})
    >>> m.add("eu", {"detail": {"region": [{"prefix": "eu-"}]}})
    >>> sorted(m.match({"detail": {"total": 150, "region": "eu-west-1"}}))
    ['big', 'eu']

    Safe for one writer and any number of concurrent readers (threads): ``match`` sees each
    ``add``/``remove`` entirely or not at all.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot = _Snapshot(EMPTY_TRIE, {}, {}, (), {}, {})
        # Writer-side bookkeeping, only touched under the lock.
        self._fields: dict[tuple[Any, ...], Field] = {}
        self._field_refs: Counter[tuple[Any, ...]] = Counter()
        self._path_refs: Counter[str] = Counter()
        #: How many branches have each (path, anchor kind, key), and any key on each path: the
        #: share of a key among its path's keys estimates how often events will hit it.
        self._users: Counter[tuple[str, str, Any]] = Counter()
        self._path_users: Counter[str] = Counter()
        #: A bit for each used path (a power of two), and the bits freed by paths no longer used.
        self._bits: dict[str, int] = {}
        self._free_bits: list[int] = []

    # --- reading ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._snapshot.rules)

    def __contains__(self, name: object) -> bool:
        return name in self._snapshot.rules

    def names(self) -> list[str]:
        return list(self._snapshot.rules)

    def __repr__(self) -> str:
        return f"Matcher({len(self)} rules)"

    def match(self, event: EventInput) -> set[str]:
        """The names of the rules the event matches. ``event`` is a dict, JSON text or UTF-8 bytes."""
        data: Mapping[str, Any] = event if type(event) is dict else load_event(event)
        snapshot = self._snapshot  # one snapshot for the whole match
        if not snapshot.rules:
            return set()
        return _match(snapshot, data)

    def match_many(self, events: Iterable[EventInput]) -> list[set[str]]:
        """``[match(event) for event in events]``, all against one snapshot of the rules.

        JSON text that cannot be read raises ``InvalidEventError`` as ``match`` does, before any
        event is matched."""
        datas = [event if type(event) is dict else load_event(event) for event in events]
        snapshot = self._snapshot
        if not snapshot.rules:
            return [set() for _ in datas]
        return [_match(snapshot, data) for data in datas]

    # --- writing ---------------------------------------------------------------------------

    def add(self, name: object, pattern: PatternInput | Pattern) -> None:
        """Add a pattern under ``name`` (a dict, JSON text or ``Pattern``); raises ``PatternError``.

        A name added again holds every pattern given to it: the rule matches when any does.
        """
        # ``name`` is typed ``object`` so that the compiled build (native.py) lets a wrong type
        # reach this message instead of refusing it with its own.
        if not isinstance(name, str):
            raise TypeError(f"rule name must be a string, not {type(name).__name__}")
        compiled = pattern if isinstance(pattern, Pattern) else Pattern(pattern)
        with self._lock:
            base = self._snapshot
            edit = _Edit(base)
            branches = tuple(self._file(name, branch, edit) for branch in compiled.branches)
            rules = dict(base.rules)
            rules[name] = (*base.rules.get(name, ()), *branches)
            self._snapshot = edit.publish(rules)

    def remove(self, name: str) -> None:
        """Remove every pattern held under ``name``; an unknown name is ignored."""
        with self._lock:
            base = self._snapshot
            branches = base.rules.get(name)
            if branches is None:
                return
            edit = _Edit(base)
            for branch in branches:
                self._unfile(branch, edit)
            rules = dict(base.rules)
            del rules[name]
            self._snapshot = edit.publish(rules)

    def _file(self, name: str, rules: Branch, edit: _Edit) -> _Branch:
        fields = tuple(self._intern(rule, edit) for rule in rules)
        mask = 0
        for f in fields:
            mask |= self._bits[f.path]
        positive = [f for f in fields if not f.absence]
        anchor: Field | None = None
        if positive:
            costs = {f: self._cost(f) for f in positive}
            # An exact field when there is one: its keys are one dict probe away, and however
            # many rules share a key, their bucket is indexed again (crowd.py) on their next
            # field, which is about as selective as filing on that field directly.
            exact = [f for f in positive if _pairable(f)] or positive
            anchor = min(exact, key=lambda f: (costs[f], -f.depth))
            partner = self._partner(anchor, positive, costs)
            others = [f for f in positive if f is not anchor and f is not partner]
            onward = min(others, key=lambda f: (costs[f], -f.depth)) if others else None
            if partner is not None:
                rest = sorted((f for f in fields if f is not anchor and f is not partner), key=lambda f: costs.get(f, 0))
                branch = _Branch(name, fields, anchor, tuple(rest), partner, onward, mask)
                first, second = sorted((anchor, partner), key=lambda f: f.path)
                for _, a, _ in first.anchors:
                    for _, b, _ in second.anchors:
                        edit.pair(first.path, second.path, a, b, lambda bucket: _grown(bucket, branch))
            else:
                proven = all(exact for _, _, exact in anchor.anchors)
                rest = sorted((f for f in fields if not (proven and f is anchor)), key=lambda f: costs.get(f, 0))
                branch = _Branch(name, fields, anchor, tuple(rest), None, onward, mask)
                index = edit.index(anchor.path)
                for filed in anchor.anchors:
                    index.put(filed, _grown(index.bucket(filed), branch, crowds=filed[0] != "numeric"))
        else:
            branch = _Branch(name, fields, None, fields, mask=mask)
            edit.always = (*edit.always, branch)
        for f in positive:
            for kind, key, _ in f.anchors:
                self._users[(f.path, kind, key)] += 1
                self._path_users[f.path] += 1
        return branch

    def _unfile(self, branch: _Branch, edit: _Edit) -> None:
        anchor, partner = branch.anchor, branch.partner
        if anchor is not None and partner is not None:
            first, second = sorted((anchor, partner), key=lambda f: f.path)
            for _, a, _ in first.anchors:
                for _, b, _ in second.anchors:
                    edit.pair(first.path, second.path, a, b, lambda bucket: _shrunk(bucket, branch))
        elif anchor is not None:
            index = edit.index(anchor.path)
            for filed in anchor.anchors:
                index.put(filed, _shrunk(index.bucket(filed), branch))
        else:
            edit.always = tuple(b for b in edit.always if b is not branch)
        for f in branch.fields:
            for kind, key, _ in f.anchors:
                users_key = (f.path, kind, key)
                self._users[users_key] -= 1
                if self._users[users_key] <= 0:
                    del self._users[users_key]
                self._path_users[f.path] -= 1
                if self._path_users[f.path] <= 0:
                    del self._path_users[f.path]
            self._release(f, edit)

    def _partner(self, anchor: Field, positive: list[Field], costs: dict[Field, float]) -> Field | None:
        """A second exact field that makes a pair anchor worth it, if the anchor is exact too.

        A pair hits about as often as the product of its fields' rates; it pays when the best
        single field is still shared by many rules (a detail-type sent by several sources)."""
        if not _pairable(anchor) or costs[anchor] < PAIR_THRESHOLD:
            return None
        options = [f for f in positive if f is not anchor and _pairable(f)]
        if not options:
            return None
        best = min(options, key=lambda f: (costs[f], -f.depth))
        return best if costs[best] < 0.5 else None

    def _cost(self, field: Field) -> float:
        """The estimated share of events that hit the field's keys: anchoring a branch there
        makes it a candidate that often. With no statistics of the events, the rules stand in
        for them: a value that half the rules on a path name is taken to be half the events'."""
        path_users = self._path_users[field.path]
        total = 0.0
        for kind, key, _ in field.anchors:
            share = (self._users[(field.path, kind, key)] + 1) / (path_users + 2)
            if kind in SHARED_KINDS:
                # A prefix or suffix covers many values, rarely named exactly by other rules:
                # its share among keys understates how often it hits.
                share = min(1.0, max(2 * share, AFFIX_FLOOR))
            total += HIT_RATE.get(kind, share)
        return total

    def _intern(self, rule: FieldRule, edit: _Edit) -> Field:
        key = field_key(rule)
        field = self._fields.get(key)
        if field is None:
            field = self._fields[key] = Field(rule)
        self._field_refs[key] += 1
        self._path_refs[rule.path] += 1
        if self._path_refs[rule.path] == 1:
            edit.trie = trie_with(edit.trie, rule.path)
            bit = heapq.heappop(self._free_bits) if self._free_bits else 1 << len(self._bits)
            self._bits[rule.path] = bit
            edit.bits = dict(self._bits)
        return field

    def _release(self, field: Field, edit: _Edit) -> None:
        key = field_key(field.rule)
        self._field_refs[key] -= 1
        if self._field_refs[key] <= 0:
            del self._field_refs[key]
            del self._fields[key]
        self._path_refs[field.path] -= 1
        if self._path_refs[field.path] <= 0:
            del self._path_refs[field.path]
            edit.trie = trie_without(edit.trie, field.path)
            heapq.heappush(self._free_bits, self._bits.pop(field.path))
            edit.bits = dict(self._bits)


def _match(snapshot: _Snapshot, data: Mapping[str, Any]) -> set[str]:
    """The match loop (see the module's docstring and docs/matcher.md)."""
    matched: set[str] = set()
    flat, recorded = flatten(data, snapshot.trie)
    # The paths with leaves in arrays, as bits: a branch with two of them needs its array
    # consistency decided (one AND and one test per branch, not a set operation).
    in_arrays = recorded.in_arrays()
    arrays = 0
    if in_arrays:
        bits = snapshot.bits
        for path in in_arrays:
            arrays |= bits.get(path, 0)
    buckets: list[Bucket] = []
    probes = snapshot.probes
    if len(probes) > len(flat):
        indexes, pairs = snapshot.indexes, snapshot.pairs
        probes = tuple((path, indexes.get(path), pairs.get(path)) for path in flat)
    for path, index, seconds in probes:
        values = flat.get(path)
        if values is None:
            continue
        if len(values) > 1:
            # Equal leaves hit the same keys: look each distinct one up once.
            values = list(dict.fromkeys(values))
        if index is not None:
            exact = index.exact_only
            if exact is None:
                index.collect(values, buckets)
            else:
                for value in values:
                    hit = exact.get(value)
                    if hit is not None:
                        buckets.append(hit)
        if seconds is not None:
            _collect_pairs(values, seconds, flat, buckets)
    if snapshot.always:
        buckets.append(snapshot.always)
    if len(buckets) > 16:
        # Leaves with different values can hit one bucket (a prefix, a numeric range): go
        # through it once.
        buckets = list({id(bucket): bucket for bucket in buckets}.values())
    memo: dict[Field, bool] = {}
    decided: dict[tuple[Field, ...], bool] | None = None
    # Bound once: the loop below runs per candidate and per field.
    known, get, add = memo.get, flat.get, matched.add
    # Typed here, not by the buckets (tuples of anything): compiled (native.py), an attribute
    # of a known class is read directly instead of looked up by name.
    branch: _Branch
    crowd: Crowd[_Branch]
    for bucket in buckets:
        first = bucket[0]
        if type(first) is Crowd:
            crowd = first
            crowd.expand(flat, buckets)
            continue
        for branch in bucket:
            name = branch.name
            if name in matched:
                continue
            for field in branch.check:
                verdict = known(field)
                if verdict is None:
                    found = get(field.path)
                    if found is None:
                        verdict = field.absence
                    elif len(found) == 1:
                        verdict = field.test(found[0])
                    else:
                        verdict = field.holds(found)
                    memo[field] = verdict
                if not verdict:
                    break
            else:
                if arrays:
                    both = branch.mask & arrays
                    if both & (both - 1):
                        # Two or more fields in arrays: the exact decision, once per event
                        # for each set of such fields (rules often share them).
                        inside = _inside(branch, both, in_arrays)
                        if decided is None:
                            decided = {}
                        verdict = decided.get(inside)
                        if verdict is None:
                            verdict = decided[inside] = consistent(inside, recorded)
                        if not verdict:
                            continue
                add(name)
                continue
            # A field failed on its own. With arrays in play an ``exists: false`` field may
            # still hold through an inconsistent leaf, so only the exact decision can say no.
            if branch.absent and arrays:
                both = branch.mask & arrays
                if not both & (both - 1):
                    continue
                inside = _inside(branch, both, in_arrays)
                if not _may_be_absent(branch, inside, flat, memo):
                    continue
                if decided is None:
                    decided = {}
                verdict = decided.get(inside)
                if verdict is None:
                    verdict = decided[inside] = consistent(inside, recorded)
                if verdict:
                    matched.add(name)
    return matched


def _inside(branch: _Branch, both: int, in_arrays: AbstractSet[str]) -> tuple[Field, ...]:
    """The branch's fields whose paths are among ``in_arrays`` (``both``: their bits)."""
    insides = branch.insides
    if insides is None:
        insides = branch.insides = {}
    inside = insides.get(both)
    if inside is None:
        inside = insides[both] = tuple(f for f in branch.fields if f.path in in_arrays)
    return inside


def _onward(branch: _Branch) -> tuple[Field | None, _Branch]:
    return branch.onward, branch.twin


def _grown(bucket: Bucket, branch: _Branch, *, crowds: bool = True) -> Bucket:
    """``bucket`` with ``branch`` added: past ``CROWD`` branches, one ``Crowd`` of them, if
    that pays. Numeric ranges never crowd: their segment tree merges the buckets it files."""
    if bucket and type(bucket[0]) is Crowd:
        return (bucket[0].adding(branch, *_onward(branch)),)
    grown = (*bucket, branch)
    # Checked when the bucket passes the threshold and at each multiple of it after: a bucket
    # that stays plain costs O(its size / CROWD) per branch added, not O(its size).
    if crowds and len(grown) > CROWD and len(grown) % CROWD in (0, 1) and _pays(grown):
        return (Crowd.of(grown, _onward),)
    return grown


def _pays(branches: Bucket) -> bool:
    """A crowd costs a look-up per path its branches file under next, a plain bucket a check
    per branch: indexing again pays when there are several branches per path."""
    paths = {branch.onward.path for branch in branches if branch.onward is not None}
    return len(branches) >= PER_PATH * len(paths)


def _shrunk(bucket: Bucket, branch: _Branch) -> Bucket:
    """``bucket`` without ``branch``: a crowd down to half of ``CROWD`` is a plain bucket again."""
    if bucket and type(bucket[0]) is Crowd:
        crowd = bucket[0].removing(branch, *_onward(branch))
        return crowd.entries if len(crowd) <= CROWD // 2 else (crowd,)
    return tuple(x for x in bucket if x is not branch)


def _pairable(field: Field) -> bool:
    """Only exact values pair up: their keys are the leaf values themselves."""
    return len(field.anchors) <= 4 and all(kind == "exact" for kind, _, _ in field.anchors)


def _collect_pairs(
    values: list[Any], seconds: dict[str, PairTable], flat: dict[str, list[Any]], out: list[Bucket]
) -> None:
    for second, table in seconds.items():
        others = flat.get(second)
        if others is None:
            continue
        for value in values:
            inner = table.get(value)
            if inner is None:
                continue
            # Walk the smaller side, so that two large arrays cost their sum, not their product.
            if len(others) <= len(inner):
                for other in others:
                    found = inner.get(other)
                    if found is not None:
                        out.append(found)
            else:
                present = set(others)
                out.extend(bucket for key, bucket in inner.items() if key in present)


def _may_be_absent(branch: _Branch, inside: tuple[Field, ...], flat: dict[str, list[Any]], memo: dict[Field, bool]) -> bool:
    """Could the branch hold once absence is judged per array element? Its fields outside
    arrays must hold as they are; of those inside, the ones that need a value must each have
    one that satisfies them (only fields allowing absence may have failed)."""
    for field in branch.fields:
        if field.absence and field in inside:
            continue
        verdict = memo.get(field)
        if verdict is None:
            values = flat.get(field.path)
            verdict = memo[field] = field.absence if values is None else field.holds(values)
        if not verdict:
            return False
    return True
