"""What the operators compute on one leaf value: whether it is a JSON number, whether event-ruler
can compare it, the IP address a string spells, and wildcard search.

Kept apart from the condition classes (``values.py``) because the matcher calls them for every
leaf it tests: they are compiled with its per-event modules (``native.py``), the classes are not.
"""

from __future__ import annotations

import functools
import math

__all__ = ["comparable", "ip_number", "is_number", "wildcard_match"]


def is_number(value: object) -> bool:
    """JSON numbers only: Python's bool is an int, but JSON's true is not a number."""
    return (isinstance(value, int | float)) and not isinstance(value, bool)


def comparable(value: int | float) -> bool:
    """Can event-ruler compare this event number? Only a double that is exactly the number
    (``ComparableNumber``): not an overflow (``1e400`` reads as infinity), not NaN, not an
    integer no double holds (``2**53 + 1``). Numeric conditions skip the others."""
    if isinstance(value, float):
        return math.isfinite(value)
    try:
        # Compared as integers: compiled (native.py), an int beside a float is converted to a
        # float first, which would make 2**53 + 1 equal to its rounding.
        return int(float(value)) == value
    except OverflowError:
        return False


_HEX_COLON = frozenset("0123456789abcdefABCDEF:")
_DIGITS = frozenset("0123456789")


@functools.lru_cache(maxsize=4096)
def ip_number(text: str) -> tuple[int, int] | None:
    """``(4 or 6, the address as an integer)`` when ``text`` spells an IP address the way
    event-ruler reads one (its IPv4 and IPv6 regular expressions, then Java's ``InetAddress``),
    else ``None``.

    IPv4: four dot-separated ASCII decimal numbers of at most 255, without leading zeros.
    IPv6: hex digits and colons only, with one colon at least: eight groups of one to four hex
    digits, or fewer around one ``::``. An IPv4-mapped address (``::ffff:a00:1``) is the IPv4
    address it maps, as ``InetAddress`` returns it. A dotted tail (``::ffff:10.0.0.1``), a zone
    (``fe80::1%eth0``), brackets and host names are not addresses. Decided with string methods:
    no string costs more than a scan, whatever it holds.
    """
    if ":" in text:
        if not _HEX_COLON.issuperset(text):
            return None
        number = _ipv6_number(text)
        if number is None:
            return None
        if number >> 32 == 0xFFFF:
            return 4, number & 0xFFFFFFFF
        return 6, number
    octets = text.split(".")
    if len(octets) != 4:
        return None
    number = 0
    for octet in octets:
        if not octet or len(octet) > 3 or not _DIGITS.issuperset(octet) or (octet[0] == "0" and len(octet) > 1):
            return None
        value = int(octet)
        if value > 255:
            return None
        number = number << 8 | value
    return 4, number


def _ipv6_number(text: str) -> int | None:
    """The 128-bit address a string of hex digits and colons spells, or None."""
    parts = text.split(":")
    if not 3 <= len(parts) <= 9:
        return None
    skip = None
    for i in range(1, len(parts) - 1):
        if not parts[i]:
            if skip is not None:
                return None  # two "::"
            skip = i
    if skip is not None:
        high, low = skip, len(parts) - skip - 1
        if not parts[0]:
            high -= 1
            if high:
                return None  # a leading ":" only as "::"
        if not parts[-1]:
            low -= 1
            if low:
                return None  # a trailing ":" only as "::"
        skipped = 8 - (high + low)
        if skipped < 1:
            return None
    else:
        if len(parts) != 8 or not parts[0] or not parts[-1]:
            return None
        high, low, skipped = 8, 0, 0
    number = 0
    for part in parts[:high]:
        if not 1 <= len(part) <= 4:
            return None
        number = number << 16 | int(part, 16)
    number <<= 16 * skipped
    for part in parts[len(parts) - low :]:
        if not 1 <= len(part) <= 4:
            return None
        number = number << 16 | int(part, 16)
    return number


def wildcard_match(segments: tuple[str, ...], text: str) -> bool:
    """Glob match where ``segments`` are the literal pieces between ``*``s.

    Greedy leftmost search is exact for patterns whose only metacharacter is ``*`` and runs in
    time linear in ``len(text)`` per segment, so no pattern can make matching blow up the way a
    backtracking regular expression can.
    """
    if len(segments) == 1:
        return text == segments[0]
    first, last = segments[0], segments[-1]
    if len(text) < len(first) + len(last) or not text.startswith(first) or not text.endswith(last):
        return False
    pos, end = len(first), len(text) - len(last)
    for middle in segments[1:-1]:
        found = text.find(middle, pos, end)
        if found < 0:
            return False
        pos = found + len(middle)
    return True
