"""Pipes input templates: inline JSONPaths, every reserved variable, implicit body parsing."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from eventbus.errors import TransformError
from eventbus.transform import PipeTemplate

PIPE = {
    "pipe_name": "orders",
    "pipe_arn": "arn:aws:pipes:us-east-1:111111111111:pipe/orders",
    "source_arn": "arn:aws:sqs:us-east-1:111111111111:in",
    "enrichment_arn": "arn:aws:lambda:us-east-1:111111111111:function:enrich",
    "target_arn": "arn:aws:sqs:us-east-1:111111111111:out",
    "ingestion_time": "2030-01-02T03:04:05Z",
}

SQS_RECORD: dict[str, Any] = {
    "messageId": "m-1",
    "body": '{"key": "value", "n": 2, "items": [{"sku": "a"}, {"sku": "b"}]}',
    "attributes": {"SenderId": "AIDA123", "ApproximateReceiveCount": "1"},
    "eventSourceARN": "arn:aws:sqs:us-east-1:111111111111:in",
}

ALL_RESERVED = (
    "aws.pipes.pipe-arn",
    "aws.pipes.pipe-name",
    "aws.pipes.source-arn",
    "aws.pipes.enrichment-arn",
    "aws.pipes.target-arn",
    "aws.pipes.event.ingestion-time",
    "aws.pipes.event",
    "aws.pipes.event.json",
)


def render(template: str, record: Any = SQS_RECORD, **overrides: Any) -> str:
    return PipeTemplate(template).render(record, **{**PIPE, **overrides})


def test_every_reserved_variable_as_a_json_value() -> None:
    template = "{" + ", ".join(f'"{name}": <{name}>' for name in ALL_RESERVED) + "}"
    body = json.loads(render(template))
    assert body["aws.pipes.pipe-arn"] == PIPE["pipe_arn"]
    assert body["aws.pipes.pipe-name"] == "orders"
    assert body["aws.pipes.source-arn"] == PIPE["source_arn"]
    assert body["aws.pipes.enrichment-arn"] == PIPE["enrichment_arn"]
    assert body["aws.pipes.target-arn"] == PIPE["target_arn"]
    assert body["aws.pipes.event.ingestion-time"] == "2030-01-02T03:04:05Z"
    # The event as received (body still text) and the same with its body decoded.
    assert body["aws.pipes.event"] == SQS_RECORD
    assert body["aws.pipes.event.json"] == {**SQS_RECORD, "body": json.loads(SQS_RECORD["body"])}


def test_every_scalar_reserved_variable_in_a_string_template() -> None:
    names = ALL_RESERVED[:6]
    body = render('"' + "|".join(f"<{n}>" for n in names) + '"')
    assert (
        body
        == '"'
        + "|".join(
            PIPE[k]
            for k in ("pipe_arn", "pipe_name", "source_arn", "enrichment_arn", "target_arn", "ingestion_time")
        )
        + '"'
    )


def test_pipe_without_enrichment_leaves_the_variable_empty() -> None:
    assert render(
        '{"e": <aws.pipes.enrichment-arn>, "s": "x<aws.pipes.enrichment-arn>y"}', enrichment_arn=None
    ) == ('{"e":"","s":"xy"}')


def test_ingestion_time_defaults_to_now() -> None:
    overrides = {k: v for k, v in PIPE.items() if k != "ingestion_time"}
    body = PipeTemplate("<aws.pipes.event.ingestion-time>").render(SQS_RECORD, **overrides)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", body)


def test_the_guide_examples() -> None:
    assert render('"Hello, sender"') == '"Hello, sender"'
    assert render("<$.attributes.SenderId>") == "AIDA123"
    assert render('"Hello, <$.attributes.SenderId>"') == '"Hello, AIDA123"'
    dynamic = '{\n  "key1": "value1",\n  "key2": <$.body.key>,\n  "d": <aws.pipes.event.ingestion-time>\n}'
    assert render(dynamic) == '{"key1":"value1","key2":"value","d":"2030-01-02T03:04:05Z"}'
    assert render('{"sku": <$.body.items[1].sku>}') == '{"sku":"b"}'


def test_bare_body_loses_its_quotes_and_wrapping_it_keeps_json() -> None:
    # The Pipes guide: <$.body> alone turns {"key": "value"} into {key:value}; wrap it to keep JSON.
    record = {"body": '{"key": "value"}'}
    assert render("<$.body>", record) == "{key:value}"
    assert render('{"data": <$.body>}', record) == '{"data":{"key":"value"}}'


def test_body_that_is_not_json_stays_text() -> None:
    record = {"body": "plain words", "attributes": {}}
    assert render('{"b": <$.body>, "k": <$.body.key>}', record) == '{"b":"plain words","k":""}'
    # Its payload is not JSON, so aws.pipes.event.json has no value.
    assert render('{"j": <aws.pipes.event.json>}', record) == '{"j":""}'


def test_text_and_list_records() -> None:
    assert (
        render('{"e": <aws.pipes.event>, "j": <aws.pipes.event.json>}', "not json")
        == '{"e":"not json","j":""}'
    )
    assert render('{"x": <$.x>}', '{"x": 1}') == '{"x":1}'
    assert (
        render('{"first": <$[0].id>, "all": <$[*].id>}', [{"id": 1}, {"id": 2}]) == '{"first":1,"all":[1,2]}'
    )


def test_value_with_a_quote_inside_a_string_is_not_delivered() -> None:
    with pytest.raises(TransformError):
        render('{"s": "<$.q>"}', {"q": 'a"b'})


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ('{"a": <name>}', "InputTemplate contains invalid placeholder name."),
        ('"<aws.pipes.nope>"', "InputTemplate contains invalid placeholder aws.pipes.nope."),
        ('"<aws.events.rule-arn>"', "InputTemplate contains invalid placeholder aws.events.rule-arn."),
        ('{"a": <$.body[>}', "InputTemplate contains invalid JSONPath placeholder $.body[."),
        ("", "InputTemplate must have length greater than or equal to 1."),
        ("x" * 8193, "InputTemplate must have length less than or equal to 8192."),
    ],
)
def test_pipe_template_validation(template: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        PipeTemplate(template)
    assert str(info.value) == message


def test_repr_does_not_show_the_template() -> None:
    assert "s3cr3t" not in repr(PipeTemplate('{"token": "s3cr3t"}'))
