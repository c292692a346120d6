"""Archives and replay over the wire: boto3 against ``eventbus serve --state`` (the bus archive
engine in the SQLite state file), and the wire layer alone against a small in-test ``ArchiveService``
checked against botocore's model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from eventbus.config import Runtime
from eventbus.server import ArchiveInfo, EventbusServer, ReplayInfo
from eventbus.server.archives_api import ArchivesApi
from eventbus.server.errors import ApiError

from .helpers import LiveServer
from .test_service_models import EVENTS, shape_problems

ACCOUNT = "arn:aws:events:us-east-1:123456789012"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_archives_and_replays_of_the_served_buses_through_boto3(live: LiveServer) -> None:
    """An archive of a served bus takes the events it is sent, and a replay puts them back on the
    bus with their replay-name."""
    events = live.client("events")
    arn = events.create_archive(
        ArchiveName="orders-all", EventSourceArn=f"{ACCOUNT}:event-bus/orders", EventPattern='{"source": ["archived"]}'
    )["ArchiveArn"]
    assert arn == f"{ACCOUNT}:archive/orders-all"
    with pytest.raises(ClientError) as info:
        events.create_archive(ArchiveName="orders-all", EventSourceArn=f"{ACCOUNT}:event-bus/orders")
    assert info.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    before = datetime.now(UTC) - timedelta(minutes=1)
    for n in range(3):
        events.put_events(Entries=[{"Source": "archived", "DetailType": "t", "Detail": json.dumps({"n": n}), "EventBusName": "orders"}])
    events.put_events(Entries=[{"Source": "other", "DetailType": "t", "Detail": "{}", "EventBusName": "orders"}])
    wait(lambda: events.describe_archive(ArchiveName="orders-all")["EventCount"] == 3, "three events archived")
    assert [a["ArchiveName"] for a in events.list_archives(EventSourceArn=f"{ACCOUNT}:event-bus/orders")["Archives"]] == ["orders-all"]
    events.start_replay(
        ReplayName="orders-again", EventSourceArn=arn, EventStartTime=before, EventEndTime=datetime.now(UTC) + timedelta(minutes=1),
        Destination={"Arn": f"{ACCOUNT}:event-bus/orders"},
    )
    wait(lambda: events.describe_replay(ReplayName="orders-again")["State"] == "COMPLETED", "the replay completed")
    assert [r["ReplayName"] for r in events.list_replays(State="COMPLETED")["Replays"]] == ["orders-again"]
    with pytest.raises(ClientError) as info:
        events.cancel_replay(ReplayName="orders-again")
    assert info.value.response["Error"]["Code"] == "IllegalStatusException"
    with pytest.raises(ClientError) as info:
        events.describe_archive(ArchiveName="nowhere")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    events.delete_archive(ArchiveName="orders-all")
    assert events.list_archives()["Archives"] == []


def wait(check: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, f"waited 30 s for {what}"
        time.sleep(0.05)


@pytest.mark.anyio
async def test_an_api_given_no_service_says_so() -> None:
    api = ArchivesApi(EventbusServer(Runtime([])).state)
    with pytest.raises(ApiError) as info:
        await api.list_replays({})
    assert info.value.code == "OperationDisabledException"
    assert "ArchiveService" in info.value.message


class Archives:
    """Just enough of an ArchiveService to drive the wire layer."""

    def __init__(self) -> None:
        self.archives: dict[str, ArchiveInfo] = {}
        self.replays: dict[str, ReplayInfo] = {}

    def create_archive(self, name: str, *, bus: str, event_pattern: str | None, retention_days: int, description: str | None) -> ArchiveInfo:
        info = ArchiveInfo(name, f"{ACCOUNT}:archive/{name}", bus, f"{ACCOUNT}:event-bus/{bus}", "ENABLED", event_pattern, retention_days, description, datetime.now(UTC))
        self.archives[name] = info
        return info

    def describe_archive(self, name: str) -> ArchiveInfo:
        if name not in self.archives:
            raise ApiError("ResourceNotFoundException", f"Archive {name} does not exist.")
        return self.archives[name]

    def update_archive(self, name: str, *, event_pattern: str | None, retention_days: int | None, description: str | None) -> ArchiveInfo:
        current = self.describe_archive(name)
        self.archives[name] = replace(current, retention_days=current.retention_days if retention_days is None else retention_days)
        return self.archives[name]

    def list_archives(self) -> Sequence[ArchiveInfo]:
        return list(self.archives.values())

    def delete_archive(self, name: str) -> None:
        self.archives.pop(self.describe_archive(name).name)

    async def start_replay(self, name: str, *, archive: str, start: datetime, end: datetime, destination_bus: str, rules: Sequence[str], description: str | None) -> ReplayInfo:
        info = ReplayInfo(name, f"{ACCOUNT}:replay/{name}", f"{ACCOUNT}:archive/{archive}", "STARTING", f"{ACCOUNT}:event-bus/{destination_bus}", tuple(f"{ACCOUNT}:rule/{r}" for r in rules), start, end, description, started=datetime.now(UTC))
        self.replays[name] = info
        return info

    def describe_replay(self, name: str) -> ReplayInfo:
        return self.replays[name]

    def list_replays(self) -> Sequence[ReplayInfo]:
        return list(self.replays.values())

    def cancel_replay(self, name: str) -> ReplayInfo:
        self.replays[name] = replace(self.replays[name], state="CANCELLING")
        return self.replays[name]


@pytest.mark.anyio
async def test_the_wire_layer_answers_the_documented_shapes() -> None:
    server = EventbusServer(Runtime([]))
    server.archives.service = Archives()
    assert isinstance(server.archives, ArchivesApi)

    async with server.running(), httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app), base_url="http://t") as client:

        async def call(operation: str, **params: Any) -> dict[str, Any]:
            response = await client.post("/", content=json.dumps(params), headers={"X-Amz-Target": f"AWSEvents.{operation}", "Content-Type": "application/x-amz-json-1.1"})
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            output = EVENTS["operations"][operation]["output"]["shape"]
            assert shape_problems(EVENTS, output, body) == [], operation
            return body

        created = await call("CreateArchive", ArchiveName="all", EventSourceArn=f"{ACCOUNT}:event-bus/default", RetentionDays=3, EventPattern='{"source": ["a"]}')
        assert created["State"] == "ENABLED"
        assert (await call("DescribeArchive", ArchiveName="all"))["RetentionDays"] == 3
        assert [a["ArchiveName"] for a in (await call("ListArchives", NamePrefix="a"))["Archives"]] == ["all"]
        assert (await call("UpdateArchive", ArchiveName="all", RetentionDays=5))["State"] == "ENABLED"
        assert (await call("DescribeArchive", ArchiveName="all"))["RetentionDays"] == 5
        started = await call(
            "StartReplay",
            ReplayName="again",
            EventSourceArn=f"{ACCOUNT}:archive/all",
            EventStartTime=1_700_000_000,
            EventEndTime=1_700_003_600,
            Destination={"Arn": f"{ACCOUNT}:event-bus/default", "FilterArns": [f"{ACCOUNT}:rule/r1"]},
        )
        assert started["State"] == "STARTING"
        described = await call("DescribeReplay", ReplayName="again")
        assert described["Destination"] == {"Arn": f"{ACCOUNT}:event-bus/default", "FilterArns": [f"{ACCOUNT}:rule/r1"]}
        assert described["EventStartTime"] == 1_700_000_000
        assert len((await call("ListReplays"))["Replays"]) == 1
        assert (await call("CancelReplay", ReplayName="again"))["State"] == "CANCELLING"
        await call("DeleteArchive", ArchiveName="all")
        backwards = await client.post(
            "/",
            content=json.dumps({"ReplayName": "b", "EventSourceArn": f"{ACCOUNT}:archive/all", "EventStartTime": 2, "EventEndTime": 1, "Destination": {"Arn": f"{ACCOUNT}:event-bus/default"}}),
            headers={"X-Amz-Target": "AWSEvents.StartReplay", "Content-Type": "application/x-amz-json-1.1"},
        )
        assert backwards.json()["__type"] == "ValidationException"


ARCHIVE_CONFIG = """
buses:
  shop:
    rules:
      to-receiver:
        pattern: {source: [s]}
        targets:
          - http: {endpoint: "%s/got"}
"""


def test_archive_and_replay_through_boto3(tmp_path: Path) -> None:
    from .conftest import write
    from .helpers import Receiver

    receiver = Receiver()
    config = write(tmp_path, "a.yaml", ARCHIVE_CONFIG % receiver.url)
    state = tmp_path / "state.db"
    server = LiveServer([config], cwd=tmp_path, args=["--state", str(state)])
    events = server.client()
    bus_arn = f"{ACCOUNT}:event-bus/shop"
    created = events.create_archive(ArchiveName="all", EventSourceArn=bus_arn, Description="every event")
    assert created["State"] == "ENABLED" and created["ArchiveArn"] == f"{ACCOUNT}:archive/all"
    events.create_archive(ArchiveName="only-t", EventSourceArn=bus_arn, EventPattern='{"detail-type": ["t"]}', RetentionDays=7)
    before = datetime.now(UTC).replace(microsecond=0)
    answer = events.put_events(
        Entries=[{"Source": "s", "DetailType": t, "Detail": json.dumps({"n": n}), "EventBusName": "shop"} for n, t in enumerate("tut")]
    )
    ids = [e["EventId"] for e in answer["Entries"]]
    receiver.wait_for(3)
    described = events.describe_archive(ArchiveName="only-t")
    assert (described["EventSourceArn"], described["RetentionDays"], described["EventPattern"]) == (bus_arn, 7, '{"detail-type":["t"]}')
    assert [a["ArchiveName"] for a in events.list_archives(EventSourceArn=bus_arn)["Archives"]] == ["all", "only-t"]
    assert events.update_archive(ArchiveName="only-t", RetentionDays=30)["State"] == "ENABLED"
    assert events.describe_archive(ArchiveName="only-t")["RetentionDays"] == 30
    # Events are archived after they are routed: wait until the archive holds them.
    deadline = time.monotonic() + 30
    while events.describe_archive(ArchiveName="all")["EventCount"] < 3:
        assert time.monotonic() < deadline, events.describe_archive(ArchiveName="all")
        time.sleep(0.05)

    # Kept across a restart: the archive, its events, and then the replay.
    assert server.stop() == 0, "\n".join(server.lines)
    server = LiveServer([config], cwd=tmp_path, args=["--state", str(state)])
    events = server.client()
    assert events.describe_archive(ArchiveName="all")["EventCount"] == 3
    started = events.start_replay(
        ReplayName="again",
        EventSourceArn=created["ArchiveArn"],
        EventStartTime=before - timedelta(seconds=1),
        EventEndTime=datetime.now(UTC) + timedelta(seconds=1),
        Destination={"Arn": bus_arn, "FilterArns": [f"{ACCOUNT}:rule/shop/to-receiver"]},
    )
    assert started["State"] in {"STARTING", "RUNNING", "COMPLETED"} and started["ReplayArn"] == f"{ACCOUNT}:replay/again"
    replayed = receiver.wait_for(6)[3:]
    bodies = [json.loads(r["body"]) for r in replayed]
    # In order of time (these three share one second: any order among them).
    assert sorted(b["id"] for b in bodies) == sorted(ids) and {b["replay-name"] for b in bodies} == {"again"}
    deadline = time.monotonic() + 30
    while (replay := events.describe_replay(ReplayName="again"))["State"] != "COMPLETED":
        assert time.monotonic() < deadline, replay
        time.sleep(0.05)
    assert replay["Destination"] == {"Arn": bus_arn, "FilterArns": [f"{ACCOUNT}:rule/shop/to-receiver"]}
    assert "EventLastReplayedTime" in replay and "ReplayEndTime" in replay
    assert [r["ReplayName"] for r in events.list_replays(EventSourceArn=created["ArchiveArn"])["Replays"]] == ["again"]
    # Replayed events are never archived again.
    assert events.describe_archive(ArchiveName="all")["EventCount"] == 3

    def code(call: Any, **params: Any) -> str:
        with pytest.raises(ClientError) as info:
            call(**params)
        return str(info.value.response["Error"]["Code"])

    assert code(events.create_archive, ArchiveName="all", EventSourceArn=bus_arn) == "ResourceAlreadyExistsException"
    assert code(events.create_archive, ArchiveName="x", EventSourceArn=f"{ACCOUNT}:event-bus/nope") == "ResourceNotFoundException"
    assert code(events.create_archive, ArchiveName="bad", EventSourceArn=bus_arn, EventPattern='{"source": "s"}') == "InvalidEventPatternException"
    assert code(events.describe_archive, ArchiveName="nope") == "ResourceNotFoundException"
    assert code(events.describe_replay, ReplayName="nope") == "ResourceNotFoundException"
    assert code(events.cancel_replay, ReplayName="again") == "IllegalStatusException"
    window = {"EventStartTime": before, "EventEndTime": datetime.now(UTC), "Destination": {"Arn": bus_arn}}
    assert code(events.start_replay, ReplayName="again", EventSourceArn=created["ArchiveArn"], **window) == "ResourceAlreadyExistsException"
    assert code(events.start_replay, ReplayName="r2", EventSourceArn=f"{ACCOUNT}:archive/nope", **window) == "ResourceNotFoundException"
    events.delete_archive(ArchiveName="only-t")
    assert code(events.describe_archive, ArchiveName="only-t") == "ResourceNotFoundException"
    assert server.stop() == 0, "\n".join(server.lines)
    receiver.close()
