"""JSON as every target can deliver it: no ``NaN``, no infinite number, no lone surrogate.

Python's ``json`` reads ``NaN`` and ``Infinity`` (which are not JSON), turns ``1e999`` into an
infinite float (which it then writes back as ``Infinity``), and decodes an escaped lone surrogate
(``"\\ud800"``) into a string that UTF-8 cannot encode. Each of these, once accepted, fails at
every target that writes bytes (a file, a socket, SQLite) on every attempt. What enters the bus
or a pipe is read with ``loads`` here instead, so such text is refused where it arrives, once,
with a reason, rather than at the targets, forever.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["dumps", "dumps_writable", "is_unicode", "loads", "problem"]


class _NotJson(ValueError):
    """Valid to Python's json module, not to JSON or to the targets."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotJson(f"the number {text[:40]} is beyond the range of a double")
    return value


# Made once: json.loads with options builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
# What ``json.dumps(value, separators=(",", ":"), ensure_ascii=..., default=repr)`` builds per call.
_WRITABLE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=repr)
_WRITABLE_ASCII = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=repr)
# A \u escape of a surrogate (D800-DFFF). A preceding escaped backslash makes this a false alarm,
# which only costs the full check below.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def is_unicode(text: str) -> bool:
    """Whether ``text`` is valid Unicode (encodes to UTF-8): no lone surrogate in it."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def loads(text: str) -> Any:
    """Parse JSON text; ``ValueError`` (with the reason) for anything a target could not deliver.

    Refused: what ``json.loads`` refuses, ``NaN``/``Infinity``/``-Infinity``, numbers beyond a
    double (``1e999``), lone surrogates (raw or ``\\u``-escaped), and nesting deeper than the
    interpreter's recursion limit.
    """
    if not is_unicode(text):
        raise _NotJson("the text holds a lone surrogate (it is not valid UTF-8)")
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise _NotJson("the JSON is nested too deeply") from None
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        reason = problem(value)
        if reason is not None:
            raise _NotJson(reason)
    return value


def problem(value: Any) -> str | None:
    """Why ``value`` cannot be delivered as JSON, or ``None`` when it can."""
    try:
        _ENCODER.encode(value).encode("utf-8")
    except UnicodeEncodeError:
        return "a string holds a lone surrogate (it is not valid UTF-8)"
    except RecursionError:
        return "the value is nested too deeply"
    except (ValueError, TypeError) as exc:
        return _encoding_problem(exc)
    return None


def dumps(value: Any) -> str:
    """Compact JSON text of ``value`` (UTF-8 as is); ``ValueError`` if a target could not deliver it."""
    try:
        text = _ENCODER.encode(value)
    except RecursionError:
        raise _NotJson("the value is nested too deeply") from None
    except (ValueError, TypeError) as exc:
        raise _NotJson(_encoding_problem(exc)) from None
    if not is_unicode(text):
        raise _NotJson("a string holds a lone surrogate (it is not valid UTF-8)")
    return text


def dumps_writable(value: Any) -> str:
    """Compact JSON text of ``value`` that any target can write as UTF-8, lossless.

    As ``json.dumps`` writes it (``NaN`` stays ``NaN``), with UTF-8 as is, unless a lone
    surrogate is in it: then every non-ASCII character is escaped (``\\udce9``), which is
    valid JSON text and reads back to the very same string. For what has to be written anyway
    (a dead letter, a target re-encoding a payload it was given), never for what is accepted.
    """
    text = _WRITABLE.encode(value)
    if is_unicode(text):
        return text
    return _WRITABLE_ASCII.encode(value)


def _encoding_problem(exc: ValueError | TypeError) -> str:
    message = str(exc)
    if message.startswith("Out of range float"):
        return "NaN or an infinite number is not JSON"
    return message  # "Object of type set is not JSON serializable", "Circular reference detected"
