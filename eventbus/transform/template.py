"""Input templates: compiled once, rendered with EventBridge's quoting rules.

EventBridge rules and Pipes share this machinery; they differ only in what a placeholder names
(a key of ``InputPathsMap`` or an inline ``<$.path>``) and in their reserved variables, which the
callers resolve before calling ``render``.

How a value is written depends on where its placeholder stands, which is known from the template
alone, so it is decided at compile time:

- A template whose first non-blank character is ``{`` or ``[`` is a *JSON template*. There an
  unquoted ``<var>`` is written as JSON (a string gains quotes, a missing path gives ``""``) and a
  ``<var>`` inside a string literal is written raw, without escaping (a string as is, an object
  or array as its JSON text). AWS delivers the result minified, and delivers nothing when it is
  not valid JSON.
- Any other template is a *text template*, delivered as written, every value flattened: a string
  raw, an object as ``{k:v,k2:v2}``, an array as ``[a,b]``, without quotes (the Pipes guide shows
  a bare ``<$.body>`` holding ``{"key": "value"}`` arriving that way).
- A path that matched nothing gives an empty value everywhere except as a JSON value (``""``).
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from eventbus.envelope import format_time
from eventbus.errors import TransformError
from eventbus.transform.paths import MISSING

__all__ = [
    "MAX_TEMPLATE",
    "PLACEHOLDER",
    "CompiledTemplate",
    "Context",
    "Slot",
    "flatten",
    "is_valid_json",
    "to_json",
    "utc_now_text",
]

#: The longest ``InputTemplate`` EventBridge and Pipes accept.
MAX_TEMPLATE: Final = 8192

#: ``<name>``: anything between angle brackets that holds no angle bracket is a placeholder, so a
#: stray ``<tag>`` is reported as an undefined placeholder instead of being delivered silently.
PLACEHOLDER = re.compile(r"<([^<>]+)>")

# Characters that can end or corrupt a JSON string literal when inserted raw into one.
_UNSAFE_IN_STRING = re.compile(r'["\\\x00-\x1f]')
_BLANK = " \t\r\n"


class Context(enum.Enum):
    JSON_VALUE = "json-value"  # unquoted, in a JSON template
    JSON_STRING = "json-string"  # inside a string literal of a JSON template
    TEXT = "text"  # anywhere in a text template


@dataclass(frozen=True, slots=True)
class Slot:
    """A placeholder and where it stands."""

    name: str
    context: Context


# One encoder made once: ``json.dumps`` with options builds a new one on every call.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_encode_string: Any = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.encode_basestring


def to_json(value: Any) -> str:
    """Compact JSON text of ``value``, as AWS writes values (UTF-8, no spaces)."""
    # Strings and integers, most of what templates insert, skip the encoder's set-up.
    kind = type(value)
    if kind is str:
        result: str = _encode_string(value)
        return result
    if kind is int:
        return int.__repr__(value)
    return _encode(value)


def flatten(value: Any) -> str:
    """A value as a text template writes it: JSON without quotes."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int):
        return to_json(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a number that JSON cannot carry")
        return to_json(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{flatten(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(flatten(v) for v in value) + "]"
    raise TypeError(f"a {type(value).__name__} is not a JSON value")


def utc_now_text() -> str:
    """Now, the way EventBridge writes times (``2025-01-01T00:00:00Z``): the ingestion time."""
    return format_time(datetime.now(UTC))


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; no JSON parser at a target would.
    raise ValueError(f"{name} is not JSON")


def is_valid_json(text: str) -> bool:
    try:
        json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False
    return True


def _scan(chunk: str, in_string: bool, minify: bool) -> tuple[str, bool]:
    """Track string literals through ``chunk``; drop blanks outside them when minifying."""
    out: list[str] = []
    i, n = 0, len(chunk)
    while i < n:
        c = chunk[i]
        if in_string:
            if c == "\\" and i + 1 < n:
                out.append(chunk[i : i + 2])
                i += 2
                continue
            if c == '"':
                in_string = False
            out.append(c)
        elif c == '"':
            in_string = True
            out.append(c)
        elif not (minify and c in _BLANK):
            out.append(c)
        i += 1
    return "".join(out), in_string


class CompiledTemplate:
    """A template split into literal text and slots; ``render`` only joins strings.

    ``label`` names the owner in error messages (``target my-target``).
    """

    __slots__ = ("_check_always", "_key_slot", "_parts", "is_json", "label", "names", "text")

    def __init__(self, text: str, *, label: str) -> None:
        self.text = text
        self.label = label
        self.is_json = text.lstrip(_BLANK)[:1] in ("{", "[")
        self._parts, self.names = self._split(minify=False)
        # ``null`` in every value slot and nothing in every string slot: when that parses, each
        # value slot stands alone between JSON delimiters, so any JSON value fits there, and only
        # raw text inserted into a string can break the result; render checks just that case.
        # Otherwise (``{"a": <v>``, ``-<v>``) every result has to be parsed to be trusted.
        # A placeholder used as an object key (``{<k>: 1}``) is where only a string fits; AWS
        # rules that out for JSON templates, so such a template delivers nothing.
        self._check_always = False
        self._key_slot = False
        if self.is_json:
            self._check_always = not is_valid_json(self._stand_in("null"))
            if self._check_always:
                self._key_slot = is_valid_json(self._stand_in('""'))
            else:
                # The shape is sound, so blanks outside strings can go once, here.
                self._parts, _ = self._split(minify=True)

    def _stand_in(self, value: str) -> str:
        return "".join(
            p if isinstance(p, str) else (value if p.context is Context.JSON_VALUE else "")
            for p in self._parts
        )

    def _split(self, *, minify: bool) -> tuple[list[str | Slot], tuple[str, ...]]:
        parts: list[str | Slot] = []
        names: dict[str, None] = {}
        in_string = False
        pos = 0
        for match in PLACEHOLDER.finditer(self.text):
            literal, in_string = _scan(self.text[pos : match.start()], in_string, minify)
            if literal:
                parts.append(literal)
            if not self.is_json:
                context = Context.TEXT
            elif in_string:
                context = Context.JSON_STRING
            else:
                context = Context.JSON_VALUE
            parts.append(Slot(match.group(1), context))
            names[match.group(1)] = None
            pos = match.end()
        literal, _ = _scan(self.text[pos:], in_string, minify)
        if literal:
            parts.append(literal)
        return parts, tuple(names)

    def render(self, values: Mapping[str, Any]) -> str:
        """The payload for ``values`` (name -> value; ``MISSING`` or absent for no match).

        Raises ``TransformError`` when AWS would deliver nothing, and for values that are not
        JSON (a ``set``, ``NaN``), which no event read from JSON can hold.
        """
        if self._key_slot:
            raise TransformError(
                f"InputTemplate for {self.label} uses a placeholder as an object key; nothing is delivered."
            )
        out: list[str] = []
        suspect = self._check_always
        try:
            for part in self._parts:
                if isinstance(part, str):
                    out.append(part)
                    continue
                value = values.get(part.name, MISSING)
                context = part.context
                if context is Context.JSON_VALUE:
                    out.append('""' if value is MISSING else to_json(value))
                elif context is Context.JSON_STRING:
                    text = "" if value is MISSING else value if isinstance(value, str) else to_json(value)
                    if not suspect and _UNSAFE_IN_STRING.search(text):
                        suspect = True
                    out.append(text)
                else:
                    out.append("" if value is MISSING else flatten(value))
        except (TypeError, ValueError, RecursionError) as exc:
            raise TransformError(f"InputTemplate for {self.label}: a value is not JSON ({exc}).") from None
        result = "".join(out)
        if suspect and not is_valid_json(result):
            raise TransformError(
                f"InputTemplate for {self.label} yields invalid JSON for this event; nothing is delivered."
            )
        if self._check_always:
            # Its literal parts could not be minified in advance; the whole result, now known
            # to be JSON, can.
            result, _ = _scan(result, False, True)
        return result
