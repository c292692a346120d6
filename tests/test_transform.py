"""Target input (Input, InputPath, InputTransformer): the recorded AWS corpus, then each rule."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from eventbus.errors import TransformError
from eventbus.transform import InputTransformer, TargetInput

CONFORMANCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "conformance"
CORPUS = CONFORMANCE / "input-transformers.jsonl"

ISO_UTC = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z"
RULE = {"rule_name": "test-rule", "rule_arn": "arn:aws:events:us-east-1:111111111111:rule/test-bus/test-rule"}

EVENT: dict[str, Any] = {
    "version": "0",
    "id": "11111111-2222-3333-4444-555555555555",
    "detail-type": "Order Placed",
    "source": "com.example.orders",
    "account": "111111111111",
    "time": "2025-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:s3:::a", "arn:aws:s3:::b"],
    "detail": {
        "id": "o-1",
        "total": 12.5,
        "count": 3,
        "paid": True,
        "note": None,
        "customer": {"name": "Zoë", "tier": "gold"},
        "tags": ["x", "y"],
        "quote": 'say "hi"',
        "path/with/slash": "slashed",
    },
}


def load_corpus() -> list[dict[str, Any]]:
    if not CORPUS.is_file():
        return []
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


CASES = load_corpus()


def matches_expected(actual: Any, expected: Any) -> bool:
    """Equality, where the recorded token ``<ingestion-time>`` stands for any ISO-8601 UTC time."""
    if expected == "<ingestion-time>":
        return isinstance(actual, str) and re.fullmatch(ISO_UTC, actual) is not None
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(matches_expected(actual[k], v) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(matches_expected(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return bool(actual == expected)


@pytest.mark.skipif(
    not CASES, reason=f"conformance corpus not found at {CORPUS} (it sits beside the checkout)"
)
def test_corpus_is_complete() -> None:
    assert len(CASES) == 32


@pytest.mark.parametrize("case", CASES or [None], ids=[c["name"] for c in CASES] or ["corpus-absent"])
def test_corpus(case: dict[str, Any] | None) -> None:
    if case is None:
        pytest.skip(f"conformance corpus not found at {CORPUS} (it sits beside the checkout)")
    expect = case["expect"]
    build = lambda: TargetInput(  # noqa: E731
        case["target_id"],
        input_path=case.get("input_path"),
        input_transformer=case.get("input_transformer"),
    )
    if "error" in expect:
        with pytest.raises(ValueError) as info:
            build()
        assert str(info.value) == expect["error"]
        return
    target_input = build()
    # A distinct ingestion time shows which spots carry it; the corpus accepts any time there.
    render = lambda: target_input.render(  # noqa: E731
        case["event"],
        rule_name=case["rule_name"],
        rule_arn=case["rule_arn"],
        ingestion_time="2030-05-06T07:08:09Z",
    )
    if expect.get("dropped"):
        with pytest.raises(TransformError):
            render()
        return
    body = render()
    if "output" in expect:
        pattern = re.escape(expect["output"]).replace(re.escape("<ingestion-time>"), ISO_UTC)
        assert re.fullmatch(pattern, body, flags=re.DOTALL), body
    else:
        assert matches_expected(json.loads(body), expect["output_json"]), body


# -- the three forms and none ------------------------------------------------------------------


def test_no_input_delivers_the_whole_event_as_compact_json() -> None:
    body = TargetInput("t").render(EVENT, **RULE)
    assert json.loads(body) == EVENT
    assert ", " not in body and "Zoë" in body  # compact, and UTF-8 rather than \u escapes


def test_constant_input_is_delivered_verbatim() -> None:
    text = '{ "static" : [1, 2.50, true] }'
    assert TargetInput("t", input=text).render(EVENT, **RULE) == text


def test_input_path_definite_and_indefinite() -> None:
    assert (
        TargetInput("t", input_path="$.detail.customer").render(EVENT, **RULE)
        == '{"name":"Zoë","tier":"gold"}'
    )
    assert TargetInput("t", input_path="$.detail.total").render(EVENT, **RULE) == "12.5"
    assert TargetInput("t", input_path="$.resources[1]").render(EVENT, **RULE) == '"arn:aws:s3:::b"'
    assert TargetInput("t", input_path="$.detail.path/with/slash").render(EVENT, **RULE) == '"slashed"'
    assert TargetInput("t", input_path="$").render(EVENT, **RULE) == TargetInput("t").render(EVENT, **RULE)
    # A wildcard names several values: they come as a list, as AWS's JSONPath library gives them.
    assert (
        TargetInput("t", input_path="$.resources[*]").render(EVENT, **RULE)
        == '["arn:aws:s3:::a","arn:aws:s3:::b"]'
    )


def test_input_path_matching_nothing_delivers_nothing() -> None:
    with pytest.raises(TransformError, match=r"\$\.detail\.absent"):
        TargetInput("t", input_path="$.detail.absent").render(EVENT, **RULE)


def test_events_that_are_not_json_raise_only_transform_error() -> None:
    odd = {**EVENT, "detail": {"s": {1, 2}, "nan": float("nan")}}
    for target_input in (
        TargetInput("t"),
        TargetInput("t", input_path="$.detail"),
        TargetInput(
            "t", input_transformer={"InputPathsMap": {"s": "$.detail.s"}, "InputTemplate": '{"s": <s>}'}
        ),
        TargetInput(
            "t", input_transformer={"InputPathsMap": {"s": "$.detail.nan"}, "InputTemplate": '"<s>"'}
        ),
    ):
        with pytest.raises(TransformError):
            target_input.render(odd, **RULE)


# -- InputTransformer quoting rules ------------------------------------------------------------

PATHS = {
    "id": "$.detail.id",
    "total": "$.detail.total",
    "paid": "$.detail.paid",
    "note": "$.detail.note",
    "customer": "$.detail.customer",
    "tags": "$.detail.tags",
    "quote": "$.detail.quote",
    "absent": "$.detail.absent",
}


def transform(template: str, event: dict[str, Any] = EVENT, **kwargs: Any) -> str:
    target_input = TargetInput("t", input_transformer={"InputPathsMap": PATHS, "InputTemplate": template})
    return target_input.render(event, **{**RULE, **kwargs})


def test_json_template_is_minified_and_values_are_json() -> None:
    body = transform(
        '{\n  "id" : <id>,\n  "n": [ 9, <total>, <paid>, <note> ],\n  "c": <customer>, "t": <tags>\n}'
    )
    assert body == '{"id":"o-1","n":[9,12.5,true,null],"c":{"name":"Zoë","tier":"gold"},"t":["x","y"]}'


def test_json_template_keeps_spaces_inside_string_literals() -> None:
    assert transform('{ "a b" : "c  d <id>" }') == '{"a b":"c  d o-1"}'


def test_unquoted_string_value_is_escaped_as_json() -> None:
    assert json.loads(transform('{"q": <quote>}')) == {"q": 'say "hi"'}


def test_quoted_value_is_inserted_raw_so_a_quote_in_it_drops_the_event() -> None:
    with pytest.raises(TransformError):
        transform('{"q": "<quote>"}')


def test_scalars_inside_json_strings() -> None:
    assert transform('{"s": "<total>/<paid>/<note>/<absent>/<id>"}') == '{"s":"12.5/true/null//o-1"}'


def test_missing_path_is_empty_string_as_json_value() -> None:
    assert transform('{"a": <absent>}') == '{"a":""}'


def test_array_template_is_json() -> None:
    assert transform('[<id>, "<id>", <paid>]') == '["o-1","o-1",true]'


def test_text_template_outside_quotes_flattens_too() -> None:
    assert (
        transform("<id> costs <total>, <customer> <tags> <absent>.")
        == "o-1 costs 12.5, {name:Zoë,tier:gold} [x,y] ."
    )


def test_text_template_inside_quotes_flattens_and_does_not_escape() -> None:
    assert transform('"<customer> <tags> <quote> <note>"') == '"{name:Zoë,tier:gold} [x,y] say "hi" null"'
    assert transform(r'"instance \"<id>\" is <paid>"') == r'"instance \"o-1\" is true"'


def test_template_that_is_not_json_delivers_nothing() -> None:
    with pytest.raises(TransformError, match="yields invalid JSON"):
        transform('{"a": <id>')
    with pytest.raises(TransformError, match="object key"):
        transform("{<id>: 1}")  # AWS: a placeholder cannot be an object key


def test_value_slot_glued_to_template_text_is_checked_per_event() -> None:
    # "-<v>" is JSON for a number and not for a string: the result decides, as at AWS.
    assert transform('{"a": -<total>}') == '{"a":-12.5}'
    with pytest.raises(TransformError):
        transform('{"a": -<id>}')
    assert transform('{"a": 1<total>}') == '{"a":112.5}'  # raw text, then judged: valid JSON
    with pytest.raises(TransformError):
        transform('{"a": <paid>1}')


def test_predefined_variables() -> None:
    template = (
        '{"arn": <aws.events.rule-arn>, "name": "<aws.events.rule-name>", '
        '"at": <aws.events.event.ingestion-time>, "e": <aws.events.event>, "j": <aws.events.event.json>}'
    )
    body = json.loads(transform(template, ingestion_time="2030-01-02T03:04:05Z"))
    assert body["arn"] == RULE["rule_arn"]
    assert body["name"] == "test-rule"
    assert body["at"] == "2030-01-02T03:04:05Z"
    assert body["j"] == EVENT
    assert list(body["e"]) == [
        "id",
        "account",
        "detailType",
        "time",
        "source",
        "region",
        "resources",
        "version",
    ]
    assert body["e"]["detailType"] == "Order Placed"


def test_ingestion_time_defaults_to_the_event_time_then_to_now() -> None:
    assert transform('"<aws.events.event.ingestion-time>"') == '"2025-01-01T00:00:00Z"'
    timeless = {k: v for k, v in EVENT.items() if k != "time"}
    assert re.fullmatch(f'"{ISO_UTC}"', transform('"<aws.events.event.ingestion-time>"', timeless))


def test_template_of_only_predefined_variables_needs_no_paths_map() -> None:
    target_input = TargetInput("t", input_transformer={"InputTemplate": '"<aws.events.rule-name> triggered"'})
    assert target_input.render(EVENT, **RULE) == '"test-rule triggered"'


def test_input_transformer_model_by_name_or_alias() -> None:
    by_alias = InputTransformer.model_validate({"InputPathsMap": {"a": "$.id"}, "InputTemplate": "<a>"})
    by_name = InputTransformer(input_paths_map={"a": "$.id"}, input_template="<a>")
    assert by_alias == by_name
    assert by_name.model_dump(by_alias=True) == {"InputPathsMap": {"a": "$.id"}, "InputTemplate": "<a>"}
    assert TargetInput("t", input_transformer=by_name).render(EVENT, **RULE) == EVENT["id"]


def test_from_target_reads_put_targets_shape() -> None:
    target_input = TargetInput.from_target({"Id": "q1", "Arn": "arn:x", "InputPath": "$.detail.id"})
    assert target_input.target_id == "q1"
    assert target_input.render(EVENT, **RULE) == '"o-1"'


def test_repr_never_shows_constant_input_or_template() -> None:
    secret = '{"token": "s3cr3t"}'
    assert "s3cr3t" not in repr(TargetInput("t", input=secret))
    tpl = {"InputTemplate": '{"token": "s3cr3t", "r": <aws.events.rule-name>}'}
    assert "s3cr3t" not in repr(TargetInput("t", input_transformer=tpl))


# -- validation messages -----------------------------------------------------------------------

TEMPLATE_OK = {"InputPathsMap": {"a": "$.id"}, "InputTemplate": "<a>"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"input": "{}", "input_path": "$.detail"},
            "Only one of Input, InputPath, or InputTransformer must be provided for target t1.",
        ),
        (
            {"input": "{}", "input_transformer": TEMPLATE_OK},
            "Only one of Input, InputPath, or InputTransformer must be provided for target t1.",
        ),
        (
            {"input": "{}", "input_path": "$", "input_transformer": TEMPLATE_OK},
            "Only one of Input, InputPath, or InputTransformer must be provided for target t1.",
        ),
        (
            {"input_transformer": {"InputPathsMap": {"a": "$.id"}, "InputTemplate": '"<a> <b>"'}},
            "InputTemplate for target t1 contains invalid placeholder b.",
        ),
        (
            {"input_transformer": {"InputTemplate": '"<b>"'}},
            "InputTemplate for target t1 contains invalid placeholder b.",
        ),
        (
            {"input_transformer": {"InputTemplate": '"<aws.events.nope>"'}},
            "InputTemplate for target t1 contains invalid placeholder aws.events.nope.",
        ),
        ({"input": "{not json"}, "Input for target t1 is not valid JSON text."),
        ({"input": ""}, "Input for target t1 is not valid JSON text."),
        ({"input": "NaN"}, "Input for target t1 is not valid JSON text."),
        (
            {"input": '"' + "x" * 8191 + '"'},
            "Input for target t1 must have length less than or equal to 8192.",
        ),
        (
            {"input_path": "$." + "a" * 255},
            "InputPath for target t1 must have length less than or equal to 256.",
        ),
        ({"input_path": "$.detail["}, "InputPath for target t1 is not a valid JSONPath: $.detail["),
        ({"input_path": "detail.id"}, "InputPath for target t1 is not a valid JSONPath: detail.id"),
        (
            {
                "input_transformer": {
                    "InputPathsMap": {f"v{i}": "$.id" for i in range(101)},
                    "InputTemplate": "x",
                }
            },
            "InputPathsMap for target t1 has 101 variables; at most 100 are allowed.",
        ),
        (
            {"input_transformer": {"InputPathsMap": {"AWS.x": "$.id"}, "InputTemplate": "x"}},
            "InputPathsMap for target t1: variable AWS.x is reserved (names cannot start with AWS.).",
        ),
        (
            {"input_transformer": {"InputPathsMap": {"a b": "$.id"}, "InputTemplate": "x"}},
            r"InputPathsMap for target t1: variable name 'a b' must be 1 to 256 characters matching [A-Za-z0-9\_\-]+.",
        ),
        (
            {"input_transformer": {"InputPathsMap": {"": "$.id"}, "InputTemplate": "x"}},
            r"InputPathsMap for target t1: variable name '' must be 1 to 256 characters matching [A-Za-z0-9\_\-]+.",
        ),
        (
            {"input_transformer": {"InputPathsMap": {"a": "$." + "a" * 255}, "InputTemplate": "x"}},
            "InputPathsMap for target t1: the path of a must have length less than or equal to 256.",
        ),
        (
            {"input_transformer": {"InputPathsMap": {"a": "$..["}, "InputTemplate": "x"}},
            "InputPathsMap for target t1: the path of a is not a valid JSONPath: $..[",
        ),
        (
            {"input_transformer": {"InputTemplate": ""}},
            "InputTemplate for target t1 must have length greater than or equal to 1.",
        ),
        (
            {"input_transformer": {"InputTemplate": "x" * 8193}},
            "InputTemplate for target t1 must have length less than or equal to 8192.",
        ),
        (
            {"input_transformer": {"InputPathsMap": {"a": "$.id"}}},
            "InputTransformer for target t1 is not valid: InputTemplate: Field required",
        ),
        (
            {"input_transformer": {"InputTemplate": "x", "Extra": 1}},
            "InputTransformer for target t1 is not valid: Extra: Extra inputs are not permitted",
        ),
    ],
)
def test_validation_messages(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        TargetInput("t1", **kwargs)
    assert str(info.value) == message


def test_limits_themselves_are_allowed() -> None:
    TargetInput("t", input='"' + "x" * 8190 + '"')
    TargetInput("t", input_path="$." + "a" * 254)
    TargetInput(
        "t",
        input_transformer={
            "InputPathsMap": {f"v{i}": "$.id" for i in range(100)},
            "InputTemplate": "x" * 8192,
        },
    )
