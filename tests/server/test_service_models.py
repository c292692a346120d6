"""botocore's service models are the authority: every operation the server claims answers with
its documented output shape, and every other one is answered as AWS answers an unknown one."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from botocore.loaders import Loader

from .helpers import LiveServer, Receiver

EVENTS = Loader().load_service_model("events", "service-2")
PIPES = Loader().load_service_model("pipes", "service-2")
BUS_ARN = "arn:aws:events:us-east-1:123456789012:event-bus/models"


def shape_problems(model: dict[str, Any], shape_name: str, value: Any, where: str = "") -> list[str]:
    """Where ``value`` does not fit the shape (unknown members, wrong types)."""
    shape = model["shapes"][shape_name]
    kind = shape["type"]
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        problems = []
        for key, item in value.items():
            member = shape["members"].get(key)
            if member is None:
                problems.append(f"{where}.{key}: not a member of {shape_name}")
            else:
                problems += shape_problems(model, member["shape"], item, f"{where}.{key}")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{where}: not a list"]
        return [p for i, item in enumerate(value) for p in shape_problems(model, shape["member"]["shape"], item, f"{where}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{where}: not a map"]
        return [p for k, item in value.items() for p in shape_problems(model, shape["value"]["shape"], item, f"{where}.{k}")]
    expected = {
        "string": str,
        "boolean": bool,
        "integer": int,
        "long": int,
        "timestamp": (int, float),
        "double": (int, float),
        "float": (int, float),
    }[kind]
    if not isinstance(value, expected) or (kind != "boolean" and isinstance(value, bool)):
        return [f"{where}: {value!r} is not a {kind}"]
    if kind == "string" and shape.get("enum") and value not in shape["enum"]:
        return [f"{where}: {value!r} is not one of {shape['enum']}"]
    return []


def test_the_server_claims_the_operations_of_the_issue() -> None:
    claimed = _claimed()
    assert claimed <= set(EVENTS["operations"])
    assert {
        "PutEvents", "CreateEventBus", "DeleteEventBus", "DescribeEventBus", "ListEventBuses", "PutRule",
        "DeleteRule", "DescribeRule", "ListRules", "EnableRule", "DisableRule", "ListRuleNamesByTarget",
        "PutTargets", "RemoveTargets", "ListTargetsByRule", "TestEventPattern", "CreateArchive",
        "DescribeArchive", "ListArchives", "DeleteArchive", "StartReplay", "DescribeReplay", "ListReplays",
        "CancelReplay", "CreateConnection", "DescribeConnection", "ListConnections", "DeleteConnection",
        "CreateApiDestination", "DescribeApiDestination", "ListApiDestinations", "DeleteApiDestination",
    } | EXTRA == claimed


#: Operations beyond the issue's list that the server answers too.
EXTRA = {"UpdateArchive", "UpdateConnection", "UpdateApiDestination", "TagResource", "UntagResource", "ListTagsForResource"}


def _claimed() -> set[str]:
    from eventbus.config import Runtime
    from eventbus.server import EventbusServer

    return set(EventbusServer(Runtime([]))._event_handlers)


def _call(live: LiveServer, operation: str, params: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        live.url + "/",
        json=params,
        headers={"X-Amz-Target": f"AWSEvents.{operation}", "Content-Type": "application/x-amz-json-1.1"},
        timeout=30,
    )


def test_every_claimed_events_operation_answers_its_documented_shape(live: LiveServer, receiver: Receiver) -> None:
    pattern = '{"source": ["models"]}'
    steps: list[tuple[str, dict[str, Any]]] = [
        ("CreateEventBus", {"Name": "models", "Description": "shapes"}),
        ("DescribeEventBus", {"Name": "models"}),
        ("ListEventBuses", {"NamePrefix": "mod", "Limit": 5}),
        ("PutRule", {"Name": "r", "EventBusName": "models", "EventPattern": pattern, "Description": "d"}),
        ("DescribeRule", {"Name": "r", "EventBusName": "models"}),
        ("ListRules", {"EventBusName": "models"}),
        ("DisableRule", {"Name": "r", "EventBusName": "models"}),
        ("EnableRule", {"Name": "r", "EventBusName": "models"}),
        (
            "CreateConnection",
            {
                "Name": "models-conn",
                "AuthorizationType": "OAUTH_CLIENT_CREDENTIALS",
                "AuthParameters": {
                    "OAuthParameters": {
                        "ClientParameters": {"ClientID": "id", "ClientSecret": "s"},
                        "AuthorizationEndpoint": f"{receiver.url}/token",
                        "HttpMethod": "POST",
                    }
                },
            },
        ),
        ("DescribeConnection", {"Name": "models-conn"}),
        ("ListConnections", {}),
        ("PutTargets", {"Rule": "r", "EventBusName": "models", "Targets": [{"Id": "t", "Arn": BUS_ARN.replace("models", "default")}]}),
        ("ListTargetsByRule", {"Rule": "r", "EventBusName": "models"}),
        ("ListRuleNamesByTarget", {"TargetArn": BUS_ARN.replace("models", "default"), "EventBusName": "models"}),
        ("PutEvents", {"Entries": [{"Source": "models", "DetailType": "t", "Detail": "{}", "EventBusName": "models"}]}),
        ("TestEventPattern", {"EventPattern": pattern, "Event": json.dumps({"id": "1", "source": "models", "detail-type": "t", "account": "123456789012", "region": "us-east-1", "time": "2025-01-01T00:00:00Z"})}),
        ("RemoveTargets", {"Rule": "r", "EventBusName": "models", "Ids": ["t"]}),
        ("DeleteRule", {"Name": "r", "EventBusName": "models"}),
        ("DeleteEventBus", {"Name": "models"}),
    ]
    connection_arn = ""
    for operation, params in steps:
        response = _call(live, operation, params)
        assert response.status_code == 200, (operation, response.text)
        body = response.json()
        if operation == "CreateConnection":
            connection_arn = body["ConnectionArn"]
            follow = [
                ("CreateApiDestination", {"Name": "models-dest", "ConnectionArn": connection_arn, "InvocationEndpoint": f"{receiver.url}/x", "HttpMethod": "POST"}),
                ("DescribeApiDestination", {"Name": "models-dest"}),
                ("ListApiDestinations", {}),
                ("DeleteApiDestination", {"Name": "models-dest"}),
            ]
            for inner, inner_params in follow:
                answer = _call(live, inner, inner_params)
                assert answer.status_code == 200, (inner, answer.text)
                output = EVENTS["operations"][inner]["output"]["shape"]
                assert shape_problems(EVENTS, output, answer.json()) == [], inner
        output = EVENTS["operations"][operation].get("output")
        if output is None:
            assert body == {}, operation
        else:
            assert shape_problems(EVENTS, output["shape"], body) == [], operation
    answer = _call(live, "DeleteConnection", {"Name": "models-conn"})
    assert shape_problems(EVENTS, "DeleteConnectionResponse", answer.json()) == []


def test_errors_are_codes_the_model_documents(live: LiveServer) -> None:
    documented = {
        name: {e["shape"] for e in op.get("errors", [])} | {"ValidationException", "SerializationException"}
        for name, op in EVENTS["operations"].items()
    }
    cases = [
        ("DescribeRule", {"Name": "nope"}),
        ("DescribeEventBus", {"Name": "nope"}),
        ("PutRule", {"Name": "x", "EventPattern": "{bad"}),
        ("CreateEventBus", {"Name": "default"}),
        ("PutTargets", {"Rule": "nope", "Targets": [{"Id": "a", "Arn": BUS_ARN}]}),
        ("DescribeConnection", {"Name": "nope"}),
        ("DescribeApiDestination", {"Name": "nope"}),
        ("TestEventPattern", {"EventPattern": "[]", "Event": "{}"}),
    ]
    for operation, params in cases:
        response = _call(live, operation, params)
        assert response.status_code == 400
        assert response.json()["__type"] in documented[operation], (operation, response.text)


@pytest.mark.parametrize("operation", sorted(set(EVENTS["operations"]) - _claimed()))
def test_operations_not_served_are_unknown_operations(live: LiveServer, operation: str) -> None:
    response = _call(live, operation, {})
    assert response.status_code == 400
    assert response.json()["__type"] == "UnknownOperationException"


def test_every_pipes_operation_answers_its_documented_shape(live: LiveServer) -> None:
    pipes = live.client("pipes")
    raw: dict[str, Any] = {}

    def keep(http_response: Any, model: Any, **_: Any) -> None:
        raw[model.name] = json.loads(http_response.content or b"{}")

    pipes.meta.events.register("after-call.pipes.*", keep)
    role = "arn:aws:iam::123456789012:role/pipe"
    pipes.create_pipe(Name="shaped", Source="shaped-queue", Target=BUS_ARN.replace("models", "default"), RoleArn=role, DesiredState="STOPPED")
    pipes.describe_pipe(Name="shaped")
    pipes.list_pipes(NamePrefix="sha")
    pipes.start_pipe(Name="shaped")
    pipes.stop_pipe(Name="shaped")
    pipes.update_pipe(Name="shaped", RoleArn=role, Description="changed", DesiredState="STOPPED")
    pipes.delete_pipe(Name="shaped")
    for operation, body in raw.items():
        output = PIPES["operations"][operation]["output"]["shape"]
        assert shape_problems(PIPES, output, body) == [], (operation, body)
    assert set(raw) == {"CreatePipe", "DescribePipe", "ListPipes", "StartPipe", "StopPipe", "UpdatePipe", "DeletePipe"}
