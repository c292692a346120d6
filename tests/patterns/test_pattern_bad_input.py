"""Bad input gets a clear error or a verdict: never a crash, a hang or a traceback."""

from __future__ import annotations

import json

import pytest

from eventbus import InvalidEventError, Matcher, Pattern, PatternError


@pytest.mark.parametrize(
    "text",
    ['{"a": [1', "not json", "", "[1, 2]", '"a string"', "null", '{"a": [NaN]}', '{"a": [Infinity]}'],
)
def test_malformed_pattern_text_is_a_pattern_error(text: str) -> None:
    with pytest.raises(PatternError) as info:
        Pattern(text)
    assert str(info.value).startswith("Event pattern is not valid. Reason: ")


@pytest.mark.parametrize("text", ['{"a": 1', "nope", "[]", "42", '{"a": NaN}', b"\xff\xfe{}"])
def test_malformed_event_is_an_invalid_event_error(text: str | bytes) -> None:
    with pytest.raises(InvalidEventError):
        Pattern({"a": [1]}).matches(text)


def test_event_nested_beyond_the_parser_limit() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(InvalidEventError):
        Pattern({"a": [1]}).matches('{"a": ' + deep + "}")


def test_event_nested_a_thousand_levels_deep_gets_a_verdict_or_a_clear_error() -> None:
    event: dict[str, object] = {"leaf": 1}
    for _ in range(1_500):
        event = {"n": event}
    path: dict[str, object] = {"leaf": [1]}
    for _ in range(40):
        path = {"n": path}
    pattern = Pattern(path, max_size=None)
    # A parsed event is walked only along the pattern's paths, so its depth costs nothing.
    assert pattern.matches(event) is False
    assert Pattern({"n": {"leaf": [{"exists": False}]}}).matches(event) is True
    # As text, the JSON parser's own nesting limit answers with a clear error.
    text = '{"n": ' * 1_500 + '{"leaf": 1}' + "}" * 1_500
    with pytest.raises(InvalidEventError, match="nested too deeply"):
        pattern.matches(text)


def test_deep_arrays_in_events_are_walked_without_recursion() -> None:
    value: object = "x"
    for _ in range(5_000):
        value = [value]
    assert Pattern({"a": ["x"]}).matches({"a": value}) is True


def test_huge_numbers() -> None:
    # Numbers no double holds exactly are not compared (event-ruler's ComparableNumber).
    assert Pattern({"n": [{"numeric": [">", 0]}]}).matches('{"n": 1e400}') is False
    assert Pattern({"n": [{"numeric": [">", 0]}]}).matches({"n": 10**400}) is False
    assert Pattern({"n": [{"numeric": [">", 0]}]}).matches({"n": 10**20}) is True
    with pytest.raises(InvalidEventError):
        Pattern({"n": [1]}).matches('{"n": ' + "9" * 5_000 + "}")
    with pytest.raises(PatternError):
        Pattern('{"n": [{"numeric": [">", 1e400]}]}')


def test_non_utf8_bytes() -> None:
    with pytest.raises(InvalidEventError, match="UTF-8"):
        Pattern({"a": ["x"]}).matches(b'{"a": "\xff"}')
    with pytest.raises(PatternError, match="UTF-8"):
        Pattern(b'{"a": ["\xff"]}')
    assert Pattern({"a": ["é"]}).matches('{"a": "é"}'.encode())


def test_hundred_thousand_character_pattern_is_rejected_quickly() -> None:
    big = json.dumps({"a": ["x" * 100_000]})
    with pytest.raises(PatternError, match="the limit is 2048"):
        Pattern(big)
    assert Pattern(big, max_size=None).matches({"a": "x" * 100_000})


def test_size_limit_is_configurable() -> None:
    text = json.dumps({"a": ["x" * 3000]})
    with pytest.raises(PatternError):
        Pattern(text)
    assert Pattern(text, max_size=4096).matches({"a": "x" * 3000})


def _ors(name: str, count: int) -> dict[str, object]:
    return {"$or": [{f"{name}{j}": [1]} for j in range(count)]}


def test_or_combinations_over_a_thousand_are_rejected() -> None:
    with pytest.raises(PatternError, match="more than 1000 combinations"):
        Pattern({"a": _ors("x", 10), "b": _ors("y", 10), "c": _ors("z", 11)}, max_size=None)
    accepted = Pattern({"a": _ors("x", 10), "b": _ors("y", 10), "c": _ors("z", 10)}, max_size=None)
    assert len(accepted.branches) == 1000


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ({"a": [{"wildcard": "a\\b"}]}, "Invalid escape character at pos 2"),
        ({"a": [{"prefix": {"equals-ignore-case": 1}}]}, "equals-ignore-case match pattern must be a string"),
        ({"a": [{"prefix": {"nope": "x"}}]}, "Unsupported prefix pattern: nope"),
        ({"a": [{"suffix": {}}]}, "Suffix expression name not found"),
        ({"a": [{}]}, "Match expression name not found"),
        ({"a": [{"prefix": "x", "suffix": "y"}]}, "Only one key allowed in match expression"),
        ({"a": [{"numeric": ["<", 5], "prefix": "y"}]}, "Too many elements in numeric expression"),
        ({"a": [{"numeric": [">", 5, "<", 1]}]}, "Bottom must be less than top"),
        ({"a": [{"numeric": ["!", 5]}]}, "Unrecognized numeric range operator: !"),
        ({"a": [{"numeric": [5]}]}, "Invalid member in numeric match: 5"),
        ({"a": [{"numeric": ["=", 5, 6]}]}, "Too many elements in numeric expression"),
        ({"a": [{"numeric": [">", 1, "<", 5, 6]}]}, "Too many terms in numeric range expression"),
        ({"a": [{"exists": "yes"}]}, "exists match pattern must be either true or false."),
        (
            {"a": [{"anything-but": []}]},
            "Inside anything but list, either all values are number or string, mixed type is not supported",
        ),
        (
            {"a": [{"anything-but": ["x", 1]}]},
            "Inside anything but list, either all values are number or string, mixed type is not supported",
        ),
        ({"a": [{"anything-but": {"nope": "x"}}]}, "Unsupported anything-but pattern: nope"),
        ({"a": [{"cidr": "10.0.0.0/33"}]}, "IPv4 mask bits must be < 32"),
        ({"a": [{"cidr": "10.0.0.0/-1"}]}, "Malformed CIDR, mask bits must not be negative"),
        ({"$or": [{"a": [1]}]}, "There must have at least 2 Objects in $or relationship."),
        ({"$or": {"a": [1]}}, "It must be an Array followed with $or."),
        ({"$or": [{"a": [1]}, 5]}, "Only JSON object is allowed in array of $or relationship."),
        (
            {"$or": [{"a": [1]}, {"prefix": [1]}]},
            "prefix is Ruler reserved fieldName which cannot be used inside $or.",
        ),
        ({"a": {}}, "Empty objects are not allowed"),
        ({"a": [[1]]}, "Match value must be String, number, true, false, or null"),
    ],
)
def test_messages_beyond_the_corpus(pattern: dict[str, object], message: str) -> None:
    with pytest.raises(PatternError) as info:
        Pattern(pattern)
    assert str(info.value) == "Event pattern is not valid. Reason: " + message


@pytest.mark.parametrize(
    ("pattern", "shown"),
    [
        ({1: [1]}, "Key 1 is an int"),
        ({"a": {2.5: ["x"]}}, "Key 2.5 is a float"),
        ({"a": {"b": {None: [1]}}}, "Key None is a NoneType"),
        ({"$or": [{"a": [1]}, {True: [1]}]}, "Key True is a bool"),
        ({"a": [1], "b": {(1, 2): [1]}}, "Key (1, 2) is a tuple"),
        ({"a": [{"prefix": {1: "x"}}]}, "Key 1 is an int"),
    ],
)
def test_non_string_keys_are_a_pattern_error_at_construction(pattern: dict[object, object], shown: str) -> None:
    """A dict built in Python can have keys JSON cannot: refused when the pattern is made, with
    the key named, never a TypeError or AttributeError later in ``matches`` or ``Matcher.add``."""
    for make in (lambda: Pattern(pattern, max_size=None), lambda: Matcher().add("r", pattern)):
        with pytest.raises(PatternError) as info:
            make()
        assert str(info.value).startswith("Event pattern is not valid. Reason: ")
        assert shown in str(info.value)
