"""PipeConfig validation, the sources' registry, and the rules that read stage responses."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from eventbus.errors import ConfigError
from eventbus.pipes import Pipe, PipeConfig, QueueSourceConfig, SourceConfig
from eventbus.pipes.records import filter_view
from eventbus.pipes.sources import registry
from eventbus.pipes.sources.queue import QueueSource
from eventbus.pipes.stages import Unreadable, batch_item_failures, enrichment_items
from eventbus.targets.function import FunctionTargetConfig
from eventbus.targets.recording import RecordingTarget

BASE: dict[str, Any] = {
    "name": "orders",
    "source": {"queue": {"type": "sqlite", "path": "jobs.db"}},
    "target": {"recording": {"name": "sink"}},
}


def make(**changes: Any) -> PipeConfig:
    return PipeConfig.model_validate({**BASE, **changes})


def test_kind_options_resolve_through_the_registries() -> None:
    config = make(
        enrichment={"function": {"function": "json:dumps"}}, dead_letter={"recording": {"name": "dlq"}}
    )
    assert isinstance(config.source, QueueSourceConfig) and config.source.path == "jobs.db"
    assert isinstance(config.enrichment, FunctionTargetConfig)
    pipe = Pipe(config)
    assert pipe.source_arn == "arn:aws:sqs:us-east-1:123456789012:jobs"
    assert pipe.arn == "arn:aws:pipes:us-east-1:123456789012:pipe/orders"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 10_001}, "batch_size"),
        ({"maximum_batching_window_in_seconds": 301}, "maximum_batching_window_in_seconds"),
        ({"retry_policy": {"maximum_retry_attempts": -2}}, "maximum_retry_attempts"),
        ({"retry_policy": {"maximum_record_age_in_seconds": 604_801}}, "maximum_record_age_in_seconds"),
        ({"filter": [{"a": ["x"]}] * 6}, "Member must have length less than or equal to 5"),
        ({"filter": [{"a": []}]}, "Event pattern is not valid. Reason: Empty arrays are not allowed"),
        ({"target_input_template": "<nope>"}, "InputTemplate contains invalid placeholder nope."),
        ({"source": {"kafka": {}}}, "Unknown source kind 'kafka'"),
        ({"source": {"queue": {"type": "sqlite"}}}, "a sqlite queue needs a path"),
        ({"source": {"queue": {}, "file": {}}}, "must be one key naming its kind"),
        ({"target": {"recordin": {"name": "x"}}}, "Did you mean 'recording'?"),
        ({"target": {"http": {"endpoint": "ftp://x"}}}, "endpoint"),
        ({"desired_state": "PAUSED"}, "desired_state"),
        ({"name": "has space"}, "name"),
    ],
)
def test_bad_configs_say_what_is_wrong(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        PipeConfig.from_mapping({**BASE, **changes})
    assert message in str(info.value)
    assert "Traceback" not in str(info.value)


def test_a_pipe_needs_a_name_but_config_files_give_it_from_their_key() -> None:
    config = PipeConfig.model_validate({k: v for k, v in BASE.items() if k != "name"})
    with pytest.raises(ConfigError, match="needs a name"):
        Pipe(config)
    assert Pipe(config, name="from-key").name == "from-key"


def test_python_objects_are_accepted_as_stages() -> None:
    target = RecordingTarget()
    config = PipeConfig(name="p", source=QueueSource(sqlite_path="x.db"), target=target)
    assert Pipe(config).target is target


def test_secret_webhook_token_stays_out_of_reprs_and_errors() -> None:
    config = make(source={"webhook": {"token": "s3cr3t-value"}})
    assert "s3cr3t-value" not in repr(config) and "s3cr3t-value" not in str(config.model_dump())


def test_registry_kinds_register_and_unknown() -> None:
    assert {"queue", "nats", "directory", "file", "webhook", "schedule"} <= set(registry.kinds())

    class Custom(SourceConfig):
        kind: ClassVar[str] = "custom-test"

        def build(self) -> Any:
            return QueueSource(sqlite_path="c.db")

    registry.register(Custom)
    try:
        assert registry.config_class("custom-test") is Custom
        with pytest.raises(ConfigError, match="already registered"):
            registry.register(QueueSourceConfig, kind="custom-test")
    finally:
        # A kind left registered would show up in every later schema and generated reference.
        registry._registered.pop("custom-test", None)
    with pytest.raises(ConfigError, match="Invalid options for source kind 'queue'"):
        registry.build_source("queue", {"type": "rabbit"})
    with pytest.raises(ConfigError, match="not a SourceConfig"):
        registry.register(dict)  # type: ignore[arg-type]


def test_pydantic_errors_do_not_leak_input_values() -> None:
    with pytest.raises(ValidationError):
        PipeConfig.model_validate({**BASE, "batch_size": "many"})
    with pytest.raises(ConfigError) as info:
        PipeConfig.from_mapping({**BASE, "source": {"webhook": {"token": 12, "port": "s3cr3t"}}})
    assert "s3cr3t" not in str(info.value)


# -- reading responses ------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["", "  ", {}, [], None, "{}", "[]"])
def test_empty_enrichment_answers_skip(answer: Any) -> None:
    assert enrichment_items(answer) is None


def test_enrichment_answers_fan_out() -> None:
    assert enrichment_items([{}]) == [{}]
    assert enrichment_items([1, "a", {"b": 2}]) == [1, "a", {"b": 2}]
    assert enrichment_items({"one": 1}) == [{"one": 1}]
    assert enrichment_items('[{"x":1},{"x":2}]') == [{"x": 1}, {"x": 2}]
    assert enrichment_items("just text") == ["just text"]


def test_batch_item_failures() -> None:
    ids = ["a", "b", "c"]
    assert batch_item_failures(None, ids) is None
    assert batch_item_failures({"batchItemFailures": []}, ids) is None
    assert batch_item_failures({"other": 1}, ids) is None
    assert batch_item_failures({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids) == ["b"]
    assert batch_item_failures(json.dumps({"batchItemFailures": [{"itemIdentifier": "c"}]}), ids) == ["c"]
    bad: Any
    for bad in ([{"itemIdentifier": ""}], [{"itemIdentifier": "z"}], [{}], ["a"], "a"):
        assert isinstance(batch_item_failures({"batchItemFailures": bad}, ids), Unreadable)
    # Why the batch failed, in words: the identifiers the batch holds when one is unknown.
    unknown = batch_item_failures({"batchItemFailures": [{"itemIdentifier": "z"}]}, ids)
    assert isinstance(unknown, Unreadable) and unknown.reason == (
        "batchItemFailures names 'z', which is not a record of this batch; its records are 'a', 'b', 'c' "
        "(each record's messageId or eventID: an enrichment must pass them through for the target to name them)"
    )
    many = batch_item_failures({"batchItemFailures": [{"itemIdentifier": "z"}]}, [str(n) for n in range(12)])
    assert isinstance(many, Unreadable) and "'8', '9' and 2 more (" in many.reason
    assert batch_item_failures({"batchItemFailures": "a"}, ids).reason == (  # type: ignore[union-attr]
        "batchItemFailures must be a list, not str"
    )
    assert batch_item_failures({"batchItemFailures": [{}]}, ids).reason == (  # type: ignore[union-attr]
        'each entry of batchItemFailures must be {"itemIdentifier": "<messageId or eventID>"}, not {}'
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(body=json_values, extra=st.dictionaries(st.sampled_from(["messageId", "x"]), st.text(max_size=4)))
def test_filter_view_parses_json_objects_and_arrays_and_keeps_everything_else(
    body: Any, extra: dict[str, str]
) -> None:
    record = {**extra, "body": json.dumps(body)}
    view = filter_view(record)
    if isinstance(body, dict | list):
        assert view["body"] == body
    else:
        assert view["body"] == record["body"]  # scalars stay the text they were sent as
    assert {k: v for k, v in view.items() if k != "body"} == extra
    assert record["body"] == json.dumps(body)  # the record itself is untouched


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=20))
def test_filter_view_never_fails_on_arbitrary_text(text: str) -> None:
    view = filter_view({"data": text, "body": text})
    assert isinstance(view["data"], str | dict | list)


def test_stages_take_the_kind_spelling_too() -> None:
    from eventbus.pipes import PipeConfig

    spelled = PipeConfig(
        name="p",
        source={"kind": "queue", "type": "memory", "name": "q"},
        target={"kind": "recording", "name": "seen"},
        dead_letter={"kind": "file", "path": "dead.jsonl"},
    )
    canonical = PipeConfig(
        name="p",
        source={"queue": {"type": "memory", "name": "q"}},
        target={"recording": {"name": "seen"}},
        dead_letter={"file": {"path": "dead.jsonl"}},
    )
    assert spelled == canonical
