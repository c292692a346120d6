"""The Pipes API (REST-JSON) through boto3's pipes client against a live ``eventbus serve``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .helpers import LiveServer, Receiver

ROLE = "arn:aws:iam::123456789012:role/pipes"
JOBS = "arn:aws:sqs:us-east-1:123456789012:jobs"


@pytest.fixture(scope="module")
def pipes(live: LiveServer) -> Any:
    return live.client("pipes")


def error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_a_pipe_made_through_the_api_reads_a_queue_a_rule_fills(live: LiveServer, pipes: Any, receiver: Receiver) -> None:
    events = live.client("events")
    connection = events.create_connection(
        Name="pipe-conn",
        AuthorizationType="API_KEY",
        AuthParameters={"ApiKeyAuthParameters": {"ApiKeyName": "X-Key", "ApiKeyValue": "pipe-api-key-value"}},
    )
    destination = events.create_api_destination(
        Name="pipe-dest",
        ConnectionArn=connection["ConnectionArn"],
        InvocationEndpoint=f"{receiver.url}/pipe",
        HttpMethod="POST",
    )["ApiDestinationArn"]
    created = pipes.create_pipe(
        Name="jobs-pipe",
        Source=JOBS,
        SourceParameters={
            "FilterCriteria": {"Filters": [{"Pattern": '{"body": {"detail": {"kind": ["job"]}}}'}]},
            "SqsQueueParameters": {"BatchSize": 1},
        },
        Target=destination,
        TargetParameters={"InputTemplate": '{"job": <$.body.detail.id>}'},
        RoleArn=ROLE,
        Description="jobs to the receiver",
    )
    assert created["CurrentState"] == "RUNNING" and created["Arn"].endswith(":pipe/jobs-pipe")
    # A rule sends matching events to the SQS queue of the config the pipe reads.
    events.put_rule(Name="to-jobs", EventPattern='{"source": ["jobs"]}')
    assert events.put_targets(Rule="to-jobs", Targets=[{"Id": "q", "Arn": JOBS}])["FailedEntryCount"] == 0
    before = len([r for r in receiver.requests if r["path"] == "/pipe"])
    events.put_events(
        Entries=[
            {"Source": "jobs", "DetailType": "t", "Detail": '{"kind": "job", "id": "j-1"}'},
            {"Source": "jobs", "DetailType": "t", "Detail": '{"kind": "other", "id": "j-2"}'},
        ]
    )
    while len([r for r in receiver.requests if r["path"] == "/pipe"]) < before + 1:
        receiver.wait_for(len(receiver.requests) + 1)
    arrived = [r for r in receiver.requests if r["path"] == "/pipe"][before]
    assert json.loads(arrived["body"]) == [{"job": "j-1"}]

    described = pipes.describe_pipe(Name="jobs-pipe")
    assert (described["Source"], described["Target"], described["DesiredState"]) == (JOBS, destination, "RUNNING")
    assert described["Description"] == "jobs to the receiver"
    assert described["SourceParameters"]["SqsQueueParameters"]["BatchSize"] == 1
    stopped = pipes.stop_pipe(Name="jobs-pipe")
    assert (stopped["DesiredState"], stopped["CurrentState"]) == ("STOPPED", "STOPPED")
    assert [p["Name"] for p in pipes.list_pipes(CurrentState="STOPPED", NamePrefix="jobs")["Pipes"]] == ["jobs-pipe"]
    started = pipes.start_pipe(Name="jobs-pipe")
    assert started["CurrentState"] == "RUNNING"
    updated = pipes.update_pipe(Name="jobs-pipe", RoleArn=ROLE, Description="changed")
    assert updated["CurrentState"] == "RUNNING"
    assert pipes.describe_pipe(Name="jobs-pipe")["Description"] == "changed"
    # An updated API destination reaches the pipe that sends to it.
    events.update_api_destination(Name="pipe-dest", InvocationEndpoint=f"{receiver.url}/pipe-moved")
    assert pipes.describe_pipe(Name="jobs-pipe")["CurrentState"] == "RUNNING"
    events.put_events(Entries=[{"Source": "jobs", "DetailType": "t", "Detail": '{"kind": "job", "id": "j-3"}'}])
    while not [r for r in receiver.requests if r["path"] == "/pipe-moved"]:
        receiver.wait_for(len(receiver.requests) + 1)
    moved = next(r for r in receiver.requests if r["path"] == "/pipe-moved")
    assert json.loads(moved["body"]) == [{"job": "j-3"}]
    deleted = pipes.delete_pipe(Name="jobs-pipe")
    assert deleted["DesiredState"] == "DELETED"
    with pytest.raises(ClientError) as info:
        pipes.describe_pipe(Name="jobs-pipe")
    assert error(info) == ("NotFoundException", 404)
    events.remove_targets(Rule="to-jobs", Ids=["q"])
    events.delete_rule(Name="to-jobs")


def test_pipes_are_listed_in_pages(pipes: Any) -> None:
    for index in range(3):
        pipes.create_pipe(
            Name=f"paged-pipe-{index}",
            Source=f"paged-queue-{index}",
            Target="arn:aws:events:us-east-1:123456789012:event-bus/default",
            RoleArn=ROLE,
            DesiredState="STOPPED",
        )
    first = pipes.list_pipes(NamePrefix="paged-pipe", Limit=2)
    second = pipes.list_pipes(NamePrefix="paged-pipe", Limit=2, NextToken=first["NextToken"])
    assert [p["Name"] for p in first["Pipes"] + second["Pipes"]] == [f"paged-pipe-{i}" for i in range(3)]
    assert all(p["CurrentState"] == "STOPPED" for p in first["Pipes"])
    for index in range(3):
        pipes.delete_pipe(Name=f"paged-pipe-{index}")


def test_config_pipes_start_and_stop_but_do_not_change(pipes: Any) -> None:
    assert pipes.describe_pipe(Name="from-config")["CurrentState"] == "RUNNING"
    assert pipes.stop_pipe(Name="from-config")["CurrentState"] == "STOPPED"
    assert pipes.start_pipe(Name="from-config")["CurrentState"] == "RUNNING"
    for call in (
        lambda: pipes.delete_pipe(Name="from-config"),
        lambda: pipes.update_pipe(Name="from-config", RoleArn=ROLE, Description="x"),
    ):
        with pytest.raises(ClientError) as info:
            call()
        assert error(info) == ("ConflictException", 409)
        assert "orders.yaml" in info.value.response["Error"]["Message"]


def test_pipe_errors(pipes: Any) -> None:
    target = "arn:aws:events:us-east-1:123456789012:event-bus/default"
    with pytest.raises(ClientError) as info:
        pipes.create_pipe(Name="bad-target", Source="q", Target="arn:aws:kinesis:us-east-1:123456789012:stream/x", RoleArn=ROLE)
    assert error(info) == ("ValidationException", 400)
    with pytest.raises(ClientError) as info:
        pipes.create_pipe(Name="bad-source", Source="arn:aws:kinesis:us-east-1:1:stream/x", Target=target, RoleArn=ROLE)
    assert error(info) == ("ValidationException", 400)
    with pytest.raises(ClientError) as info:
        pipes.create_pipe(
            Name="bad-filter",
            Source="q",
            Target=target,
            RoleArn=ROLE,
            SourceParameters={"FilterCriteria": {"Filters": [{"Pattern": '{"body": "x"}'}]}},
        )
    assert error(info) == ("ValidationException", 400)
    assert "Event pattern is not valid" in info.value.response["Error"]["Message"]
    pipes.create_pipe(Name="twice", Source="twice-q", Target=target, RoleArn=ROLE, DesiredState="STOPPED")
    with pytest.raises(ClientError) as info:
        pipes.create_pipe(Name="twice", Source="twice-q", Target=target, RoleArn=ROLE)
    assert error(info) == ("ConflictException", 409)
    pipes.delete_pipe(Name="twice")
    for call in (lambda: pipes.start_pipe(Name="ghost"), lambda: pipes.delete_pipe(Name="ghost")):
        with pytest.raises(ClientError) as info:
            call()
        assert error(info) == ("NotFoundException", 404)
