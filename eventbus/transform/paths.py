"""JSONPaths as EventBridge evaluates them: parsed once, walked cheaply on every event.

jsonpath-ng parses and validates every path. A *definite* path (only field names and single
indices, the overwhelming majority: ``$.detail.payload``, ``$.detail.items[0]``) is then turned
into a tuple of steps walked by hand, which is several times faster than ``find()`` and is what
runs on the delivery hot path. Anything else (wildcards, slices, ``..``) goes through jsonpath-ng
and yields the list of its matches, as the Java JSONPath library behind EventBridge does for
indefinite paths.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Final

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.jsonpath import Child, Descendants, Fields, Index, Root
from jsonpath_ng.parser import parse

from eventbus import json_strict

__all__ = ["MISSING", "CompiledPath", "compile_path", "decode_json_text"]


class _Missing:
    """The value of a path that matched nothing (distinct from a JSON ``null``)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()

# AWS accepts names jsonpath-ng's lexer does not (``$.detail.a/b``, ``$.detail.1st``); quoting such
# a dot segment makes jsonpath-ng read it as the plain field name AWS means.
_DOT_SEGMENT = re.compile(r"\.([^.\[\]\"']+)")
_PLAIN_NAME = re.compile(r"[A-Za-z_@][A-Za-z0-9_@\-]*\Z")

Step = str | int


class CompiledPath:
    """One parsed JSONPath. ``extract(doc)`` returns the value or ``MISSING``."""

    __slots__ = ("_expr", "_steps", "text")

    def __init__(self, text: str, steps: tuple[Step, ...] | None, expr: Any) -> None:
        self.text = text
        self._steps = steps
        self._expr = expr

    @property
    def definite(self) -> bool:
        """True when the path names at most one value (no wildcard, slice or ``..``)."""
        return self._steps is not None

    def extract(self, doc: Any) -> Any:
        """The value at this path in ``doc``: one value, a list of matches, or ``MISSING``."""
        if self._steps is None:
            matches = [m.value for m in self._expr.find(doc)]
            return matches if matches else MISSING
        cur = doc
        for step in self._steps:
            if isinstance(step, str):
                if type(cur) is not dict or step not in cur:
                    return MISSING
                cur = cur[step]
            else:
                if type(cur) is not list or not -len(cur) <= step < len(cur):
                    return MISSING
                cur = cur[step]
        return cur

    def __repr__(self) -> str:
        return f"CompiledPath({self.text!r})"


def decode_json_text(text: str) -> Any:
    """A JSON object or array as a value; any other text as itself.

    Read strictly: text with ``NaN``, ``1e999`` or an escaped lone surrogate is not JSON a
    target could deliver once decoded, so it stays the text it is (which every target can).
    """
    stripped = text.lstrip()
    if not stripped or stripped[0] not in "{[":
        return text
    try:
        return json_strict.loads(text)
    except ValueError:
        return text


def _quote_segment(match: re.Match[str]) -> str:
    name = match.group(1)
    if name == "*" or _PLAIN_NAME.match(name):
        return match.group(0)
    return f'."{name}"'


def _steps_of(node: Any) -> list[Step] | None:
    """The walk for a definite path, or None when the path may name several values."""
    if isinstance(node, Root):
        return []
    if isinstance(node, Child):
        left = _steps_of(node.left)
        right = _steps_of(node.right)
        if left is None or right is None:
            return None
        return left + right
    if isinstance(node, Fields):
        if len(node.fields) == 1 and node.fields[0] != "*":
            return [str(node.fields[0])]
        return None
    if isinstance(node, Index):
        indices = getattr(node, "indices", None) or (getattr(node, "index", None),)
        if len(indices) == 1 and isinstance(indices[0], int):
            return [indices[0]]
        return None
    return None


def _starts_at_root(node: Any) -> bool:
    while isinstance(node, Child | Descendants):
        node = node.left
    return isinstance(node, Root)


def compile_path(text: str) -> CompiledPath:
    """Parse ``text`` (which must start at ``$``); raise ``ValueError`` when it is not a JSONPath."""
    if not text.startswith("$"):
        raise ValueError(f"{text!r} does not start with $")
    try:
        with warnings.catch_warnings():
            # Union and intersection syntax is deprecated upstream; we reject nothing for it,
            # but a config load should not print library warnings.
            warnings.simplefilter("ignore", DeprecationWarning)
            # Quoted names (``$['a.b']``) are left alone: rewriting could split them at a dot.
            quoted = "'" in text or '"' in text
            expr = parse(text if quoted else _DOT_SEGMENT.sub(_quote_segment, text))
    except (JsonPathLexerError, JsonPathParserError, ValueError, TypeError, AttributeError) as exc:
        # The parser's own message names lines and columns of the rewritten text; keep it short.
        raise ValueError(f"{text!r} is not a valid JSONPath") from exc
    if not _starts_at_root(expr):
        raise ValueError(f"{text!r} is not a valid JSONPath")
    steps = _steps_of(expr)
    return CompiledPath(text, tuple(steps) if steps is not None else None, expr)
