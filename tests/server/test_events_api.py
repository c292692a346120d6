"""The EventBridge API through the real boto3 client against a live ``eventbus serve``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from .helpers import LiveServer, Receiver


def code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def message(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Message"])


@pytest.fixture(scope="module")
def events(live: LiveServer) -> Any:
    return live.client("events")


# -- PutEvents -------------------------------------------------------------------------------


def test_put_events_answers_per_entry_in_request_order(events: Any) -> None:
    answer = events.put_events(
        Entries=[
            {"Source": "shop", "DetailType": "OrderPlaced", "Detail": '{"id": 1}', "EventBusName": "orders"},
            {"Source": "shop", "DetailType": "OrderPlaced", "Detail": "not json", "EventBusName": "orders"},
            {
                "Source": "shop",
                "DetailType": "OrderPlaced",
                "Detail": "{}",
                "EventBusName": "arn:aws:events:us-east-1:123456789012:event-bus/orders",
            },
        ]
    )
    assert answer["FailedEntryCount"] == 1
    first, second, third = answer["Entries"]
    assert "EventId" in first and "EventId" in third
    assert second["ErrorCode"] == "MalformedDetail"


def test_put_events_without_a_bus_name_goes_to_the_default_bus(events: Any) -> None:
    answer = events.put_events(Entries=[{"Source": "a", "DetailType": "b", "Detail": "{}"}])
    assert answer["FailedEntryCount"] == 0


def test_put_events_to_buses_that_do_not_exist_fails_those_entries_only(events: Any) -> None:
    answer = events.put_events(
        Entries=[
            {"Source": "a", "DetailType": "b", "Detail": "{}", "EventBusName": "nowhere"},
            {"Source": "a", "DetailType": "b", "Detail": "{}", "EventBusName": "orders"},
        ]
    )
    assert answer["FailedEntryCount"] == 1
    assert answer["Entries"][0] == {
        "ErrorCode": "ResourceNotFoundException",
        "ErrorMessage": "Event bus nowhere does not exist.",
    }
    assert "EventId" in answer["Entries"][1]


def test_put_events_limits_are_awss(events: Any) -> None:
    with pytest.raises(ClientError) as info:
        events.put_events(Entries=[{"Source": "a", "DetailType": "b", "Detail": "{}"}] * 11)
    assert code(info) == "ValidationException"
    big = json.dumps({"blob": "x" * 262_144})
    answer = events.put_events(Entries=[{"Source": "a", "DetailType": "b", "Detail": big}])
    assert answer["Entries"][0]["ErrorCode"] == "ValidationException"


# -- buses -----------------------------------------------------------------------------------


def test_event_buses_are_created_described_listed_in_pages_and_deleted(events: Any) -> None:
    for index in range(5):
        arn = events.create_event_bus(Name=f"paged-{index}", Description=f"bus {index}")["EventBusArn"]
        assert arn == f"arn:aws:events:us-east-1:123456789012:event-bus/paged-{index}"
    described = events.describe_event_bus(Name="paged-3")
    assert (described["Name"], described["Description"]) == ("paged-3", "bus 3")
    names: list[str] = []
    token: dict[str, str] = {}
    pages = 0
    while True:
        page = events.list_event_buses(NamePrefix="paged-", Limit=2, **token)
        names += [bus["Name"] for bus in page["EventBuses"]]
        pages += 1
        if "NextToken" not in page:
            break
        token = {"NextToken": page["NextToken"]}
    assert names == [f"paged-{i}" for i in range(5)] and pages == 3
    with pytest.raises(ClientError) as info:
        events.create_event_bus(Name="paged-0")
    assert code(info) == "ResourceAlreadyExistsException"
    for index in range(5):
        events.delete_event_bus(Name=f"paged-{index}")
    with pytest.raises(ClientError) as info:
        events.describe_event_bus(Name="paged-0")
    assert (code(info), message(info)) == ("ResourceNotFoundException", "Event bus paged-0 does not exist.")
    events.delete_event_bus(Name="paged-0")  # gone already: no error, as on AWS


def test_the_default_and_config_buses_cannot_be_deleted(events: Any) -> None:
    with pytest.raises(ClientError) as info:
        events.delete_event_bus(Name="default")
    assert (code(info), message(info)) == ("ValidationException", "Cannot delete event bus default.")
    with pytest.raises(ClientError) as info:
        events.delete_event_bus(Name="orders")
    assert code(info) == "ValidationException" and "orders.yaml" in message(info)


def test_an_invalid_bus_name_gets_the_librarys_message(events: Any) -> None:
    with pytest.raises(ClientError) as info:
        events.create_event_bus(Name="no spaces")
    assert code(info) == "ValidationException"
    assert "Member must satisfy regular expression pattern" in message(info)


# -- rules -----------------------------------------------------------------------------------


def test_rules_are_put_described_listed_enabled_disabled_and_deleted(events: Any) -> None:
    events.create_event_bus(Name="rules-bus")
    pattern = '{"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}}'
    arn = events.put_rule(Name="big", EventBusName="rules-bus", EventPattern=pattern, Description="big ones")["RuleArn"]
    assert arn == "arn:aws:events:us-east-1:123456789012:rule/rules-bus/big"
    for name in ("tick", "tock", "zeta"):
        events.put_rule(Name=name, EventBusName="rules-bus", ScheduleExpression="rate(5 minutes)", State="DISABLED")
    described = events.describe_rule(Name="big", EventBusName="rules-bus")
    assert described["EventPattern"] == pattern
    assert (described["State"], described["Description"], described["EventBusName"]) == ("ENABLED", "big ones", "rules-bus")
    listed = events.list_rules(EventBusName="rules-bus", NamePrefix="t")
    assert [r["Name"] for r in listed["Rules"]] == ["tick", "tock"]
    first = events.list_rules(EventBusName="rules-bus", Limit=3)
    second = events.list_rules(EventBusName="rules-bus", Limit=3, NextToken=first["NextToken"])
    assert [r["Name"] for r in first["Rules"] + second["Rules"]] == ["big", "tick", "tock", "zeta"]
    assert "NextToken" not in second
    events.enable_rule(Name="tick", EventBusName="rules-bus")
    events.disable_rule(Name="big", EventBusName="rules-bus")
    states = {r["Name"]: r["State"] for r in events.list_rules(EventBusName="rules-bus")["Rules"]}
    assert states == {"big": "DISABLED", "tick": "ENABLED", "tock": "DISABLED", "zeta": "DISABLED"}
    events.delete_rule(Name="zeta", EventBusName="rules-bus")
    with pytest.raises(ClientError) as info:
        events.describe_rule(Name="zeta", EventBusName="rules-bus")
    assert (code(info), message(info)) == ("ResourceNotFoundException", "Rule zeta does not exist on EventBus rules-bus.")
    with pytest.raises(ClientError) as info:
        events.list_rules(EventBusName="rules-bus", NextToken="not-a-token")
    assert code(info) == "ValidationException"


def test_invalid_patterns_and_schedules_get_awss_messages(events: Any) -> None:
    with pytest.raises(ClientError) as info:
        events.put_rule(Name="bad", EventPattern='{"source": []}')
    assert code(info) == "InvalidEventPatternException"
    assert message(info).startswith("Event pattern is not valid. Reason: ")
    with pytest.raises(ClientError) as info:
        events.put_rule(Name="bad", ScheduleExpression="rate(5 minute)")
    assert code(info) == "ValidationException"
    with pytest.raises(ClientError) as info:
        events.put_rule(Name="bad")
    assert (code(info), message(info)) == (
        "ValidationException",
        "Parameter(s) EventPattern or ScheduleExpression must be specified.",
    )


def test_config_rules_are_read_only_through_the_api(events: Any) -> None:
    described = events.describe_rule(Name="from-config", EventBusName="orders")
    assert described["EventPattern"] == '{"source":["shop"]}'
    for call in (
        lambda: events.put_rule(Name="from-config", EventBusName="orders", EventPattern='{"source": ["x"]}'),
        lambda: events.disable_rule(Name="from-config", EventBusName="orders"),
        lambda: events.delete_rule(Name="from-config", EventBusName="orders", Force=True),
        lambda: events.remove_targets(Rule="from-config", EventBusName="orders", Ids=["log"]),
        lambda: events.put_targets(
            Rule="from-config",
            EventBusName="orders",
            Targets=[{"Id": "x", "Arn": "arn:aws:events:us-east-1:123456789012:event-bus/default"}],
        ),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert code(info) == "ManagedRuleException"
        assert "orders.yaml" in message(info) and "edit the file" in message(info)
    targets = events.list_targets_by_rule(Rule="from-config", EventBusName="orders")["Targets"]
    assert [t["Id"] for t in targets] == ["log"]
    # A new rule on a config bus is the API's own.
    events.put_rule(Name="api-rule", EventBusName="orders", EventPattern='{"source": ["api"]}')
    events.delete_rule(Name="api-rule", EventBusName="orders")


# -- targets ---------------------------------------------------------------------------------


def _destination(events: Any, receiver: Receiver, name: str) -> str:
    connection = events.create_connection(
        Name=f"{name}-conn",
        AuthorizationType="API_KEY",
        AuthParameters={"ApiKeyAuthParameters": {"ApiKeyName": "X-Api-Key", "ApiKeyValue": "key-value-secret"}},
    )
    return str(
        events.create_api_destination(
            Name=name,
            ConnectionArn=connection["ConnectionArn"],
            InvocationEndpoint=f"{receiver.url}/hooks/*",
            HttpMethod="POST",
            InvocationRateLimitPerSecond=100,
        )["ApiDestinationArn"]
    )


def test_a_rule_made_through_the_api_delivers_to_an_http_receiver(events: Any, receiver: Receiver) -> None:
    destination = _destination(events, receiver, "hook")
    events.create_event_bus(Name="delivering")
    events.put_rule(Name="paid", EventBusName="delivering", EventPattern='{"detail-type": ["OrderPaid"]}')
    answer = events.put_targets(
        Rule="paid",
        EventBusName="delivering",
        Targets=[
            {
                "Id": "hook",
                "Arn": destination,
                "InputTransformer": {"InputPathsMap": {"id": "$.detail.id"}, "InputTemplate": '{"paid": <id>}'},
                "HttpParameters": {"PathParameterValues": ["orders"], "HeaderParameters": {"X-From": "rule"}},
                "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 600},
            }
        ],
    )
    assert answer["FailedEntryCount"] == 0 and answer["FailedEntries"] == []
    before = len(receiver.requests)
    events.put_events(
        Entries=[
            {"Source": "shop", "DetailType": "OrderPaid", "Detail": '{"id": "o-1"}', "EventBusName": "delivering"},
            {"Source": "shop", "DetailType": "Other", "Detail": '{"id": "o-2"}', "EventBusName": "delivering"},
        ]
    )
    arrived = receiver.wait_for(before + 1)[before]
    assert arrived["path"] == "/hooks/orders"
    assert json.loads(arrived["body"]) == {"paid": "o-1"}
    headers = {k.lower(): v for k, v in arrived["headers"].items()}
    assert headers["x-api-key"] == "key-value-secret" and headers["x-from"] == "rule"
    listed = events.list_targets_by_rule(Rule="paid", EventBusName="delivering")["Targets"]
    assert listed[0]["Arn"] == destination and listed[0]["RetryPolicy"]["MaximumRetryAttempts"] == 3
    assert events.list_rule_names_by_target(TargetArn=destination, EventBusName="delivering")["RuleNames"] == ["paid"]


def test_put_targets_answers_unmappable_arns_and_bad_inputs_as_failed_entries(events: Any) -> None:
    events.put_rule(Name="mixed", EventPattern='{"source": ["m"]}')
    answer = events.put_targets(
        Rule="mixed",
        Targets=[
            {"Id": "ok", "Arn": "arn:aws:events:us-east-1:123456789012:event-bus/orders"},
            {"Id": "kinesis", "Arn": "arn:aws:kinesis:us-east-1:123456789012:stream/s"},
            {"Id": "lambda", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:missing"},
            {"Id": "fn", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:echo"},
            {"Id": "queue", "Arn": "arn:aws:sqs:us-east-1:123456789012:jobs"},
            {"Id": "noqueue", "Arn": "arn:aws:sqs:us-east-1:123456789012:nope"},
            {
                "Id": "badinput",
                "Arn": "arn:aws:events:us-east-1:123456789012:event-bus/orders",
                "Input": "{}",
                "InputPath": "$.detail",
            },
        ],
    )
    failed = {entry["TargetId"]: entry for entry in answer["FailedEntries"]}
    assert answer["FailedEntryCount"] == 4 == len(failed)
    assert "eventbus cannot deliver to arn:aws:kinesis" in failed["kinesis"]["ErrorMessage"]
    assert "No function named missing" in failed["lambda"]["ErrorMessage"]
    assert "No queue named nope" in failed["noqueue"]["ErrorMessage"]
    assert failed["badinput"] == {
        "TargetId": "badinput",
        "ErrorCode": "ValidationException",
        "ErrorMessage": "Only one of Input, InputPath, or InputTransformer must be provided for target badinput.",
    }
    listed = events.list_targets_by_rule(Rule="mixed", Limit=2)
    rest = events.list_targets_by_rule(Rule="mixed", NextToken=listed["NextToken"])
    assert [t["Id"] for t in listed["Targets"] + rest["Targets"]] == ["fn", "ok", "queue"]
    with pytest.raises(ClientError) as info:
        events.delete_rule(Name="mixed")
    assert (code(info), message(info)) == ("ValidationException", "Rule can't be deleted since it has targets.")
    answer = events.remove_targets(Rule="mixed", Ids=["ok", "fn", "queue"])
    assert answer["FailedEntryCount"] == 0
    events.delete_rule(Name="mixed")


def test_put_targets_on_a_missing_rule_is_resource_not_found(events: Any) -> None:
    with pytest.raises(ClientError) as info:
        events.put_targets(Rule="ghost", Targets=[{"Id": "a", "Arn": "arn:aws:events:us-east-1:1:event-bus/default"}])
    assert code(info) == "ResourceNotFoundException"


def test_a_bus_target_made_through_the_api_forwards_events(events: Any, receiver: Receiver) -> None:
    destination = _destination(events, receiver, "forwarded")
    events.create_event_bus(Name="downstream")
    events.put_rule(Name="all", EventBusName="downstream", EventPattern='{"source": ["fwd"]}')
    events.put_targets(Rule="all", EventBusName="downstream", Targets=[{"Id": "h", "Arn": destination, "HttpParameters": {"PathParameterValues": ["fwd"]}}])
    events.put_rule(Name="forward", EventPattern='{"source": ["fwd"]}')
    events.put_targets(Rule="forward", Targets=[{"Id": "bus", "Arn": "arn:aws:events:us-east-1:123456789012:event-bus/downstream"}])
    before = len(receiver.requests)
    events.put_events(Entries=[{"Source": "fwd", "DetailType": "t", "Detail": '{"n": 7}'}])
    arrived = receiver.wait_for(before + 1)[before]
    assert arrived["path"] == "/hooks/fwd"
    assert json.loads(arrived["body"])["detail"] == {"n": 7}


# -- TestEventPattern ------------------------------------------------------------------------

EVENT = {
    "id": "1",
    "source": "shop",
    "detail-type": "OrderPlaced",
    "account": "123456789012",
    "region": "us-east-1",
    "time": "2025-01-01T00:00:00Z",
    "detail": {"total": 250},
}


def test_test_event_pattern(events: Any) -> None:
    pattern = '{"detail": {"total": [{"numeric": [">", 100]}]}}'
    assert events.test_event_pattern(EventPattern=pattern, Event=json.dumps(EVENT))["Result"] is True
    assert events.test_event_pattern(EventPattern='{"source": ["x"]}', Event=json.dumps(EVENT))["Result"] is False
    with pytest.raises(ClientError) as info:
        events.test_event_pattern(EventPattern='{"source": "x"}', Event=json.dumps(EVENT))
    assert code(info) == "InvalidEventPatternException"
    with pytest.raises(ClientError) as info:
        events.test_event_pattern(EventPattern='{"source": ["x"]}', Event='{"source": "x"}')
    assert code(info) == "ValidationException"


# -- connections and API destinations --------------------------------------------------------


def test_connections_and_destinations_are_described_without_their_secrets(events: Any, receiver: Receiver) -> None:
    created = events.create_connection(
        Name="basic-conn",
        Description="basic",
        AuthorizationType="BASIC",
        AuthParameters={
            "BasicAuthParameters": {"Username": "user", "Password": "pw-never-shown"},
            "InvocationHttpParameters": {
                "HeaderParameters": [
                    {"Key": "X-Team", "Value": "ops", "IsValueSecret": False},
                    {"Key": "X-Token", "Value": "tok-never-shown", "IsValueSecret": True},
                ]
            },
        },
    )
    assert created["ConnectionState"] == "AUTHORIZED"
    described = events.describe_connection(Name="basic-conn")
    text = json.dumps(described, default=str)
    assert "pw-never-shown" not in text and "tok-never-shown" not in text
    assert described["AuthParameters"]["BasicAuthParameters"] == {"Username": "user"}
    assert "basic-conn" in [c["Name"] for c in events.list_connections(NamePrefix="basic")["Connections"]]
    with pytest.raises(ClientError) as info:
        events.create_connection(
            Name="basic-conn",
            AuthorizationType="BASIC",
            AuthParameters={"BasicAuthParameters": {"Username": "u", "Password": "p"}},
        )
    assert code(info) == "ResourceAlreadyExistsException"
    destination = events.create_api_destination(
        Name="basic-dest",
        ConnectionArn=created["ConnectionArn"],
        InvocationEndpoint=f"{receiver.url}/basic",
        HttpMethod="PUT",
    )
    assert destination["ApiDestinationState"] == "ACTIVE"
    described_destination = events.describe_api_destination(Name="basic-dest")
    assert (described_destination["HttpMethod"], described_destination["InvocationRateLimitPerSecond"]) == ("PUT", 300)
    listed = events.list_api_destinations(ConnectionArn=created["ConnectionArn"])["ApiDestinations"]
    assert [d["Name"] for d in listed] == ["basic-dest"]
    with pytest.raises(ClientError) as info:
        events.delete_connection(Name="basic-conn")
    assert code(info) == "ValidationException"
    events.delete_api_destination(Name="basic-dest")
    events.delete_connection(Name="basic-conn")
    for call in (lambda: events.describe_connection(Name="basic-conn"), lambda: events.describe_api_destination(Name="basic-dest")):
        with pytest.raises(ClientError) as info:
            call()
        assert code(info) == "ResourceNotFoundException"


def test_a_destination_needs_an_existing_connection_and_a_valid_endpoint(events: Any) -> None:
    with pytest.raises(ClientError) as info:
        events.create_api_destination(
            Name="orphan",
            ConnectionArn="arn:aws:events:us-east-1:123456789012:connection/none/x",
            InvocationEndpoint="https://example.com",
            HttpMethod="POST",
        )
    assert code(info) == "ResourceNotFoundException"


# -- the wire ---------------------------------------------------------------------------------


def _raw(live: LiveServer, target: str, body: bytes | str, content_type: str = "application/x-amz-json-1.1") -> httpx.Response:
    return httpx.post(
        live.url + "/",
        content=body,
        headers={"X-Amz-Target": target, "Content-Type": content_type},
        timeout=30,
    )


@pytest.mark.parametrize(
    ("target", "body", "content_type", "status", "error"),
    [
        ("AWSEvents.NoSuchThing", "{}", "application/x-amz-json-1.1", 400, "UnknownOperationException"),
        ("AWSEvents.CreateEndpoint", "{}", "application/x-amz-json-1.1", 400, "UnknownOperationException"),
        ("", "{}", "application/x-amz-json-1.1", 400, "UnknownOperationException"),
        ("AWSEvents.ListRules", "{not json", "application/x-amz-json-1.1", 400, "SerializationException"),
        ("AWSEvents.ListRules", "[1, 2]", "application/x-amz-json-1.1", 400, "SerializationException"),
        ("AWSEvents.ListRules", "{}", "text/plain", 400, "SerializationException"),
        ("AWSEvents.ListRules", '{"Limit": "ten"}', "application/x-amz-json-1.1", 400, "SerializationException"),
        ("AWSEvents.ListRules", '{"Limit": 1000}', "application/x-amz-json-1.1", 400, "ValidationException"),
        ("AWSEvents.DescribeRule", "{}", "application/x-amz-json-1.1", 400, "ValidationException"),
        ("AWSEvents.PutEvents", '{"Entries": []}', "application/x-amz-json-1.1", 400, "ValidationException"),
    ],
)
def test_bad_requests_get_awss_error_shapes(
    live: LiveServer, target: str, body: str, content_type: str, status: int, error: str
) -> None:
    response = _raw(live, target, body, content_type)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/x-amz-json-1.1"
    answer = response.json()
    assert answer["__type"] == error and answer["message"]
    assert "Traceback" not in response.text


def test_a_missing_member_is_named_as_aws_names_it(live: LiveServer) -> None:
    answer = _raw(live, "AWSEvents.DescribeRule", "{}").json()
    assert answer["message"] == (
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"
    )


def test_a_body_over_the_limit_is_413_unread(live: LiveServer) -> None:
    response = _raw(live, "AWSEvents.PutEvents", b"{" + b" " * (4 * 1024 * 1024 + 10) + b"}")
    assert response.status_code == 413
    assert response.json()["__type"] == "RequestEntityTooLargeException"


def test_entries_of_the_wrong_shape_are_refused_whole(live: LiveServer) -> None:
    for body in ('{"Entries": [5]}', '{"Entries": [{"Source": "a", "EventBusName": ["x"]}]}', '{"Entries": {"a": 1}}'):
        answer = _raw(live, "AWSEvents.PutEvents", body)
        assert answer.status_code == 400 and answer.json()["__type"] == "SerializationException", body
    typed = _raw(live, "AWSEvents.PutEvents", '{"Entries": [{"Source": 5, "DetailType": "t", "Detail": "{}"}]}').json()
    assert typed["Entries"][0]["ErrorCode"] == "InvalidArgument"
