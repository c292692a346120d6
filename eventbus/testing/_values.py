"""Leaf values for one pattern condition: values that satisfy it, and values that violate it.

Three views of every operator, kept side by side so they cannot drift apart:

* ``witnesses(c)``: a few fixed values that satisfy ``c`` (empty when nothing can). They decide,
  before any drawing, whether a pattern can be matched at all, and they are the fallback when a
  random draw lands outside a field's domain (an account must be 12 digits, say).
* ``satisfying(c)``: a hypothesis strategy of varied values that satisfy ``c``, built
  constructively (a prefix plus a random tail, a number inside the interval, an address inside
  the network...) so that draws almost never need to be thrown away.
* ``violations(c)``: fixed near misses that fail ``c`` (the prefix minus its last character, the
  bound just outside the interval...). Which of them fail *every* alternative of a field is left
  to the caller, which tests each candidate with the conditions themselves: the reference
  matcher's own ``Condition.test`` is the proof, never this module's reasoning.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import math
from typing import Any

from hypothesis import strategies as st

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
    Scalar,
    Suffix,
    SuffixIgnoreCase,
    Wildcard,
)

__all__ = ["GENERIC_VALUES", "satisfying", "scalars", "texts", "violations", "witnesses"]

# Mostly ASCII, with a sprinkle of Latin letters whose case mapping is awkward (sharp s, dotless i, long s,
# capital dotted I): the
# cases where a naive ignore-case generator would be wrong.
_ALPHABET = st.one_of(
    st.sampled_from("abcxyzABCXYZ0189-_./: "),
    st.characters(min_codepoint=0x20, max_codepoint=0x17F),
)
# Beyond 2**53 a JSON number may not survive a round trip through other parsers intact.
_SAFE_INT = 2**53

#: Values tried as violations for every field, whatever its conditions.
GENERIC_VALUES: tuple[Scalar, ...] = (None, True, False, 0, -1, 1.5, "", "x", "~", "0.0.0.0", "::1")


def texts(max_size: int = 6) -> st.SearchStrategy[str]:
    return st.text(_ALPHABET, max_size=max_size)


def scalars() -> st.SearchStrategy[Scalar]:
    """Any JSON scalar, weighted towards strings and small numbers."""
    return st.one_of(
        texts(),
        st.integers(-1000, 1000),
        st.none(),
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False),
    )


def _flippable(ch: str) -> bool:
    """Whether upper-casing ``ch`` and lower-casing it again gives ``ch`` back (not true of sharp s or dotless i)."""
    up = ch.upper()
    return up != ch and len(up) == 1 and up.lower() == ch


def _case_flips(lowered: str) -> st.SearchStrategy[str]:
    """``lowered`` with a random choice of its letters upper-cased."""
    if not any(_flippable(ch) for ch in lowered):
        return st.just(lowered)
    return st.lists(st.booleans(), min_size=len(lowered), max_size=len(lowered)).map(
        lambda flips: "".join(
            ch.upper() if flip and _flippable(ch) else ch for ch, flip in zip(lowered, flips, strict=True)
        )
    )


def _wildcard_text(segments: tuple[str, ...], fill: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """The literal segments with random text where each ``*`` stood.

    Greedy leftmost matching (``wildcard_match``) finds every segment at or before the place we put
    it, so the result always matches."""
    if len(segments) == 1:
        return st.just(segments[0])
    return st.lists(fill, min_size=len(segments) - 1, max_size=len(segments) - 1).map(
        lambda fills: segments[0] + "".join(f + s for f, s in zip(fills, segments[1:], strict=True))
    )


def _outside_strings(
    banned: frozenset[str] | set[str], base: st.SearchStrategy[str]
) -> st.SearchStrategy[str]:
    def escape(text: str) -> str:
        # At most len(banned) extensions can all be banned, so this ends.
        while text in banned:
            text += "~"
        return text

    return base.map(escape)


def _number_range(c: Numeric) -> tuple[float, float] | None:
    """The closed float interval ``c`` accepts, or None when no double lies inside it."""
    low = -math.inf if c.low is None else float(c.low)
    high = math.inf if c.high is None else float(c.high)
    if c.low is not None and c.low_open:
        low = math.nextafter(low, math.inf)
    if c.high is not None and c.high_open:
        high = math.nextafter(high, -math.inf)
    low = max(low, -1.7976931348623157e308)
    high = min(high, 1.7976931348623157e308)
    return (low, high) if low <= high else None


def _numbers(c: Numeric) -> st.SearchStrategy[Scalar]:
    bounds = _number_range(c)
    if bounds is None:
        return st.nothing()
    low, high = bounds
    # One-sided intervals: stay within a readable distance of the bound.
    if c.low is None:
        low = max(low, high - max(1000.0, abs(high)))
    if c.high is None:
        high = min(high, low + max(1000.0, abs(low)))
    options: list[st.SearchStrategy[Scalar]] = [st.floats(low, high)]
    int_low, int_high = max(math.ceil(low), -_SAFE_INT), min(math.floor(high), _SAFE_INT)
    if int_low <= int_high:
        options.insert(0, st.integers(int_low, int_high))
    for edge in (low, high):
        if c.test(edge):
            options.append(st.just(edge))
    return st.one_of(options)


def _addresses(c: Cidr) -> st.SearchStrategy[Scalar]:
    network = c.network
    return st.integers(0, network.num_addresses - 1).map(lambda i: str(network.network_address + i))


def _exact_spellings(value: Scalar) -> st.SearchStrategy[Scalar]:
    """The value itself, or another spelling the matcher treats as equal (5 and 5.0, IPv6 forms)."""
    if isinstance(value, bool) or value is None:
        return st.just(value)
    if isinstance(value, int) and abs(value) < _SAFE_INT:
        return st.sampled_from([value, float(value)])
    if isinstance(value, float) and value.is_integer() and abs(value) < _SAFE_INT:
        return st.sampled_from([value, int(value)])
    if isinstance(value, str):
        try:
            ip = ipaddress.ip_address(value)
        except ValueError:
            return st.just(value)
        if ip.version == 6:
            return st.sampled_from([value, ip.exploded])
    return st.just(value)


@functools.lru_cache(maxsize=4096)
def satisfying(c: Condition) -> st.SearchStrategy[Scalar]:
    """Varied leaf values that satisfy ``c``. ``Exists(False)`` has none: it is met by absence.

    Cached: strategies are immutable, and building (and validating) one per draw would cost more
    than the draw itself."""
    tail = texts()
    if isinstance(c, Exact):
        return _exact_spellings(c.value)
    if isinstance(c, Prefix):
        return tail.map(lambda t: c.prefix + t)
    if isinstance(c, PrefixIgnoreCase):
        return st.tuples(_case_flips(c.prefix), tail).map(lambda p: p[0] + p[1])
    if isinstance(c, Suffix):
        return tail.map(lambda t: t + c.suffix)
    if isinstance(c, SuffixIgnoreCase):
        return st.tuples(tail, _case_flips(c.suffix)).map(lambda p: p[0] + p[1])
    if isinstance(c, EqualsIgnoreCase):
        return _case_flips(c.value)
    if isinstance(c, Wildcard):
        return _wildcard_text(c.segments, texts(3))
    if isinstance(c, AnythingBut):
        strings: st.SearchStrategy[Scalar] = _outside_strings(c.strings, texts())
        numbers: st.SearchStrategy[Scalar] = st.integers(-1000, 1000).map(
            lambda n: _escape_number(n, c.numbers)
        )
        return st.one_of(strings, numbers, st.none(), st.booleans())
    if isinstance(c, AnythingButPrefix | AnythingButSuffix | AnythingButIgnoreCase | AnythingButWildcard):
        # Any non-string passes these; for strings, mend a random draw until it passes.
        return st.one_of(texts().map(lambda t: _mend_negated(c, t)), st.integers(-1000, 1000), st.none())
    if isinstance(c, Numeric):
        return _numbers(c)
    if isinstance(c, Exists):
        return scalars() if c.present else st.nothing()
    if isinstance(c, Cidr):
        return _addresses(c)
    raise TypeError(f"unknown condition {c!r}")


def _escape_number(n: float, banned: frozenset[float]) -> float:
    while n in banned:
        n += 1
    return n


def _mend_negated(c: Condition, text: str) -> Scalar:
    """A string near ``text`` that the negated string condition ``c`` accepts, else ``None``."""
    if c.test(text):
        return text
    for candidate in ("~" + text + "~", "\x7f" + text + "\x7f", "\x7f"):
        if c.test(candidate):
            return candidate
    return None  # e.g. anything-but wildcard "*": no string passes, null does


def witnesses(c: Condition) -> list[Scalar]:
    """A few fixed values satisfying ``c`` (possibly none: an empty numeric interval)."""
    found: list[Scalar] = []
    if isinstance(c, Exact):
        found = [c.value]
    elif isinstance(c, Prefix | PrefixIgnoreCase):
        found = [c.prefix, c.prefix + "x"]
    elif isinstance(c, Suffix | SuffixIgnoreCase):
        found = [c.suffix, "x" + c.suffix]
    elif isinstance(c, EqualsIgnoreCase):
        found = [c.value]
    elif isinstance(c, Wildcard):
        found = ["".join(c.segments), "x".join(c.segments)]
    elif isinstance(c, AnythingBut):
        found = [_mend_negated_set(c.strings, "x"), _escape_number(0, c.numbers)]
    elif isinstance(c, AnythingButPrefix | AnythingButSuffix | AnythingButIgnoreCase | AnythingButWildcard):
        found = [_mend_negated(c, "x"), _mend_negated(c, "example"), 0]
    elif isinstance(c, Numeric):
        found = _numeric_witnesses(c)
    elif isinstance(c, Exists):
        found = ["x", 0] if c.present else []
    elif isinstance(c, Cidr):
        found = [str(c.network.network_address), str(c.network.broadcast_address)]
    return [v for v in found if c.test(v)]


def _mend_negated_set(banned: frozenset[str], text: str) -> str:
    while text in banned:
        text += "~"
    return text


def _numeric_witnesses(c: Numeric) -> list[Scalar]:
    bounds = _number_range(c)
    if bounds is None:
        return []
    low, high = bounds
    middle = low / 2 + high / 2 if math.isfinite(low) and math.isfinite(high) else None
    candidates: list[Any] = [low, high, middle]
    if middle is not None:
        candidates.append(round(middle))
    if c.low is not None and c.high is None:
        candidates.append(math.floor(c.low) + 1)
    if c.high is not None and c.low is None:
        candidates.append(math.ceil(c.high) - 1)
    out: list[Scalar] = []
    for v in candidates:
        if isinstance(v, float) and math.isfinite(v) and v.is_integer() and abs(v) < _SAFE_INT:
            v = int(v)
        if v is not None and (not isinstance(v, float) or math.isfinite(v)) and v not in out:
            out.append(v)
    return out


def violations(c: Condition) -> list[Scalar]:
    """Fixed near misses for ``c``; callers keep only those ``c.test`` rejects."""
    found: list[Scalar] = []
    if isinstance(c, Exact):
        v = c.value
        if isinstance(v, str):
            found = [v + "x", "x" + v, v[:-1], v.swapcase(), v.upper()]
        elif isinstance(v, bool):
            found = [not v, str(v).lower()]
        elif v is None:
            found = ["null", False]
        else:
            found = [v + 1, v - 1, str(v)]
    elif isinstance(c, Prefix | PrefixIgnoreCase):
        found = [c.prefix[:-1], "~" + c.prefix, c.prefix[1:]]
    elif isinstance(c, Suffix | SuffixIgnoreCase):
        found = [c.suffix[1:], c.suffix + "~", c.suffix[:-1]]
    elif isinstance(c, EqualsIgnoreCase):
        found = [c.value + "~", c.value[:-1], "~" + c.value]
    elif isinstance(c, Wildcard):
        joined = "".join(c.segments)
        found = ["~" + joined, joined + "~", "".join(c.segments[:-1]), "".join(c.segments[1:])]
    elif isinstance(c, AnythingBut):
        found = [*sorted(c.strings), *sorted(c.numbers)]
    elif isinstance(c, AnythingButPrefix):
        found = [*(p + "~" for p in c.prefixes), *c.prefixes]
    elif isinstance(c, AnythingButSuffix):
        found = [*("~" + s for s in c.suffixes), *c.suffixes]
    elif isinstance(c, AnythingButIgnoreCase):
        found = [*sorted(c.values), *(v.upper() for v in sorted(c.values))]
    elif isinstance(c, AnythingButWildcard):
        found = [*("".join(s) for s in c.segments), *("x".join(s) for s in c.segments)]
    elif isinstance(c, Numeric):
        found = _numeric_violations(c)
    elif isinstance(c, Cidr):
        found = _cidr_violations(c)
    return [v for v in found if not c.test(v)]


def _numeric_violations(c: Numeric) -> list[Scalar]:
    out: list[float] = []
    if c.low is not None:
        out += [c.low, c.low - 1, math.nextafter(c.low, -math.inf), math.floor(c.low) - 1]
    if c.high is not None:
        out += [c.high, c.high + 1, math.nextafter(c.high, math.inf), math.ceil(c.high) + 1]
    return [v for v in out if isinstance(v, int) or math.isfinite(v)]


def _cidr_violations(c: Cidr) -> list[Scalar]:
    network = c.network
    out: list[Scalar] = []
    # Address arithmetic raises past either end of the family's range.
    with contextlib.suppress(ipaddress.AddressValueError):
        out.append(str(network.network_address - 1))
    with contextlib.suppress(ipaddress.AddressValueError):
        out.append(str(network.broadcast_address + 1))
    # An address of the other family is never inside the network.
    out.append("::1" if network.version == 4 else "10.0.0.1")
    out.append("not-an-address")
    return out
