"""Flattening an event for the matcher: one walk that visits only the fields some rule uses.

Rules name fields by dotted paths, and an event key may itself hold dots (``{"a.b": 1}`` sits at
``a.b``, as in the reference matcher). The used paths form a trie of their dot-separated segments;
the walk iterates the keys of each event object it enters and looks them up among the trie
node's children, so an event costs one dictionary look-up per key of every object on a used
path, and nothing for the objects and arrays no rule reaches. A key with a dot that is not a
child is split and followed segment by segment: the join of an event's keys equals a path
exactly when their segments do.

The walk yields ``{path: [leaf values]}``. Values are normalized so that hash look-ups respect
JSON types: ``true``/``false`` become the ``TRUE``/``FALSE`` tokens (Python's ``True == 1``
would otherwise make them collide with numbers), other non-JSON scalars become ``OTHER``, and
subclasses of ``str``/``int``/``float`` become the plain type. Array membership is not recorded
on this fast path, only which paths had a leaf inside some array; ``leaves_with_membership``
walks again, recording it, for the rare rule that needs array consistency checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "EMPTY_TRIE",
    "FALSE",
    "OTHER",
    "TRUE",
    "Membership",
    "PathNode",
    "Token",
    "flatten",
    "leaves_with_membership",
    "normalize",
    "trie_with",
    "trie_without",
]

#: (array identity, element index) pairs from the root to a leaf, as in the reference matcher.
Membership = tuple[tuple[int, int], ...]


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

    __slots__ = ("children", "path")

    def __init__(self, children: dict[str, PathNode], path: str | None) -> None:
        self.children = children
        self.path = path


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


def _follow(node: PathNode, key: Any) -> PathNode | None:
    """The node an event key with dots leads to, segment by segment."""
    if not isinstance(key, str) or "." not in key:
        return None
    for segment in key.split("."):
        found = node.children.get(segment)
        if found is None:
            return None
        node = found
    return node


def flatten(event: Mapping[str, Any], root: PathNode) -> tuple[dict[str, list[Any]], set[str]]:
    """``({path: [normalized leaf values]}, {paths with a leaf inside an array})``.

    Only paths in the trie appear. Like the reference matcher, a root that is not a ``dict``
    has no leaves.
    """
    out: dict[str, list[Any]] = {}
    in_arrays: set[str] = set()
    if isinstance(event, dict) and root.children:
        _walk(event, root, out, in_arrays, False)
    return out, in_arrays


def _walk(obj: dict[Any, Any], node: PathNode, out: dict[str, list[Any]], in_arrays: set[str], nested: bool) -> None:
    children = node.children
    for key, value in obj.items():
        child = children.get(key)
        if child is None:
            # Most keys are simply unused: settle them without a call.
            if type(key) is str and "." not in key:
                continue
            child = _follow(node, key)
            if child is None:
                continue
        kind = type(value)
        if kind is str or kind is int or kind is float or value is None:
            path = child.path
            if path is not None:
                found = out.get(path)
                if found is None:
                    out[path] = [value]
                else:
                    found.append(value)
                if nested:
                    in_arrays.add(path)
        elif kind is dict:
            if child.children:
                _walk(value, child, out, in_arrays, nested)
        else:
            _visit(value, child, out, in_arrays, nested)


def _visit(value: Any, node: PathNode, out: dict[str, list[Any]], in_arrays: set[str], nested: bool) -> None:
    """Everything but plain scalars and plain dicts: arrays, subclasses, odd objects."""
    if isinstance(value, list):
        for item in value:
            _visit(item, node, out, in_arrays, True)
    elif isinstance(value, dict):
        if node.children:
            _walk(value, node, out, in_arrays, nested)
    elif node.path is not None:
        out.setdefault(node.path, []).append(normalize(value))
        if nested:
            in_arrays.add(node.path)


def leaves_with_membership(event: Mapping[str, Any], root: PathNode) -> dict[str, list[tuple[Any, Membership]]]:
    """``{path: [(normalized value, membership)]}``: the slow walk, for array consistency."""
    out: dict[str, list[tuple[Any, Membership]]] = {}
    if isinstance(event, dict):
        _walk_members(event, root, (), out)
    return out


def _walk_members(
    obj: dict[Any, Any], node: PathNode, membership: Membership, out: dict[str, list[tuple[Any, Membership]]]
) -> None:
    for key, value in obj.items():
        child = node.children.get(key)
        if child is None:
            child = _follow(node, key)
            if child is None:
                continue
        _visit_members(value, child, membership, out)


def _visit_members(
    value: Any, node: PathNode, membership: Membership, out: dict[str, list[tuple[Any, Membership]]]
) -> None:
    if isinstance(value, list):
        array = id(value)
        for index, item in enumerate(value):
            _visit_members(item, node, (*membership, (array, index)), out)
    elif isinstance(value, dict):
        if node.children:
            _walk_members(value, node, membership, out)
    elif node.path is not None:
        out.setdefault(node.path, []).append((normalize(value), membership))
