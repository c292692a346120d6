"""Flattening an event for the matcher: one walk that visits only the fields some rule uses.

Rules name fields by dotted paths, and an event key may itself hold dots (``{"a.b": 1}`` sits at
``a.b``, as in the reference matcher). The used paths form a trie of their dot-separated segments;
the walk iterates the keys of each event object it enters and looks them up among the trie
node's children, so an event costs one dictionary look-up per key of every object on a used
path, and nothing for the objects and arrays no rule reaches. A key with dots is split and
followed segment by segment (the join of an event's keys equals a path exactly when their
segments do); one that leads to a used path may meet another spelling of that path, so the
walk stops there and the event is read again as the reference matcher reads it (``Members``).

The walk yields ``{path: [leaf values]}``. Values are normalized so that hash look-ups respect
JSON types: ``true``/``false`` become the ``TRUE``/``FALSE`` tokens (Python's ``True == 1``
would otherwise make them collide with numbers), other non-JSON scalars become ``OTHER``, and
subclasses of ``str``/``int``/``float`` become the plain type. On the way, each leaf inside an
array is recorded with the array element it sits in (``Members``), for the branches that need
array consistency decided; leaves outside arrays cost nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

__all__ = [
    "EMPTY_TRIE",
    "FALSE",
    "OTHER",
    "TRUE",
    "PathNode",
    "Token",
    "flatten",
    "Members",
    "normalize",
    "trie_with",
    "trie_without",
]

class Token:
    """A scalar that is neither a string nor a number: compares by identity, hashes apart from 1."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


TRUE = Token("true")
FALSE = Token("false")
#: Any leaf that is not a JSON scalar (a tuple, a Decimal...): only the negated operators and
#: ``exists`` can accept it, exactly as they accept it in the reference matcher.
OTHER = Token("other")


def normalize(value: Any) -> Any:
    """A leaf value as the matcher's indexes see it (the slow path of the walk)."""
    kind = type(value)
    if kind is str or kind is int or kind is float or value is None:
        return value
    if kind is bool:
        return TRUE if value else FALSE
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    return OTHER


class PathNode:
    """One trie node: the segments that lead on, and the path ending here if a rule uses it.

    Nodes are never changed once built; ``trie_with``/``trie_without`` copy the nodes along one
    path, so a published trie stays valid for the readers walking it.
    """

    __slots__ = ("children", "dotted", "path")

    def __init__(self, children: dict[str, PathNode], path: str | None) -> None:
        self.children = children
        self.path = path
        #: Where keys with dots lead from here, as ``_follow`` found them: events repeat their
        #: keys. Filled by readers; a result never changes, since the children never do.
        self.dotted: dict[str, PathNode | None] | None = None


EMPTY_TRIE = PathNode({}, None)


def trie_with(root: PathNode, path: str) -> PathNode:
    """A trie that also holds ``path``."""
    return _with(root, path.split("."), 0, path)


def _with(node: PathNode, segments: list[str], depth: int, path: str) -> PathNode:
    if depth == len(segments):
        return PathNode(node.children, path)
    segment = segments[depth]
    child = node.children.get(segment, EMPTY_TRIE)
    children = dict(node.children)
    children[segment] = _with(child, segments, depth + 1, path)
    return PathNode(children, node.path)


def trie_without(root: PathNode, path: str) -> PathNode:
    """A trie without ``path``, pruning the nodes that lead nowhere any more."""
    pruned = _without(root, path.split("."), 0)
    return EMPTY_TRIE if pruned is None else pruned


def _without(node: PathNode, segments: list[str], depth: int) -> PathNode | None:
    if depth == len(segments):
        return PathNode(node.children, None) if node.children else None
    segment = segments[depth]
    child = node.children.get(segment)
    if child is None:
        return node
    children = dict(node.children)
    new_child = _without(child, segments, depth + 1)
    if new_child is None:
        del children[segment]
    else:
        children[segment] = new_child
    if not children and node.path is None:
        return None
    return PathNode(children, node.path)


_FOLLOWED = 256  # keys with dots remembered per node, at most


def _follow(node: PathNode, key: Any) -> PathNode | None:
    """The node an event key with dots leads to, segment by segment."""
    if not isinstance(key, str) or "." not in key:
        return None
    seen = node.dotted
    if seen is None:
        seen = node.dotted = {}
    elif key in seen:
        return seen[key]
    found: PathNode | None = node
    for segment in key.split("."):
        assert found is not None
        found = found.children.get(segment)
        if found is None:
            break
    if len(seen) < _FOLLOWED:
        seen[key] = found
    return found


def flatten(event: Mapping[str, Any], root: PathNode) -> tuple[dict[str, list[Any]], Members]:
    """``{path: [normalized leaf values]}``, and the ``Members`` the walk recorded on the way.

    Only paths in the trie appear. Like the reference matcher, a root that is not a ``dict``
    has no leaves.
    """
    out: dict[str, list[Any]] = {}
    found = Members(out)
    if isinstance(event, dict) and root.children:
        try:
            _walk(event, root, out, found, 0)
        except _SpelledTwoWays:
            # A key with dots may meet another spelling of its path: read the whole event as
            # the reference matcher does (``Members``), and take the values from that reading.
            found = Members({}, complete=True)
            found.dotted = True
            _members_grouped(event, root, found)
            out = found.flat = {path: [value for value, _ in leaves] for path, leaves in found.leaves.items()}
    return out, found


class _SpelledTwoWays(Exception):
    """Raised by the walk at the first key with dots that leads to a used path."""


def _walk(obj: dict[Any, Any], node: PathNode, out: dict[str, list[Any]], found: Members, element: int) -> None:
    children = node.children
    for key, value in obj.items():
        child = children.get(key)
        if child is None:
            # Most keys are simply unused: settle them without a call.
            if type(key) is str and "." not in key:
                continue
            if _follow(node, key) is not None:
                raise _SpelledTwoWays
            continue
        kind = type(value)
        if kind is str or kind is int or kind is float or value is None or kind is bool:
            path = child.path
            if path is not None:
                if kind is bool:
                    value = TRUE if value else FALSE
                at = out.get(path)
                if at is None:
                    out[path] = [value]
                else:
                    at.append(value)
                if element:
                    members = found.leaves.get(path)
                    if members is None:
                        found.leaves[path] = [(value, element)]
                    else:
                        members.append((value, element))
        elif kind is dict:
            if child.children:
                _walk(value, child, out, found, element)
        else:
            _visit(value, child, out, found, element)


def _visit(value: Any, node: PathNode, out: dict[str, list[Any]], found: Members, element: int) -> None:
    """Everything but plain scalars and plain dicts: arrays, subclasses, odd objects."""
    if isinstance(value, list):
        # Arrays of arrays are unrolled with a stack, not recursion: an event may nest them
        # thousands deep. Each element gets its number as it is met.
        pending = [(value, element)]
        holder = found.holder
        array_of = found.array
        path = node.path
        while pending:
            items, outer = pending.pop()
            first = len(holder)
            holder.extend([outer] * len(items))
            array_of.extend([found.arrays] * len(items))
            found.arrays += 1
            for inner, item in enumerate(items, first):
                kind = type(item)
                if kind is str or kind is int or kind is float or item is None:
                    if path is not None:
                        at = out.get(path)
                        if at is None:
                            out[path] = [item]
                        else:
                            at.append(item)
                        found.add(path, item, inner)
                elif kind is dict:
                    if node.children:
                        _walk(item, node, out, found, inner)
                elif isinstance(item, list):
                    pending.append((item, inner))
                else:
                    _visit(item, node, out, found, inner)
    elif isinstance(value, dict):
        if node.children:
            _walk(value, node, out, found, element)
    elif node.path is not None:
        leaf = normalize(value)
        out.setdefault(node.path, []).append(leaf)
        if element:
            found.add(node.path, leaf, element)


class Members:
    """Which array element each leaf sits in: what the exact array-consistency decision
    (``consistency.py``) works on, recorded by ``flatten`` as it walks.

    Elements are numbered in the order the walk meets them; 0 is the root, outside every
    array. ``holder[e]`` is the element that holds element ``e``'s array, ``array[e]`` that
    array's number (both -1 for the root); ``depth()[e]`` is the number of arrays around it.
    An element's number is greater than its holder's, so going through the numbers downwards
    settles every element before the one holding it.

    The fast walk records only the leaves inside arrays: from the root, a path leads to its
    leaves by one route, so a path either has all its leaves in arrays or none (then they are
    ``flat``'s, in the root). That holds unless the event has a key with dots that leads to a
    used path (``dotted``): two spellings of one path may then meet at one position, where the
    reference matcher reads an array and whatever sits beside it as one array. ``flatten`` then
    reads the whole event that way instead, recording every leaf (``complete``).
    """

    __slots__ = (
        "_depth",
        "array",
        "arrays",
        "cache",
        "complete",
        "dotted",
        "flat",
        "holder",
        "leaves",
        "shallow",
    )

    def __init__(self, flat: dict[str, list[Any]], *, complete: bool = False) -> None:
        self.flat = flat
        #: Leaves inside arrays (all leaves, when ``complete``), with their element.
        self.leaves: dict[str, list[tuple[Any, int]]] = {}
        self.holder: list[int] = [-1]
        self.array: list[int] = [-1]
        self._depth: list[int] | None = None
        self.arrays = 0
        self.dotted = False
        self.complete = complete
        #: What the decision derives per field, kept for the other branches of the same event.
        self.cache: dict[Any, Any] = {}
        #: Per field, where its leaves sit when all in arrays of the root (``consistency.py``).
        self.shallow: dict[Any, Any] = {}

    def depth(self) -> list[int]:
        """How many arrays are around each element (the root: none)."""
        depth = self._depth
        if depth is None:
            depth = self._depth = [0] * len(self.holder)
            # A holder's number is smaller than its elements': one pass in order settles all.
            for element in range(1, len(depth)):
                depth[element] = depth[self.holder[element]] + 1
        return depth

    def add(self, path: str, value: Any, element: int) -> None:
        at = self.leaves.get(path)
        if at is None:
            self.leaves[path] = [(value, element)]
        else:
            at.append((value, element))

    def in_arrays(self) -> AbstractSet[str]:
        """The paths that may have leaves inside arrays (every path, after a key with dots)."""
        return self.flat.keys() if self.dotted else self.leaves.keys()

    def elements(self, path: str) -> set[int]:
        """The elements holding leaves at ``path`` directly."""
        leaves = self.leaves.get(path)
        if leaves is None:
            return {0} if not self.complete and path in self.flat else set()
        return {element for _, element in leaves}

    def values_at(self, path: str) -> dict[int, list[Any]]:
        """The leaves at ``path`` grouped by element."""
        key = ("at", path)
        grouped: dict[int, list[Any]] | None = self.cache.get(key)
        if grouped is None:
            grouped = self.cache[key] = {}
            leaves = self.leaves.get(path)
            if leaves is None:
                if not self.complete and path in self.flat:
                    grouped[0] = self.flat[path]
            else:
                for value, element in leaves:
                    at = grouped.get(element)
                    if at is None:
                        grouped[element] = [value]
                    else:
                        at.append(value)
        return grouped

    def by_value(self, path: str) -> dict[Any, list[int]]:
        """The leaves at ``path`` grouped by value: each distinct value is tested once."""
        key = ("values", path)
        grouped: dict[Any, list[int]] | None = self.cache.get(key)
        if grouped is None:
            grouped = self.cache[key] = {}
            leaves = self.leaves.get(path)
            if leaves is None:
                if not self.complete:
                    for value in self.flat.get(path, ()):
                        grouped[value] = [0]
            else:
                for value, element in leaves:
                    at = grouped.get(value)
                    if at is None:
                        grouped[value] = [element]
                    else:
                        at.append(element)
        return grouped


def _members_grouped(event: dict[Any, Any], root: PathNode, found: Members) -> None:
    """The reading of the reference matcher: each step holds every value found at one position
    of one element (a key with dots adds the object its segments spell), and a position holding
    an array beside anything else holds one array of all of it: the arrays' elements, then the
    scalars, then the objects together as one element."""
    _Regroup(found).obj(event, root, 0)


class _Regroup:
    """The walk of ``_members_grouped``: objects by recursion (as deep as the trie), arrays of
    arrays with a stack."""

    __slots__ = ("found", "leaves")

    def __init__(self, found: Members) -> None:
        self.found = found
        self.leaves = found.leaves

    def leaf(self, value: Any, path: str, element: int) -> None:
        at = self.leaves.get(path)
        if at is None:
            self.leaves[path] = [(normalize(value), element)]
        else:
            at.append((normalize(value), element))

    def one(self, value: Any, node: PathNode, element: int) -> None:
        """One value alone at its position."""
        if isinstance(value, dict):
            if node.children:
                self.obj(value, node, element)
        elif isinstance(value, list):
            self.array(value, None, node, element)
        elif node.path is not None:
            self.leaf(value, node.path, element)

    def many(self, values: list[Any], node: PathNode, element: int) -> None:
        """Several values at one position (two spellings of it met)."""
        if all(type(v) is dict for v in values):
            # Objects only (the usual meeting): one object of all their keys.
            if node.children:
                grouped: dict[PathNode, list[Any]] = {}
                for obj in values:
                    _gather(obj, node.children, grouped)
                self.groups(grouped, element)
            return
        lists = [v for v in values if isinstance(v, list)]
        objects = [v for v in values if isinstance(v, dict)]
        scalars = [v for v in values if not isinstance(v, list | dict)]
        if lists:
            self.array([item for array in lists for item in array] + scalars, objects or None, node, element)
            return
        if node.path is not None:
            for value in scalars:
                self.leaf(value, node.path, element)
        if objects and node.children:
            grouped = {}
            for obj in objects:
                _gather(obj, node.children, grouped)
            self.groups(grouped, element)

    def groups(self, grouped: dict[PathNode, list[Any]], element: int) -> None:
        leaves = self.leaves
        for child, values in grouped.items():
            if len(values) > 1:
                self.many(values, child, element)
                continue
            value = values[0]
            kind = type(value)
            if kind is str or kind is int or kind is float or value is None:
                path = child.path
                if path is not None:
                    at = leaves.get(path)
                    if at is None:
                        leaves[path] = [(value, element)]
                    else:
                        at.append((value, element))
            else:
                self.one(value, child, element)

    def array(self, items: list[Any], merged: list[Any] | None, node: PathNode, element: int) -> None:
        """An array of ``items``, and one more element holding the ``merged`` objects if any."""
        found = self.found
        holder, array_of = found.holder, found.array
        pending: list[tuple[list[Any], list[Any] | None, int]] = [(items, merged, element)]
        while pending:
            values, objects, outer = pending.pop()
            size = len(values) + (1 if objects else 0)
            first = len(holder)
            holder.extend([outer] * size)
            array_of.extend([found.arrays] * size)
            found.arrays += 1
            for inner, item in enumerate(values, first):
                if isinstance(item, list):
                    pending.append((item, None, inner))
                else:
                    self.one(item, node, inner)
            if objects:
                self.many(objects, node, first + len(values))

    def obj(self, obj: dict[Any, Any], node: PathNode, element: int) -> None:
        """One object alone at its position. Its own keys name distinct positions, except that a
        key with dots adds an object at the position of its first segment, meeting whatever the
        plain key there holds; a scalar stays a leaf beside an object."""
        children = node.children
        leaves = self.leaves
        plain: list[tuple[PathNode, Any]] = []
        spelled: dict[PathNode, list[Any]] | None = None
        for key, value in obj.items():
            child = children.get(key)
            if child is not None:
                kind = type(value)
                if kind is str or kind is int or kind is float or value is None:
                    path = child.path
                    if path is not None:
                        at = leaves.get(path)
                        if at is None:
                            leaves[path] = [(value, element)]
                        else:
                            at.append((value, element))
                else:
                    plain.append((child, value))
            elif isinstance(key, str) and "." in key:
                head, _, rest = key.partition(".")
                child = children.get(head)
                if child is not None:
                    if spelled is None:
                        spelled = {}
                    spelled.setdefault(child, []).append({rest: value})
        if spelled is None:
            for child, value in plain:
                self.one(value, child, element)
            return
        for child, value in plain:
            if isinstance(value, dict | list) and child in spelled:
                spelled[child].append(value)
            else:
                self.one(value, child, element)
        self.groups(spelled, element)


def _gather(obj: dict[Any, Any], children: dict[str, PathNode], grouped: dict[PathNode, list[Any]]) -> None:
    """Add what ``obj`` holds at each used child to ``grouped`` (a key with dots: the object
    its remaining segments spell)."""
    for key, value in obj.items():
        child = children.get(key)
        if child is not None:
            grouped.setdefault(child, []).append(value)
        elif isinstance(key, str) and "." in key:
            head, _, rest = key.partition(".")
            child = children.get(head)
            if child is not None:
                grouped.setdefault(child, []).append({rest: value})
