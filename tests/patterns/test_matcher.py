"""``Matcher``: the API, and the semantics that are easiest to get wrong, on fixed examples."""

from __future__ import annotations

import ipaddress
import json
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import InvalidEventError, Matcher, Pattern, PatternError
from eventbus.patterns.values import ip_number


def test_api_add_remove_names_len_contains() -> None:
    m = Matcher()
    assert len(m) == 0 and m.names() == [] and m.match({"a": 1}) == set()
    m.add("one", {"a": [1]})
    m.add("two", '{"b": ["x"]}')
    m.add("three", Pattern({"a": [{"numeric": [">", 0]}]}))
    assert len(m) == 3 and m.names() == ["one", "two", "three"]
    assert "two" in m and "four" not in m
    assert m.match({"a": 1, "b": "x"}) == {"one", "two", "three"}
    m.remove("two")
    m.remove("never-added")  # ignored
    assert m.names() == ["one", "three"]
    assert m.match({"a": 1, "b": "x"}) == {"one", "three"}
    assert repr(m) == "Matcher(2 rules)"


def test_one_name_several_patterns_is_or_and_remove_drops_all() -> None:
    m = Matcher()
    m.add("r", {"a": ["x"]})
    m.add("r", {"b": ["y"]})
    assert len(m) == 1
    assert m.match({"a": "x"}) == m.match({"b": "y"}) == {"r"}
    assert m.match({"a": "y"}) == set()
    m.remove("r")
    assert m.match({"a": "x"}) == set() and len(m) == 0


def test_events_as_text_and_bytes_and_bad_input() -> None:
    m = Matcher()
    m.add("r", {"detail": {"n": [{"numeric": [">=", 10]}]}})
    event = {"detail": {"n": 10}}
    assert m.match(json.dumps(event)) == m.match(json.dumps(event).encode()) == {"r"}
    with pytest.raises(InvalidEventError):
        m.match("{not json")
    with pytest.raises(InvalidEventError):
        m.match("[1, 2]")
    with pytest.raises(PatternError, match="Event pattern is not valid"):
        m.add("bad", {"a": []})
    with pytest.raises(TypeError, match="rule name must be a string"):
        m.add(3, {"a": [1]})  # type: ignore[arg-type]
    assert "bad" not in m


def test_json_types_are_kept_apart() -> None:
    m = Matcher()
    m.add("true", {"f": [True]})
    m.add("one", {"f": [1]})
    m.add("string-one", {"f": ["1"]})
    m.add("null", {"f": [None]})
    assert m.match({"f": True}) == {"true"}
    assert m.match({"f": 1}) == m.match({"f": 1.0}) == {"one"}
    assert m.match({"f": "1"}) == {"string-one"}
    assert m.match({"f": None}) == {"null"}
    assert m.match({"f": False}) == set()


def test_dotted_keys_in_events_and_patterns() -> None:
    m = Matcher()
    m.add("r", {"a": {"b.c": ["x"]}})
    assert m.match({"a": {"b": {"c": "x"}}}) == {"r"}
    assert m.match({"a.b": {"c": "x"}}) == {"r"}
    assert m.match({"a.b.c": "x"}) == {"r"}
    assert m.match({"a": {"b.c": "y"}, "a.b": {"c": "x"}}) == {"r"}
    assert m.match({"a": {"bc": "x"}}) == set()


def test_every_operator_through_its_index() -> None:
    m = Matcher()
    rules = {
        "prefix": [{"prefix": "ab"}],
        "prefix-ic": [{"prefix": {"equals-ignore-case": "AB"}}],
        "suffix": [{"suffix": "yz"}],
        "suffix-ic": [{"suffix": {"equals-ignore-case": "YZ"}}],
        "ic": [{"equals-ignore-case": "ABXYZ"}],
        "wildcard": [{"wildcard": "a*x*z"}],
        "anything-but": [{"anything-but": ["abxyz", "other"]}],
        "anything-but-prefix": [{"anything-but": {"prefix": "zz"}}],
        "range": [{"numeric": [">", 0, "<=", 5]}],
        "cidr": [{"cidr": "10.0.0.0/8"}],
        "ip": ["::1"],
        "exists": [{"exists": True}],
    }
    for name, conditions in rules.items():
        m.add(name, {"f": conditions})
    assert m.match({"f": "abxyz"}) == {
        "prefix", "suffix", "prefix-ic", "suffix-ic", "ic", "wildcard", "anything-but-prefix", "exists",
    }  # fmt: skip
    assert m.match({"f": "ABXYZ"}) == {"prefix-ic", "suffix-ic", "ic", "anything-but", "anything-but-prefix", "exists"}
    assert m.match({"f": 5}) == {"range", "anything-but", "anything-but-prefix", "exists"}
    assert m.match({"f": "10.1.2.3"}) == {"cidr", "anything-but", "anything-but-prefix", "exists"}
    assert m.match({"f": "0:0:0:0:0:0:0:1"}) == {"ip", "anything-but", "anything-but-prefix", "exists"}
    assert m.match({"g": 1}) == set()


def test_array_consistency_and_absence_inside_arrays() -> None:
    m = Matcher()
    m.add("same-item", {"items": {"sku": ["A"], "qty": [2]}})
    m.add("no-gift-here", {"items": {"sku": ["A"], "gift": [{"exists": False}]}})
    assert m.match({"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]}) == {"no-gift-here"}
    assert m.match({"items": [{"sku": "A", "qty": 2, "gift": True}]}) == {"same-item"}
    # The gift sits in another element than the chosen sku: absent as far as the match goes.
    assert m.match({"items": [{"sku": "A"}, {"sku": "B", "gift": True}]}) == {"no-gift-here"}


def test_exists_false_and_non_leaves() -> None:
    m = Matcher()
    m.add("absent", {"detail": {"x": [{"exists": False}]}})
    assert m.match({}) == {"absent"}
    assert m.match({"detail": {"x": {}}}) == {"absent"}  # objects are not leaves
    assert m.match({"detail": {"x": []}}) == {"absent"}
    assert m.match({"detail": {"x": None}}) == set()


def test_mapping_events_follow_the_reference() -> None:
    """A mapping that is not a dict has no leaves for the reference matcher; neither here."""
    pattern = Pattern({"a": [1]})
    m = Matcher()
    m.add("r", pattern)
    proxy = MappingProxyType({"a": 1})
    assert (m.match(proxy) == {"r"}) is pattern.matches(proxy)


def test_shared_fields_do_not_make_every_rule_a_candidate() -> None:
    """Rules that all share source and detail-type still give each event its own rule."""
    m = Matcher()
    for i in range(2_000):
        m.add(f"c{i}", {"source": ["shop"], "detail-type": ["Order"], "detail": {"customer": [f"c-{i}"]}})
    assert m.match({"source": "shop", "detail-type": "Order", "detail": {"customer": "c-1234"}}) == {"c1234"}
    assert m.match({"source": "shop", "detail-type": "Order", "detail": {"customer": "c-x"}}) == set()
    for i in range(0, 2_000, 2):
        m.remove(f"c{i}")
    assert m.match({"source": "shop", "detail-type": "Order", "detail": {"customer": "c-1234"}}) == set()
    assert m.match({"source": "shop", "detail-type": "Order", "detail": {"customer": "c-1235"}}) == {"c1235"}
    assert len(m) == 1_000


def _stdlib_reading(text: str) -> tuple[int, int] | None:
    """``ipaddress``'s reading, restricted to event-ruler's forms: no zone, no dotted tail
    after colons; an IPv4-mapped address is its IPv4 address."""
    if "%" in text or ("." in text and ":" in text):
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return 4, int(ip.ipv4_mapped)
    return ip.version, int(ip)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(alphabet="0123456789.:abcdefABCDEF%x", max_size=20),
        st.ip_addresses().map(str),
        st.ip_addresses().map(lambda ip: ip.exploded),
        st.ip_addresses(v=4).map(lambda ip: f"::ffff:{int(ip) >> 16:x}:{int(ip) & 0xFFFF:x}"),
        st.ip_addresses(v=4).map(lambda ip: ".".join(f"0{o}" if o != "0" else o for o in str(ip).split("."))),
    )
)
def test_ip_reading_agrees_with_the_standard_library(text: str) -> None:
    """``ip_number`` decides without exceptions what ``ipaddress`` decides with them."""
    assert ip_number(text) == _stdlib_reading(text)


def test_pair_anchors_from_either_side() -> None:
    """Rules keyed on two exact fields are found whichever side of the pair has more leaves."""
    m = Matcher()
    for i in range(50):
        m.add(f"r{i}", {"source": [f"s{i % 5}"], "detail-type": [f"t{i}"]})
    assert m.match({"source": "s3", "detail-type": "t13"}) == {"r13"}
    assert m.match({"source": "s3", "detail-type": ["a", "b", "t13", "t18", "t14"]}) == {"r13", "r18"}
    assert m.match({"source": ["s1", "s2", "s3", "s4"], "detail-type": "t14"}) == {"r14"}
    assert m.match({"source": "s4", "detail-type": "t13"}) == set()
