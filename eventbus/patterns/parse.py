"""Pattern validation and compilation, with AWS's exact error messages.

The walk follows aws/event-ruler's JSON rule compiler step for step, because AWS's messages
depend on the order in which it meets problems: an operator is validated before a second key in
its object is noticed, ``$or`` forks the fields seen so far, and so on.

The result is a ``ParsedPattern``: a tuple of branches (``$or`` expanded), each a tuple of
``FieldRule``s sorted by path. A field rule is one path and the alternatives OR'ed on it.
"""

from __future__ import annotations

import decimal
import ipaddress
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eventbus.errors import PatternError
from eventbus.patterns.values import (
    AnythingBut,
    AnythingButIgnoreCase,
    AnythingButPrefix,
    AnythingButSuffix,
    AnythingButWildcard,
    Cidr,
    Condition,
    EqualsIgnoreCase,
    Exact,
    Exists,
    Numeric,
    Prefix,
    PrefixIgnoreCase,
    Suffix,
    SuffixIgnoreCase,
    Wildcard,
    ip_number,
)

__all__ = [
    "DEFAULT_MAX_PATTERN_SIZE",
    "MAX_OR_COMBINATIONS",
    "MAX_WILDCARD_COMPLEXITY",
    "FieldRule",
    "ParsedPattern",
    "load_pattern_source",
    "parse_pattern",
]

PREFIX = "Event pattern is not valid. Reason: "
DEFAULT_MAX_PATTERN_SIZE = 2048
MAX_OR_COMBINATIONS = 1000
#: The most NFA states a wildcard field may keep alive at once (see ``_wildcard_complexity``).
MAX_WILDCARD_COMPLEXITY = 10

_RESERVED_IN_OR = frozenset(
    {
        "exactly",
        "equals-ignore-case",
        "prefix",
        "suffix",
        "anything-but",
        "exists",
        "numeric",
        "cidr",
        "wildcard",
    }
)


@dataclass(frozen=True, slots=True)
class FieldRule:
    """The alternatives OR'ed on one field path (a leaf array of the pattern).

    Paths are dotted names, as in event-ruler: ``{"a": {"b.c": [...]}}`` and ``{"a.b": {"c": [...]}}``
    both name ``a.b.c``, and so does an event key ``"b.c"`` under ``a``.
    """

    path: str
    conditions: tuple[Condition, ...]

    @property
    def dotted(self) -> str:
        return self.path

    @property
    def allows_absence(self) -> bool:
        return any(isinstance(c, Exists) and not c.present for c in self.conditions)

    @property
    def requires_leaf(self) -> tuple[Condition, ...]:
        """The alternatives a present leaf value can satisfy."""
        return tuple(c for c in self.conditions if not (isinstance(c, Exists) and not c.present))


Branch = tuple[FieldRule, ...]


@dataclass(frozen=True, slots=True)
class ParsedPattern:
    """A validated pattern: its branches (one per ``$or`` combination) and its canonical JSON."""

    branches: tuple[Branch, ...]
    source: Mapping[str, Any]


def _fail(reason: str) -> PatternError:
    return PatternError(PREFIX + reason)


def _text(value: Any) -> str:
    """How Jackson's ``getText()`` spells a token in a message."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "{"
    if isinstance(value, list):
        return "["
    return json.dumps(value)


def _reject_constant(name: str) -> Any:
    raise ValueError(
        f"Non-standard token '{name}': enable JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS to allow"
    )


def _check_keys(source: Mapping[str, Any]) -> None:
    """Only a dict built in Python can have keys JSON cannot: name the first one, at any depth."""
    stack: list[Any] = [source]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            for key, value in node.items():
                if not isinstance(key, str):
                    kind = type(key).__name__
                    article = "an" if kind[0] in "aeiou" else "a"
                    raise _fail(f"Key {key!r} is {article} {kind}; the keys of a pattern must be strings")
                stack.append(value)
        elif isinstance(node, list | tuple):
            stack.extend(node)


class _Inexact(float):
    """A float literal that no double holds exactly (``0.10000000000000001``, ``1e400``): kept
    with its text, which event-ruler names when it refuses to compare it."""

    text: str

    def __new__(cls, value: float, text: str) -> _Inexact:
        number = super().__new__(cls, value)
        number.text = text
        return number


def _float_literal(text: str) -> float:
    number = float(text)
    if math.isfinite(number) and decimal.Decimal(text) == decimal.Decimal(repr(number)):
        return number
    return _Inexact(number, text)


def _comparable(value: float) -> float:
    """A numeric operand event-ruler can compare: a double that is exactly the number written
    (``ComparableNumber``). Any finite float parsed from a dict qualifies; an integer must be
    one a double holds exactly."""
    if isinstance(value, _Inexact):
        raise _fail(f"Cannot compare number : {value.text}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(f"Cannot compare number : {json.dumps(value)}")
        return value
    try:
        exact = float(value) == value
    except OverflowError:
        exact = False
    if not exact:
        raise _fail(f"Cannot compare number : {value}")
    return value


def load_pattern_source(source: str | bytes | Mapping[str, Any], *, max_size: int | None) -> Any:
    """JSON text (or an already-parsed mapping) to Python values, checking the size limit first."""
    if isinstance(source, Mapping):
        _check_keys(source)
        if max_size is not None:
            try:
                size = len(json.dumps(source, separators=(",", ":"), ensure_ascii=False))
            except (TypeError, ValueError, RecursionError) as exc:
                raise _fail(f"Pattern is not JSON-serialisable: {exc}") from None
            if size > max_size:
                raise _fail(f"Event pattern is {size} characters long; the limit is {max_size}")
        return source
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail(f"Invalid UTF-8 in pattern at byte {exc.start}") from None
    if not isinstance(source, str):
        raise _fail("Filter is not an object")
    if max_size is not None and len(source) > max_size:
        raise _fail(f"Event pattern is {len(source)} characters long; the limit is {max_size}")
    try:
        return json.loads(source, parse_constant=_reject_constant, parse_float=_float_literal)
    except RecursionError:
        raise _fail("Pattern is nested too deeply") from None
    except ValueError as exc:
        raise _fail(str(exc)) from None


def parse_pattern(
    source: str | bytes | Mapping[str, Any], *, max_size: int | None = DEFAULT_MAX_PATTERN_SIZE
) -> ParsedPattern:
    """Validate a pattern and compile it into branches; raises ``PatternError`` with AWS's message."""
    data = load_pattern_source(source, max_size=max_size)
    if not isinstance(data, dict):
        raise _fail("Filter is not an object")
    rules: list[dict[str, tuple[Condition, ...]]] = []
    try:
        _parse_object(rules, "", data, in_or=False)
    except RecursionError:
        raise _fail("Pattern is nested too deeply") from None
    branches = tuple(
        tuple(FieldRule(path, conditions) for path, conditions in sorted(rule.items())) for rule in rules
    )
    _check_wildcard_complexity(branches)
    return ParsedPattern(branches=branches, source=data)


def _parse_object(
    rules: list[dict[str, tuple[Condition, ...]]],
    path: str,
    obj: dict[str, Any],
    *,
    in_or: bool,
) -> None:
    if not obj:
        raise _fail("Empty objects are not allowed")
    for name, value in obj.items():
        if name == "$or":
            _parse_or(rules, path, value)
            continue
        if in_or and name in _RESERVED_IN_OR:
            raise _fail(f"{name} is Ruler reserved fieldName which cannot be used inside $or.")
        if isinstance(value, dict):
            _parse_object(rules, _join(path, name), value, in_or=in_or)
        elif isinstance(value, list):
            conditions = _parse_values(value)
            if not rules:
                rules.append({})
            for rule in rules:
                rule[_join(path, name)] = conditions
        else:
            raise _fail(f'"{name}" must be an object or an array')


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _parse_or(rules: list[dict[str, tuple[Condition, ...]]], path: str, value: Any) -> None:
    if not isinstance(value, list):
        raise _fail("It must be an Array followed with $or.")
    current = [dict(rule) for rule in rules]
    rules.clear()
    for item in value:
        if not isinstance(item, dict):
            raise _fail("Only JSON object is allowed in array of $or relationship.")
        forked = [dict(rule) for rule in current] or [{}]
        _parse_object(forked, path, item, in_or=True)
        rules.extend(forked)
        if len(rules) > MAX_OR_COMBINATIONS:
            raise _fail(
                f"The pattern has more than {MAX_OR_COMBINATIONS} combinations of $or branches; "
                "use fewer or smaller $or arrays"
            )
    if len(value) < 2:
        raise _fail("There must have at least 2 Objects in $or relationship.")


def _parse_values(values: list[Any]) -> tuple[Condition, ...]:
    conditions: list[Condition] = []
    for value in values:
        if isinstance(value, dict):
            conditions.append(_parse_expression(value))
        elif isinstance(value, list) or (isinstance(value, float) and value != value):
            # Any JSON number is a value to match (event-ruler matches one it cannot compare,
            # 1e400 say, by its text); NaN, only possible in a dict, is not a number.
            raise _fail("Match value must be String, number, true, false, or null")
        else:
            conditions.append(Exact(value))
    if not conditions:
        raise _fail("Empty arrays are not allowed")
    return tuple(conditions)


def _single_key(expr: dict[str, Any], message: str = "Only one key allowed in match expression") -> None:
    if len(expr) > 1:
        raise _fail(message)


def _parse_expression(expr: dict[str, Any]) -> Condition:
    if not expr:
        raise _fail("Match expression name not found")
    name, operand = next(iter(expr.items()))
    condition = _parse_operator(name, operand)
    too_many = "Too many elements in numeric expression" if name in ("numeric", "anything-but") else None
    _single_key(expr, too_many or "Only one key allowed in match expression")
    return condition


def _parse_operator(name: str, operand: Any) -> Condition:
    if name == "exactly":
        if not isinstance(operand, str):
            raise _fail("exact match pattern must be a string")
        return Exact(operand)
    if name in ("prefix", "suffix"):
        if isinstance(operand, dict):
            return _parse_affix_ignore_case(name, operand)
        if not isinstance(operand, str):
            raise _fail(f"{name} match pattern must be a string")
        return Prefix(operand) if name == "prefix" else Suffix(operand)
    if name == "numeric":
        if not isinstance(operand, list):
            raise _fail("Value of numeric must be an array.")
        return _parse_numeric(operand)
    if name == "anything-but":
        return _parse_anything_but(operand)
    if name == "exists":
        if not isinstance(operand, bool):
            raise _fail("exists match pattern must be either true or false.")
        return Exists(operand)
    if name == "cidr":
        if not isinstance(operand, str):
            raise _fail("prefix match pattern must be a string")
        return _parse_cidr(operand)
    if name == "equals-ignore-case":
        if not isinstance(operand, str):
            raise _fail("equals-ignore-case match pattern must be a string")
        return EqualsIgnoreCase(operand.lower())
    if name == "wildcard":
        if not isinstance(operand, str):
            raise _fail("wildcard match pattern must be a string")
        return Wildcard(operand, _wildcard_segments(operand))
    raise _fail(f"Unrecognized match type {name}")


def _parse_affix_ignore_case(name: str, operand: dict[str, Any]) -> Condition:
    label = name.capitalize()
    if not operand:
        raise _fail(f"{label} expression name not found")
    inner, value = next(iter(operand.items()))
    if inner != "equals-ignore-case":
        raise _fail(f"Unsupported {name} pattern: {inner}")
    if not isinstance(value, str):
        raise _fail("equals-ignore-case match pattern must be a string")
    _single_key(operand)
    return PrefixIgnoreCase(value.lower()) if name == "prefix" else SuffixIgnoreCase(value.lower())


def _is_json_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_numeric(items: list[Any]) -> Condition:
    """In event-ruler's order: each operator and operand is checked as it is read, and a number
    it cannot compare only once the whole expression has been read."""
    operand = tuple(items)
    if not items or not isinstance(items[0], str):
        raise _fail(f"Invalid member in numeric match: {_text(items[0]) if items else ']'}")
    op = items[0]
    if op not in ("=", ">=", ">", "<=", "<"):
        raise _fail(f"Unrecognized numeric range operator: {op}")
    if len(items) < 2 or not _is_json_number(items[1]):
        raise _fail(f"Value of {'equals' if op == '=' else op} must be numeric")
    value = items[1]
    if op == "=":
        if len(items) > 2:
            raise _fail("Too many elements in numeric expression")
        value = _comparable(value)
        return Numeric(value, False, value, False, operand)
    if op in ("<", "<="):
        if len(items) > 2:
            raise _fail("Too many elements in numeric expression")
        return Numeric(None, False, _comparable(value), op == "<", operand)
    if len(items) == 2:
        return Numeric(_comparable(value), op == ">", None, False, operand)
    top_op = items[2]
    if not isinstance(top_op, str):
        raise _fail(f"Bad value in numeric range: {_text(top_op)}")
    if top_op not in ("<", "<="):
        raise _fail(f"Bad numeric range operator: {top_op}")
    if len(items) < 4 or not _is_json_number(items[3]):
        raise _fail(f"Value of {top_op} must be numeric")
    if len(items) > 4:
        raise _fail("Too many terms in numeric range expression")
    value = _comparable(value)
    top = _comparable(items[3])
    if value >= top:
        raise _fail("Bottom must be less than top")
    return Numeric(value, op == ">", top, top_op == "<", operand)


def _parse_anything_but(operand: Any) -> Condition:
    kind = ""
    if isinstance(operand, dict):
        if not operand:
            raise _fail("Anything-But expression name not found")
        kind, inner = next(iter(operand.items()))
        if kind not in ("equals-ignore-case", "prefix", "suffix", "wildcard"):
            raise _fail(f"Unsupported anything-but pattern: {kind}")
        condition = _parse_anything_but_set(kind, inner)
        if len(operand) > 1:
            raise _fail("Too many elements in numeric expression")
        return condition
    if isinstance(operand, list):
        strings: set[str] = set()
        numbers: set[float] = set()
        for item in operand:
            if isinstance(item, str):
                strings.add(item)
            elif _is_json_number(item):
                numbers.add(_comparable(item))
            else:
                raise _fail("Inside anything but list, start|null|boolean is not supported.")
        if bool(strings) == bool(numbers):
            raise _fail(
                "Inside anything but list, either all values are number or string, mixed type is not supported"
            )
        return AnythingBut(frozenset(strings), frozenset(numbers))
    if isinstance(operand, str):
        return AnythingBut(strings=frozenset({operand}))
    if _is_json_number(operand):
        return AnythingBut(numbers=frozenset({_comparable(operand)}))
    raise _fail("Value of anything-but must be an array or single string/number value.")


def _parse_anything_but_set(kind: str, inner: Any) -> Condition:
    if not isinstance(inner, list | str) and not _is_json_number(inner):
        raise _fail("Value of anything-but must be an array or single string/number value.")
    items = inner if isinstance(inner, list) else [inner]
    texts: list[str] = []
    for item in items:
        if not isinstance(item, str):
            if kind == "equals-ignore-case":
                raise _fail(
                    "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
                )
            if kind == "wildcard":
                raise _fail("wildcard match pattern must be a string")
            raise _fail("prefix/suffix match pattern must be a string")
        if kind in ("prefix", "suffix") and not item:
            raise _fail("Null prefix/suffix not allowed")
        texts.append(item)
    if kind == "equals-ignore-case":
        return AnythingButIgnoreCase(frozenset(t.lower() for t in texts))
    if kind == "prefix":
        return AnythingButPrefix(tuple(sorted(set(texts))))
    if kind == "suffix":
        return AnythingButSuffix(tuple(sorted(set(texts))))
    unique = tuple(sorted(set(texts)))
    return AnythingButWildcard(unique, tuple(_wildcard_segments(t) for t in unique))


def _wildcard_segments(pattern: str) -> tuple[str, ...]:
    """Split at unescaped ``*``. Positions in messages count UTF-8 bytes of the quoted value,
    as event-ruler's wildcard parser reports them."""
    segments: list[str] = []
    current: list[str] = []
    pos = 1  # the opening quote is byte 0
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if i + 1 < len(pattern) and pattern[i + 1] == "*":
                raise _fail(f"Consecutive wildcard characters at pos {pos}")
            segments.append("".join(current))
            current = []
        elif ch == "\\":
            if i + 1 < len(pattern) and pattern[i + 1] in "*\\":
                current.append(pattern[i + 1])
                i += 2
                pos += 2
                continue
            raise _fail(f"Invalid escape character at pos {pos}")
        else:
            current.append(ch)
        # Java's getBytes writes an unpaired surrogate as "?": one byte.
        pos += len(ch.encode("utf-8", "replace"))
        i += 1
    segments.append("".join(current))
    return tuple(segments)


_IPV4_SHAPE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6_SHAPE = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")
_JAVA_INT = re.compile(r"[+-]?\d+")


def _parse_cidr(text: str) -> Cidr:
    """A CIDR block, checked as event-ruler's ``CIDR.cidr`` checks it, in its order."""
    # Java's String.split drops the empty strings at the end: "10.0.0.0/8/" has one "/".
    pieces = text.split("/")
    while pieces and not pieces[-1]:
        pieces.pop()
    if len(pieces) != 2:
        raise _fail("Malformed CIDR, one '/' required")
    address, bits = pieces
    # Integer.parseInt: a sign, decimal digits, and a 32-bit value; no spaces or underscores.
    if _JAVA_INT.fullmatch(bits) is None or not -(2**31) <= int(bits) < 2**31:
        raise _fail("Malformed CIDR, mask bits must be an integer")
    mask = int(bits)
    if mask < 0:
        raise _fail("Malformed CIDR, mask bits must not be negative")
    # What does not look like an address is "nonstandard"; what looks like one but is not
    # (10.0.0.256) is "invalid".
    if _IPV4_SHAPE.fullmatch(address) is None and _IPV6_SHAPE.fullmatch(address) is None:
        raise _fail(f"Nonstandard IP address: {address}")
    ip = ip_number(address)
    if ip is None:
        raise _fail(f"Invalid IP address: {address}")
    version, number = ip
    if version == 4:
        if mask > 31:
            raise _fail("IPv4 mask bits must be < 32")
        network: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.IPv4Network((number, mask), strict=False)
    else:
        if mask > 127:
            raise _fail("IPv6 mask bits must be < 128")
        network = ipaddress.IPv6Network((number, mask), strict=False)
    return Cidr(network, text)


# --- wildcard complexity -------------------------------------------------------------------------
#
# event-ruler builds one byte machine per field and rejects a rule when some input could keep too
# many wildcard states alive at once (its MachineComplexityEvaluator); AWS answers "Rule is too
# complex". We evaluate the same quantity on a small NFA per field: every wildcard value of the
# field, quotes included, with a state before each `*` and a looping state for the `*` itself.
# A subset construction over the bytes that occur in the patterns (plus one stand-in for every
# other byte) finds the largest set of states any input can reach; the search stops as soon as
# it passes the limit, so validation stays cheap.


def _wildcard_tokens(pattern: str) -> list[int]:
    tokens = [0x22]
    raw = pattern.encode("utf-8", "replace")
    i = 0
    while i < len(raw):
        if raw[i] == 0x2A:
            tokens.append(256)
        elif raw[i] == 0x5C:
            i += 1
            tokens.append(raw[i])
        else:
            tokens.append(raw[i])
        i += 1
    tokens.append(0x22)
    return tokens


def _wildcard_complexity(patterns: list[str], limit: int) -> int:
    # NFA: literal[state] = {byte: [next states]}, loop[state] = star state reachable by any byte.
    literal: list[dict[int, list[int]]] = [{}]
    loops: list[int | None] = [None]
    alphabet: set[int] = set()
    for pattern in patterns:
        current = 0
        previous_star: int | None = None
        for token in _wildcard_tokens(pattern):
            if token == 256:
                star = len(literal)
                literal.append({})
                loops.append(star)  # a star state loops on every byte
                loops[current] = star
                previous_star = star
                continue
            nxt = len(literal)
            literal.append({})
            loops.append(None)
            alphabet.add(token)
            literal[current].setdefault(token, []).append(nxt)
            if previous_star is not None:
                literal[previous_star].setdefault(token, []).append(nxt)
                previous_star = None
            current = nxt
    if len(literal) == 1:
        return 0
    symbols = [*sorted(alphabet), -1]
    start = frozenset({0})
    seen = {start}
    pending = [start]
    worst = 0
    while pending:
        active = pending.pop()
        for symbol in symbols:
            nxt_set: set[int] = set()
            for state in active:
                loop = loops[state]
                if loop is not None:
                    nxt_set.add(loop)
                if symbol >= 0:
                    nxt_set.update(literal[state].get(symbol, ()))
            if not nxt_set:
                continue
            # A state counts once, and once more for a star it can enter that is not yet active:
            # that is how event-ruler weighs "transitions for all bytes".
            size = len(nxt_set) + sum(
                1 for s in nxt_set if loops[s] is not None and loops[s] != s and loops[s] not in nxt_set
            )
            worst = max(worst, size)
            if worst > limit:
                return worst
            frozen = frozenset(nxt_set)
            if frozen not in seen:
                seen.add(frozen)
                pending.append(frozen)
    return worst


def _check_wildcard_complexity(branches: tuple[Branch, ...]) -> None:
    per_field: dict[str, list[str]] = {}
    for branch in branches:
        for rule in branch:
            for condition in rule.conditions:
                if isinstance(condition, Wildcard):
                    per_field.setdefault(rule.path, []).append(condition.pattern)
                elif isinstance(condition, AnythingButWildcard):
                    per_field.setdefault(rule.path, []).extend(condition.patterns)
    for patterns in per_field.values():
        unique = sorted(set(patterns))
        if _wildcard_complexity(unique, MAX_WILDCARD_COMPLEXITY) > MAX_WILDCARD_COMPLEXITY:
            raise _fail(
                "Rule is too complex - try using fewer wildcard characters or fewer repeating "
                "character sequences after a wildcard character"
            )
