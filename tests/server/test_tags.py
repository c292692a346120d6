"""Tags on event buses and rules, through boto3 against a live ``eventbus serve``."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from .helpers import LiveServer

ACCOUNT = "arn:aws:events:us-east-1:123456789012"


@pytest.fixture(scope="module")
def events(live: LiveServer) -> Any:
    return live.client("events")


def tags(events: Any, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in events.list_tags_for_resource(ResourceARN=arn)["Tags"]}


def code(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as info:
        call(**params)
    return str(info.value.response["Error"]["Code"])


def test_buses_and_rules_are_tagged_untagged_and_listed(events: Any) -> None:
    bus = events.create_event_bus(Name="tagged", Tags=[{"Key": "team", "Value": "shop"}])["EventBusArn"]
    assert tags(events, bus) == {"team": "shop"}
    events.tag_resource(ResourceARN=bus, Tags=[{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "ops"}])
    assert tags(events, bus) == {"env": "test", "team": "ops"}
    events.untag_resource(ResourceARN=bus, TagKeys=["team", "not-there"])
    assert tags(events, bus) == {"env": "test"}

    rule = events.put_rule(Name="r", EventBusName="tagged", EventPattern='{"source": ["a"]}', Tags=[{"Key": "k", "Value": "1"}])["RuleArn"]
    assert rule == f"{ACCOUNT}:rule/tagged/r" and tags(events, rule) == {"k": "1"}
    # A PutRule that updates the rule leaves its tags alone, as AWS does.
    events.put_rule(Name="r", EventBusName="tagged", EventPattern='{"source": ["b"]}', Tags=[{"Key": "k", "Value": "2"}])
    assert tags(events, rule) == {"k": "1"}
    default_rule = events.put_rule(Name="on-default", EventPattern='{"source": ["a"]}')["RuleArn"]
    events.tag_resource(ResourceARN=default_rule, Tags=[{"Key": "x", "Value": "y"}])
    assert tags(events, default_rule) == {"x": "y"}

    # Gone with the resource: a bus made again under the name starts untagged.
    events.delete_rule(Name="r", EventBusName="tagged")
    assert code(events.list_tags_for_resource, ResourceARN=rule) == "ResourceNotFoundException"
    events.delete_event_bus(Name="tagged")
    assert code(events.list_tags_for_resource, ResourceARN=bus) == "ResourceNotFoundException"
    events.create_event_bus(Name="tagged")
    assert tags(events, bus) == {}
    events.delete_event_bus(Name="tagged")


def test_tagging_what_does_not_exist_is_resource_not_found(events: Any) -> None:
    for arn in (f"{ACCOUNT}:event-bus/nope", f"{ACCOUNT}:rule/nope", f"{ACCOUNT}:rule/orders/nope", "not-an-arn"):
        assert code(events.tag_resource, ResourceARN=arn, Tags=[{"Key": "a", "Value": "b"}]) == "ResourceNotFoundException"
    assert code(events.tag_resource, ResourceARN=f"{ACCOUNT}:event-bus/orders", Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)]) == "LimitExceededException"
