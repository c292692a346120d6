"""What the API creates is kept in the ``ResourceStore`` and put back when a server starts on it.

In one process the ``MemoryStore`` plays the durable store's part: a second server on the same
store finds the first one's buses, rules, targets, connections, API destinations and pipes. Across
processes ``eventbus serve --state PATH`` keeps them in the SQLite state file (``SqliteResourceStore``),
with the events the API's buses accepted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventbus.config import Runtime, load_configs
from eventbus.server import EventbusServer, MemoryStore

from .conftest import write
from .helpers import Receiver


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def call(client: httpx.AsyncClient, operation: str, **params: Any) -> dict[str, Any]:
    response = await client.post(
        "/",
        content=json.dumps(params),
        headers={"X-Amz-Target": f"AWSEvents.{operation}", "Content-Type": "application/x-amz-json-1.1"},
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def server_on(config: Path, store: MemoryStore) -> EventbusServer:
    return EventbusServer(Runtime(load_configs([config])), store=store)


@pytest.mark.anyio
async def test_a_second_server_on_the_same_store_finds_what_the_api_made(tmp_path: Path) -> None:
    receiver = Receiver()
    config = write(tmp_path, "base.yaml", "buses:\n  base: {}\n")
    store = MemoryStore()
    first = server_on(config, store)
    async with first.running(), httpx.AsyncClient(transport=httpx.ASGITransport(app=first.app), base_url="http://t") as client:
        await call(client, "CreateEventBus", Name="kept", Description="kept bus")
        connection = await call(
            client,
            "CreateConnection",
            Name="kept-conn",
            AuthorizationType="BASIC",
            AuthParameters={"BasicAuthParameters": {"Username": "u", "Password": "kept-password"}},
        )
        destination = await call(
            client,
            "CreateApiDestination",
            Name="kept-dest",
            ConnectionArn=connection["ConnectionArn"],
            InvocationEndpoint=f"{receiver.url}/kept",
            HttpMethod="POST",
        )
        await call(client, "PutRule", Name="r", EventBusName="kept", EventPattern='{"source": ["k"]}', State="DISABLED")
        await call(client, "PutTargets", Rule="r", EventBusName="kept", Targets=[{"Id": "d", "Arn": destination["ApiDestinationArn"]}])
        pipe = await client.post(
            "/v1/pipes/kept-pipe",
            json={"Source": "kept-queue", "Target": "arn:aws:events:us-east-1:123456789012:event-bus/kept", "RoleArn": "arn:aws:iam::1:role/r", "DesiredState": "STOPPED"},
        )
        assert pipe.status_code == 200, pipe.text
    second = server_on(config, store)
    async with second.running(), httpx.AsyncClient(transport=httpx.ASGITransport(app=second.app), base_url="http://t") as client:
        assert (await call(client, "DescribeEventBus", Name="kept"))["Description"] == "kept bus"
        rule = await call(client, "DescribeRule", Name="r", EventBusName="kept")
        assert (rule["State"], rule["EventPattern"]) == ("DISABLED", '{"source": ["k"]}')
        targets = await call(client, "ListTargetsByRule", Rule="r", EventBusName="kept")
        assert targets["Targets"] == [{"Id": "d", "Arn": destination["ApiDestinationArn"]}]
        assert (await call(client, "DescribeConnection", Name="kept-conn"))["ConnectionArn"] == connection["ConnectionArn"]
        described = (await client.get("/v1/pipes/kept-pipe")).json()
        assert (described["CurrentState"], described["DesiredState"]) == ("STOPPED", "STOPPED")
        # The restored rule delivers.
        await call(client, "EnableRule", Name="r", EventBusName="kept")
        await call(client, "PutEvents", Entries=[{"Source": "k", "DetailType": "t", "Detail": '{"n": 1}', "EventBusName": "kept"}])
        import anyio

        with anyio.fail_after(30):
            while not receiver.requests:
                await anyio.sleep(0.01)
    assert json.loads(receiver.requests[0]["body"])["detail"] == {"n": 1}
    receiver.close()


def test_rules_and_targets_made_through_the_api_survive_a_server_restart(tmp_path: Path) -> None:
    from .helpers import LiveServer

    receiver = Receiver()
    config = write(tmp_path, "base.yaml", "buses:\n  base: {}\n")
    state = tmp_path / "state.db"
    first = LiveServer([config], cwd=tmp_path, args=["--state", str(state)])
    events = first.client()
    bus_arn = events.create_event_bus(Name="kept", Tags=[{"Key": "team", "Value": "shop"}])["EventBusArn"]
    connection = events.create_connection(
        Name="c", AuthorizationType="API_KEY", AuthParameters={"ApiKeyAuthParameters": {"ApiKeyName": "k", "ApiKeyValue": "restart-key"}}
    )
    destination = events.create_api_destination(
        Name="d", ConnectionArn=connection["ConnectionArn"], InvocationEndpoint=f"{receiver.url}/kept", HttpMethod="POST"
    )["ApiDestinationArn"]
    events.put_rule(Name="r", EventBusName="kept", EventPattern='{"source": ["k"]}')
    events.put_targets(Rule="r", EventBusName="kept", Targets=[{"Id": "d", "Arn": destination}])
    assert first.stop() == 0
    second = LiveServer([config], cwd=tmp_path, args=["--state", str(state)])
    events = second.client()
    assert events.list_targets_by_rule(Rule="r", EventBusName="kept")["Targets"][0]["Arn"] == destination
    assert events.list_tags_for_resource(ResourceARN=bus_arn)["Tags"] == [{"Key": "team", "Value": "shop"}]
    assert events.describe_connection(Name="c")["AuthParameters"]["ApiKeyAuthParameters"] == {"ApiKeyName": "k"}
    events.put_events(Entries=[{"Source": "k", "DetailType": "t", "Detail": "{}", "EventBusName": "kept"}])
    receiver.wait_for(1)
    assert second.stop() == 0
    receiver.close()


def test_events_an_api_bus_accepted_are_delivered_after_a_restart(tmp_path: Path) -> None:
    """The buses the API creates keep their deliveries in the state file, as the config's do."""
    from .helpers import LiveServer

    receiver = Receiver(status=503)
    config = write(tmp_path, "base.yaml", "defaults:\n  bus: {drain_timeout: 0.5, backoff: {base: 0.05, cap: 0.2}}\nbuses:\n  base: {}\n")
    first = LiveServer([config], cwd=tmp_path)
    events = first.client()
    events.create_event_bus(Name="api-made")
    connection = events.create_connection(
        Name="c", AuthorizationType="API_KEY", AuthParameters={"ApiKeyAuthParameters": {"ApiKeyName": "k", "ApiKeyValue": "v"}}
    )
    destination = events.create_api_destination(
        Name="d", ConnectionArn=connection["ConnectionArn"], InvocationEndpoint=f"{receiver.url}/later", HttpMethod="POST"
    )["ApiDestinationArn"]
    events.put_rule(Name="r", EventBusName="api-made", EventPattern='{"source": ["k"]}')
    events.put_targets(Rule="r", EventBusName="api-made", Targets=[{"Id": "d", "Arn": destination}])
    event_id = events.put_events(Entries=[{"Source": "k", "DetailType": "t", "Detail": "{}", "EventBusName": "api-made"}])["Entries"][0]["EventId"]
    receiver.wait_for(2)  # failing, retrying
    assert first.stop() == 0, first.lines
    state = tmp_path / ".eventbus" / "base.db"
    assert first.lines[-1] == (
        f"eventbus: stopped; 1 pending delivery(ies) are kept in {state} for the next start (nothing lost); "
        "every other accepted event was delivered"
    ), first.lines
    receiver.status = 200
    seen = len(receiver.requests)
    second = LiveServer([config], cwd=tmp_path)
    arrived = receiver.wait_for(seen + 1)[seen:]
    assert json.loads(arrived[-1]["body"])["id"] == event_id
    assert second.stop() == 0, second.lines
    receiver.close()
