"""Value conditions: one class per EventBridge operator.

Each condition answers ``test(value)`` for one leaf value of an event (a JSON scalar: ``str``,
``int``, ``float``, ``bool`` or ``None``). The reference matcher calls ``test`` directly; the
fast matcher reads the same fields to build its indexes, so the two cannot drift apart on what
an operator means.

JSON types matter the way they do in aws/event-ruler, which compares the JSON text of values:
the string ``"5"`` never equals the number ``5``, ``true`` is not ``1``, and the string forms
(prefix, suffix, equals-ignore-case, wildcard) only ever match strings. The negated string forms
(anything-but prefix, suffix, ...) therefore match every non-string value.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from eventbus.patterns.leaves import comparable, ip_number, is_number, wildcard_match

__all__ = [
    "AnythingBut",
    "AnythingButIgnoreCase",
    "AnythingButPrefix",
    "AnythingButSuffix",
    "AnythingButWildcard",
    "Cidr",
    "Condition",
    "EqualsIgnoreCase",
    "Exact",
    "Exists",
    "Numeric",
    "Prefix",
    "PrefixIgnoreCase",
    "Scalar",
    "Suffix",
    "SuffixIgnoreCase",
    "Wildcard",
    "ip_number",
    "comparable",
    "is_number",
    "wildcard_match",
]

Scalar = str | int | float | bool | None


def _describe(operator: str, operand: Any) -> str:
    return f"{operator} {json.dumps(operand, ensure_ascii=False)}"


@dataclass(frozen=True, slots=True)
class Condition:
    """Base of all conditions. ``source`` is the pattern's own JSON for this alternative."""

    kind: ClassVar[str] = ""

    def test(self, value: Scalar) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Exact(Condition):
    """A plain value in the pattern's array: ``"x"``, ``5``, ``true``, ``null``.

    Numbers compare by value (``5`` matches ``5.0`` and ``5e0``), as event-ruler adds a numeric
    equality beside the literal one. A string that spells an IP address (``ip_number``) also
    matches other spellings of that address, as event-ruler turns such strings into address
    ranges.
    """

    kind: ClassVar[str] = "exact"
    value: Scalar

    def test(self, value: Scalar) -> bool:
        mine = self.value
        if isinstance(mine, str):
            if not isinstance(value, str):
                return False
            if value == mine:
                return True
            ip = ip_number(mine)
            return ip is not None and ip_number(value) == ip
        if mine is None or isinstance(mine, bool):
            return value is mine
        return is_number(value) and value == mine

    def describe(self) -> str:
        return json.dumps(self.value, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Prefix(Condition):
    kind: ClassVar[str] = "prefix"
    prefix: str

    def test(self, value: Scalar) -> bool:
        return isinstance(value, str) and value.startswith(self.prefix)

    def describe(self) -> str:
        return _describe("prefix", self.prefix)


@dataclass(frozen=True, slots=True)
class PrefixIgnoreCase(Condition):
    kind: ClassVar[str] = "prefix-ignore-case"
    prefix: str  # lower-cased

    def test(self, value: Scalar) -> bool:
        return isinstance(value, str) and value.lower().startswith(self.prefix)

    def describe(self) -> str:
        return _describe("prefix", {"equals-ignore-case": self.prefix})


@dataclass(frozen=True, slots=True)
class Suffix(Condition):
    kind: ClassVar[str] = "suffix"
    suffix: str

    def test(self, value: Scalar) -> bool:
        return isinstance(value, str) and value.endswith(self.suffix)

    def describe(self) -> str:
        return _describe("suffix", self.suffix)


@dataclass(frozen=True, slots=True)
class SuffixIgnoreCase(Condition):
    kind: ClassVar[str] = "suffix-ignore-case"
    suffix: str  # lower-cased

    def test(self, value: Scalar) -> bool:
        return isinstance(value, str) and value.lower().endswith(self.suffix)

    def describe(self) -> str:
        return _describe("suffix", {"equals-ignore-case": self.suffix})


@dataclass(frozen=True, slots=True)
class EqualsIgnoreCase(Condition):
    kind: ClassVar[str] = "equals-ignore-case"
    value: str  # lower-cased

    def test(self, value: Scalar) -> bool:
        return isinstance(value, str) and value.lower() == self.value

    def describe(self) -> str:
        return _describe("equals-ignore-case", self.value)


@dataclass(frozen=True, slots=True)
class Wildcard(Condition):
    """``*`` matches any run of characters; ``segments`` are the unescaped literals between them."""

    kind: ClassVar[str] = "wildcard"
    pattern: str
    segments: tuple[str, ...]

    def test(self, value: Scalar) -> bool:
        return isinstance(value, str) and wildcard_match(self.segments, value)

    def describe(self) -> str:
        return _describe("wildcard", self.pattern)


@dataclass(frozen=True, slots=True)
class AnythingBut(Condition):
    """Any value except the listed strings, or except the listed numbers (never a mix)."""

    kind: ClassVar[str] = "anything-but"
    strings: frozenset[str] = frozenset()
    numbers: frozenset[float] = frozenset()

    def test(self, value: Scalar) -> bool:
        if isinstance(value, str):
            return value not in self.strings
        if is_number(value):
            return value not in self.numbers
        return True

    def describe(self) -> str:
        values: list[Any] = sorted(self.strings) if self.strings else sorted(self.numbers)
        return _describe("anything-but", values[0] if len(values) == 1 else values)


@dataclass(frozen=True, slots=True)
class AnythingButPrefix(Condition):
    kind: ClassVar[str] = "anything-but-prefix"
    prefixes: tuple[str, ...]

    def test(self, value: Scalar) -> bool:
        return not (isinstance(value, str) and value.startswith(self.prefixes))

    def describe(self) -> str:
        operand = self.prefixes[0] if len(self.prefixes) == 1 else list(self.prefixes)
        return _describe("anything-but", {"prefix": operand})


@dataclass(frozen=True, slots=True)
class AnythingButSuffix(Condition):
    kind: ClassVar[str] = "anything-but-suffix"
    suffixes: tuple[str, ...]

    def test(self, value: Scalar) -> bool:
        return not (isinstance(value, str) and value.endswith(self.suffixes))

    def describe(self) -> str:
        operand = self.suffixes[0] if len(self.suffixes) == 1 else list(self.suffixes)
        return _describe("anything-but", {"suffix": operand})


@dataclass(frozen=True, slots=True)
class AnythingButIgnoreCase(Condition):
    kind: ClassVar[str] = "anything-but-ignore-case"
    values: frozenset[str]  # lower-cased

    def test(self, value: Scalar) -> bool:
        return not (isinstance(value, str) and value.lower() in self.values)

    def describe(self) -> str:
        values = sorted(self.values)
        return _describe("anything-but", {"equals-ignore-case": values[0] if len(values) == 1 else values})


@dataclass(frozen=True, slots=True)
class AnythingButWildcard(Condition):
    kind: ClassVar[str] = "anything-but-wildcard"
    patterns: tuple[str, ...]
    segments: tuple[tuple[str, ...], ...]

    def test(self, value: Scalar) -> bool:
        if not isinstance(value, str):
            return True
        return not any(wildcard_match(s, value) for s in self.segments)

    def describe(self) -> str:
        operand = self.patterns[0] if len(self.patterns) == 1 else list(self.patterns)
        return _describe("anything-but", {"wildcard": operand})


@dataclass(frozen=True, slots=True)
class Numeric(Condition):
    """A numeric interval; ``None`` bounds are open-ended. Equality is ``low == high``, both closed."""

    kind: ClassVar[str] = "numeric"
    low: float | None
    low_open: bool
    high: float | None
    high_open: bool
    operand: tuple[Any, ...] = ()

    def test(self, value: Scalar) -> bool:
        if not is_number(value):
            return False
        assert isinstance(value, int | float)
        if not comparable(value):  # NaN, infinity, an integer past a double's precision
            return False
        low, high = self.low, self.high
        if low is not None and (value <= low if self.low_open else value < low):
            return False
        return not (high is not None and (value >= high if self.high_open else value > high))

    def describe(self) -> str:
        return _describe("numeric", list(self.operand))


@dataclass(frozen=True, slots=True)
class Exists(Condition):
    """``exists: true`` holds where the event has a leaf value at the path; ``false`` where not."""

    kind: ClassVar[str] = "exists"
    present: bool

    def test(self, value: Scalar) -> bool:
        # Only asked about leaves that are there; absence is decided by the matcher.
        return self.present

    def describe(self) -> str:
        return _describe("exists", self.present)


@dataclass(frozen=True, slots=True)
class Cidr(Condition):
    """The addresses of a block; an IPv4-mapped IPv6 block is the IPv4 block it maps."""

    kind: ClassVar[str] = "cidr"
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    text: str

    def test(self, value: Scalar) -> bool:
        if not isinstance(value, str):
            return False
        ip = ip_number(value)
        network = self.network
        return (
            ip is not None
            and ip[0] == network.version
            and int(network.network_address) <= ip[1] <= int(network.broadcast_address)
        )

    def describe(self) -> str:
        return _describe("cidr", self.text)
