"""Properties of input transformation that hold for any event and any template."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from eventbus.errors import TransformError
from eventbus.transform import PipeTemplate, TargetInput

RULE = {"rule_name": "r", "rule_arn": "arn:aws:events:us-east-1:111111111111:rule/r"}
PIPE = {
    "pipe_name": "p",
    "pipe_arn": "arn:aws:pipes:us-east-1:111111111111:pipe/p",
    "source_arn": "arn:s",
    "target_arn": "arn:t",
    "ingestion_time": "2030-01-01T00:00:00Z",
}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
details = st.dictionaries(names, json_values, max_size=6)


def envelope(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "e1",
        "detail-type": "t",
        "source": "s",
        "account": "111111111111",
        "time": "2025-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


@SETTINGS
@given(detail=details, absent=st.lists(names, max_size=3))
def test_a_template_of_only_variables_round_trips_the_values(
    detail: dict[str, Any], absent: list[str]
) -> None:
    keys = list(detail)
    paths = {f"v{i}": f"$.detail.{k}" for i, k in enumerate(keys)}
    paths.update({f"m{i}": f"$.missing.{k}" for i, k in enumerate(absent)})
    template = "{" + ", ".join(f'"{name}": <{name}>' for name in paths) + "}"
    target_input = TargetInput("t", input_transformer={"InputPathsMap": paths, "InputTemplate": template})
    body = json.loads(target_input.render(envelope(detail), **RULE))
    expected = {f"v{i}": detail[k] for i, k in enumerate(keys)}
    expected.update({f"m{i}": "" for i in range(len(absent))})  # a missing path gives ""
    assert body == expected


# Templates assembled from JSON-ish pieces and placeholders: valid and invalid shapes alike.
template_pieces = st.lists(
    st.sampled_from(
        [
            *("{", "}", "[", "]", '"', ":", ",", " ", "\n", "\\", "a", "1", "true"),
            *("<a>", "<b>", "<c>", "<aws.events.event>", "<aws.events.event.json>", "<aws.events.rule-name>"),
        ]
    ),
    min_size=1,
    max_size=25,
)
PATHS = {"a": "$.detail.a", "b": "$.detail.b", "c": "$.detail.nothing"}

# JSON templates proper: placeholders where values stand and inside string literals, with
# blanks anywhere a JSON parser allows them, and now and then one character cut out.
blank = st.sampled_from(["", " ", "\n  ", "\t"])
placeholder = st.sampled_from(["<a>", "<b>", "<c>", "-<a>", "<aws.events.event>", "<aws.events.rule-arn>"])
string_literal = st.lists(st.sampled_from(["x", " ", "<a>", "<b>", "<c>", '\\"', "/"]), max_size=4).map(
    lambda parts: '"' + "".join(parts) + '"'
)
json_template_values = st.recursive(
    placeholder | string_literal | st.sampled_from(["1", "true", "null", "-25"]),
    lambda inner: (
        st.builds(
            lambda items, b: "[" + b + ("," + b).join(items) + b + "]", st.lists(inner, max_size=3), blank
        )
        | st.builds(
            lambda items, b: (
                "{" + b + ("," + b).join(f'"k{i}"{b}:{b}{v}' for i, v in enumerate(items)) + b + "}"
            ),
            st.lists(inner, max_size=3),
            blank,
        )
    ),
    max_leaves=8,
)
json_templates = st.builds(
    lambda body, b, cut: body if cut is None else body[: cut % len(body)] + body[cut % len(body) + 1 :],
    json_template_values.filter(lambda t: t[:1] in ("{", "[")),
    blank,
    st.none() | st.none() | st.integers(min_value=0),
)


@SETTINGS
@given(pieces=template_pieces, a=json_values, b=json_values)
def test_rendering_raises_only_transform_error_and_json_templates_give_json(
    pieces: list[str], a: Any, b: Any
) -> None:
    template = "".join(pieces)
    target_input = TargetInput("t", input_transformer={"InputPathsMap": PATHS, "InputTemplate": template})
    try:
        body = target_input.render(envelope({"a": a, "b": b}), **RULE)
    except TransformError:
        return
    if template.lstrip(" \n")[:1] in ("{", "["):
        json.loads(body)  # a JSON template delivers valid JSON or nothing


@SETTINGS
@given(template=json_templates, a=json_values, b=json_values)
@example(template="[-<a>]", a=0, b=0)
def test_a_json_template_delivers_valid_json_or_nothing(template: str, a: Any, b: Any) -> None:
    try:
        target_input = TargetInput("t", input_transformer={"InputPathsMap": PATHS, "InputTemplate": template})
    except ValueError as exc:
        assert "invalid placeholder" in str(exc)  # the cut fell inside a placeholder
        return
    try:
        body = target_input.render(envelope({"a": a, "b": b}), **RULE)
    except TransformError:
        return
    if template[:1] not in ("{", "["):
        return  # the cut took the opening bracket: a text template, delivered as written
    parsed = json.loads(body)
    canonical = json.dumps(parsed, ensure_ascii=False, separators=(",", ":"))
    # A literal minus before a placeholder whose value is 0 makes `-0`: valid JSON, read back as 0.
    assert body == canonical or "\\" in body or body.replace("-0", "0") == canonical


@SETTINGS
@given(pieces=template_pieces, event=json_values)
def test_rendering_any_event_shape_raises_only_transform_error(pieces: list[str], event: Any) -> None:
    target_input = TargetInput(
        "t", input_transformer={"InputPathsMap": PATHS, "InputTemplate": "".join(pieces)}
    )
    doc = event if isinstance(event, dict) else {"detail": event}
    with contextlib.suppress(TransformError):
        target_input.render(doc, **RULE)


@SETTINGS
@given(value=st.text(alphabet=st.characters(blacklist_characters='"\\<>', blacklist_categories=["Cs"])))
def test_a_string_template_inserts_strings_verbatim(value: str) -> None:
    target_input = TargetInput(
        "t", input_transformer={"InputPathsMap": {"v": "$.detail.v"}, "InputTemplate": '"<v>"'}
    )
    assert target_input.render(envelope({"v": value}), **RULE) == f'"{value}"'


@SETTINGS
@given(detail=details)
def test_input_path_renders_the_json_of_the_value(detail: dict[str, Any]) -> None:
    for key, value in detail.items():
        body = TargetInput("t", input_path=f"$.detail.{key}").render(envelope(detail), **RULE)
        assert json.loads(body) == value


@SETTINGS
@given(body=json_values, as_text=st.booleans())
def test_pipe_body_round_trips_whether_delivered_as_text_or_json(body: Any, as_text: bool) -> None:
    record = {"messageId": "m", "body": json.dumps(body) if as_text else body}
    rendered = PipeTemplate('{"b": <$.body>}').render(record, **PIPE)
    expected = body
    if as_text and not isinstance(body, dict | list):
        expected = json.dumps(body)  # only objects and arrays are decoded; other text stays text
    assert json.loads(rendered) == {"b": expected}
