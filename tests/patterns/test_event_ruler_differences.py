"""Where our validation or reading differed from aws/event-ruler's source, now matched.

Each case below was found by reading event-ruler's parsers (``CIDR.cidr`` and Java's
``InetAddress``, ``ComparableNumber`` and ``Range`` for numbers, the anything-but list
parsers, ``WildcardParser``) against ours. They are not recordings of AWS (those are in
../shared/conformance); they are written in the same form, one case per difference, so that
each stays matched: the pattern as JSON text, and either AWS's message or events with the
verdict. Patterns are given as text because some differences live in the JSON literal itself
(``1e400``, ``0.10000000000000001``, an escaped lone surrogate).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from eventbus import Matcher, Pattern, PatternError
from eventbus.patterns.reference import matches_parsed

PREFIX = "Event pattern is not valid. Reason: "

# (name, pattern JSON, AWS's message)
ERRORS = [
    # CIDR: event-ruler's mask limits are strict ("< 32", "< 128"): a single address is not a block.
    ("cidr_ipv4_mask_32", '{"ip": [{"cidr": "10.0.0.1/32"}]}', "IPv4 mask bits must be < 32"),
    ("cidr_ipv6_mask_128", '{"ip": [{"cidr": "::1/128"}]}', "IPv6 mask bits must be < 128"),
    # CIDR: Java's String.split drops trailing empty strings, so a trailing "/" leaves one piece.
    ("cidr_trailing_slash", '{"ip": [{"cidr": "10.0.0.0/"}]}', "Malformed CIDR, one '/' required"),
    ("cidr_only_slashes", '{"ip": [{"cidr": "//"}]}', "Malformed CIDR, one '/' required"),
    # CIDR: Integer.parseInt takes no spaces, no underscores and nothing past 32 bits.
    ("cidr_mask_space", '{"ip": [{"cidr": "10.0.0.0/ 8"}]}', "Malformed CIDR, mask bits must be an integer"),
    ("cidr_mask_underscore", '{"ip": [{"cidr": "10.0.0.0/1_0"}]}', "Malformed CIDR, mask bits must be an integer"),
    ("cidr_mask_overflow", '{"ip": [{"cidr": "10.0.0.0/4294967304"}]}', "Malformed CIDR, mask bits must be an integer"),
    # CIDR: what has an address's shape but is not one is "Invalid", not "Nonstandard".
    ("cidr_invalid_ipv4", '{"ip": [{"cidr": "10.0.0.256/8"}]}', "Invalid IP address: 10.0.0.256"),
    ("cidr_invalid_ipv6", '{"ip": [{"cidr": "1:2:3:4:5:6:7:8:9/64"}]}', "Invalid IP address: 1:2:3:4:5:6:7:8:9"),
    # CIDR: event-ruler's IPv6 shape is hex digits and colons: no dotted tail, no zone.
    ("cidr_ipv6_dotted", '{"ip": [{"cidr": "::ffff:10.0.0.0/104"}]}', "Nonstandard IP address: ::ffff:10.0.0.0"),
    ("cidr_ipv6_zone", '{"ip": [{"cidr": "fe80::%eth0/64"}]}', "Nonstandard IP address: fe80::%eth0"),
    # CIDR: an IPv4-mapped IPv6 address is an IPv4 address to Java's InetAddress.
    ("cidr_ipv4_mapped_mask", '{"ip": [{"cidr": "::ffff:a00:0/104"}]}', "IPv4 mask bits must be < 32"),
    # Numbers: ComparableNumber refuses what no double holds exactly.
    ("numeric_overflow", '{"n": [{"numeric": [">", 1e400]}]}', "Cannot compare number : 1e400"),
    ("numeric_inexact", '{"n": [{"numeric": ["<", 0.10000000000000001]}]}', "Cannot compare number : 0.10000000000000001"),
    ("numeric_big_int", '{"n": [{"numeric": ["=", 9007199254740993]}]}', "Cannot compare number : 9007199254740993"),
    ("numeric_top_overflow", '{"n": [{"numeric": [">", 1, "<", 1e400]}]}', "Cannot compare number : 1e400"),
    # ... but only once the expression has been read: a bad operator after it speaks first.
    ("numeric_order", '{"n": [{"numeric": [">", 1e400, "<", "x"]}]}', "Value of < must be numeric"),
    ("anything_but_overflow", '{"n": [{"anything-but": [1, 1e400]}]}', "Cannot compare number : 1e400"),
    ("anything_but_big_int", '{"n": [{"anything-but": 9007199254740993}]}', "Cannot compare number : 9007199254740993"),
    # Wildcards: positions count UTF-8 bytes, and Java writes an unpaired surrogate as one "?".
    ("wildcard_surrogate_position", '{"s": [{"wildcard": "\\ud800**"}]}', "Consecutive wildcard characters at pos 2"),
]

# (name, pattern JSON, [(event, matches)])
VERDICTS: list[tuple[str, str, list[tuple[dict[str, Any], bool]]]] = [
    (
        "cidr_ipv4_mask_31",
        '{"ip": [{"cidr": "10.0.0.0/31"}]}',
        [({"ip": "10.0.0.1"}, True), ({"ip": "10.0.0.2"}, False)],
    ),
    ("cidr_trailing_slashes_dropped", '{"ip": [{"cidr": "10.0.0.0/8//"}]}', [({"ip": "10.1.2.3"}, True)]),
    ("cidr_mask_sign", '{"ip": [{"cidr": "10.0.0.0/+8"}]}', [({"ip": "10.1.2.3"}, True), ({"ip": "11.0.0.1"}, False)]),
    (
        "cidr_ipv4_mapped_block",
        '{"ip": [{"cidr": "::ffff:a00:0/8"}]}',
        [({"ip": "10.1.2.3"}, True), ({"ip": "::ffff:a01:203"}, True), ({"ip": "11.0.0.1"}, False)],
    ),
    (
        # Event strings: a dotted tail after colons is not an address; a mapped one in hex is IPv4.
        "event_ip_forms",
        '{"ip": [{"cidr": "10.0.0.0/8"}]}',
        [({"ip": "::ffff:a00:1"}, True), ({"ip": "::ffff:10.0.0.1"}, False), ({"ip": "fe80::1%eth0"}, False)],
    ),
    (
        "exact_ip_spellings",
        '{"ip": ["10.0.0.1"]}',
        [({"ip": "10.0.0.1"}, True), ({"ip": "::ffff:a00:1"}, True), ({"ip": "::ffff:10.0.0.1"}, False)],
    ),
    (
        "exact_ipv6_with_zone_is_a_string",
        '{"ip": ["fe80::1%eth0"]}',
        [({"ip": "fe80::1%eth0"}, True), ({"ip": "fe80::1"}, False), ({"ip": "fe80:0::1%eth0"}, False)],
    ),
    (
        # A number no double holds is a value to match all the same (event-ruler keeps its text).
        "exact_overflow_literal",
        '{"n": [1e400]}',
        [({"n": 5}, False)],
    ),
    (
        # Event numbers event-ruler cannot compare never satisfy a numeric condition.
        "event_numbers_not_compared",
        '{"n": [{"numeric": [">", 0]}]}',
        [({"n": 9007199254740993}, False), ({"n": 10**400}, False), ({"n": 10**20}, True), ({"n": 9007199254740992}, True)],
    ),
    ("wildcard_surrogate", '{"s": [{"wildcard": "\\ud800*x"}]}', [({"s": "\ud800-x"}, True), ({"s": "x"}, False)]),
    ("anything_but_wildcard_surrogate", '{"s": [{"anything-but": {"wildcard": "\\ud800*"}}]}', [({"s": "\ud800a"}, False), ({"s": "a"}, True)]),
]


@pytest.mark.parametrize(("name", "text", "message"), ERRORS, ids=[case[0] for case in ERRORS])
def test_invalid_as_event_ruler_says(name: str, text: str, message: str) -> None:
    with pytest.raises(PatternError) as info:
        Pattern(text)
    assert str(info.value) == PREFIX + message


@pytest.mark.parametrize(("name", "text", "events"), VERDICTS, ids=[case[0] for case in VERDICTS])
def test_verdict_as_event_ruler_reads_it(name: str, text: str, events: list[tuple[dict[str, Any], bool]]) -> None:
    pattern = Pattern(text)
    matcher = Matcher()
    matcher.add("r", pattern)
    for event, expected in events:
        assert pattern.matches(event) is expected, event
        assert matches_parsed(pattern.parsed, event) is expected, event
        assert (matcher.match(event) == {"r"}) is expected, event


def test_event_numbers_past_a_double_from_json_text() -> None:
    pattern = Pattern({"n": [{"numeric": [">", 0]}]})
    assert pattern.matches('{"n": 1e400}') is False
    assert pattern.matches(json.dumps({"n": 9007199254740993})) is False
