"""UpdateConnection and UpdateApiDestination take effect on the targets that use them, and an API
destination's rate limit is one for all its uses (AWS counts it per destination)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest
from botocore.exceptions import ClientError

from eventbus import ManualClock
from eventbus.config import Runtime
from eventbus.server import EventbusServer

from .helpers import LiveServer, Receiver


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def events(live: LiveServer) -> Any:
    return live.client("events")


def test_updates_reach_the_targets_that_use_them(events: Any, receiver: Receiver) -> None:
    connection = events.create_connection(
        Name="upd-conn",
        AuthorizationType="API_KEY",
        AuthParameters={"ApiKeyAuthParameters": {"ApiKeyName": "X-Api-Key", "ApiKeyValue": "first-key"}},
    )
    destination = events.create_api_destination(
        Name="upd-dest", ConnectionArn=connection["ConnectionArn"], InvocationEndpoint=f"{receiver.url}/before", HttpMethod="POST"
    )["ApiDestinationArn"]
    events.create_event_bus(Name="updating")
    events.put_rule(Name="all", EventBusName="updating", EventPattern='{"source": ["u"]}')
    events.put_targets(Rule="all", EventBusName="updating", Targets=[{"Id": "d", "Arn": destination}])

    def deliver(n: int) -> dict[str, Any]:
        before = len(receiver.requests)
        events.put_events(Entries=[{"Source": "u", "DetailType": "t", "Detail": json.dumps({"n": n}), "EventBusName": "updating"}])
        got = receiver.wait_for(before + 1)[before]
        assert json.loads(got["body"])["detail"] == {"n": n}
        return got

    first = deliver(1)
    assert first["path"] == "/before" and {k.lower(): v for k, v in first["headers"].items()}["x-api-key"] == "first-key"

    # A new key value alone keeps the key's name.
    updated = events.update_connection(Name="upd-conn", AuthParameters={"ApiKeyAuthParameters": {"ApiKeyValue": "second-key"}})
    assert updated["ConnectionState"] == "AUTHORIZED" and updated["ConnectionArn"] == connection["ConnectionArn"]
    assert "second-key" not in json.dumps(events.describe_connection(Name="upd-conn"), default=str)
    second = deliver(2)
    assert {k.lower(): v for k, v in second["headers"].items()}["x-api-key"] == "second-key"

    answer = events.update_api_destination(Name="upd-dest", InvocationEndpoint=f"{receiver.url}/after", HttpMethod="PUT", InvocationRateLimitPerSecond=50)
    assert answer["ApiDestinationArn"] == destination
    described = events.describe_api_destination(Name="upd-dest")
    assert (described["InvocationEndpoint"], described["HttpMethod"], described["InvocationRateLimitPerSecond"]) == (
        f"{receiver.url}/after", "PUT", 50,
    )
    third = deliver(3)
    assert (third["path"], third["method"]) == ("/after", "PUT")
    assert events.list_targets_by_rule(Rule="all", EventBusName="updating")["Targets"] == [{"Id": "d", "Arn": destination}]

    # A new type takes the new type's parameters; the old type's are gone.
    events.update_connection(Name="upd-conn", AuthorizationType="BASIC", AuthParameters={"BasicAuthParameters": {"Username": "u", "Password": "p"}})
    auth = events.describe_connection(Name="upd-conn")["AuthParameters"]
    assert auth == {"BasicAuthParameters": {"Username": "u"}}
    fourth = deliver(4)
    assert {k.lower(): v for k, v in fourth["headers"].items()}["authorization"].startswith("Basic ")

    for call, params in (
        (events.update_connection, {"Name": "no-such-conn", "Description": "x"}),
        (events.update_api_destination, {"Name": "no-such-dest", "HttpMethod": "GET"}),
        (events.update_api_destination, {"Name": "upd-dest", "ConnectionArn": "arn:aws:events:us-east-1:123456789012:connection/none/x"}),
    ):
        with pytest.raises(ClientError) as info:
            call(**params)
        assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as info:
        events.update_api_destination(Name="upd-dest", InvocationEndpoint="ftp://nowhere")
    assert info.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.anyio
async def test_one_rate_limit_for_every_use_of_a_destination() -> None:
    """Two rules, a pipe-like third use: one destination at 2 calls a second gives one slot per
    half second among them all, on the injected clock."""
    clock = ManualClock()
    server = EventbusServer(Runtime([]))
    server.state.clock = clock
    async with server.running(), httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app), base_url="http://t") as client:

        async def call(operation: str, **params: Any) -> dict[str, Any]:
            response = await client.post("/", content=json.dumps(params), headers={"X-Amz-Target": f"AWSEvents.{operation}", "Content-Type": "application/x-amz-json-1.1"})
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        connection = await call("CreateConnection", Name="c", AuthorizationType="API_KEY", AuthParameters={"ApiKeyAuthParameters": {"ApiKeyName": "k", "ApiKeyValue": "v"}})
        arn = (await call("CreateApiDestination", Name="d", ConnectionArn=connection["ConnectionArn"], InvocationEndpoint="http://127.0.0.1:9/x/*", HttpMethod="POST", InvocationRateLimitPerSecond=2))["ApiDestinationArn"]
        for rule, path in (("one", "a"), ("two", "b")):
            await call("PutRule", Name=rule, EventPattern='{"source": ["never"]}')
            await call("PutTargets", Rule=rule, Targets=[{"Id": "t", "Arn": arn, "HttpParameters": {"PathParameterValues": [path]}}])
        bus = server.state.buses.get("default")
        limiters = [bus.describe_rule(rule).targets[0].target.target.rate_limiter for rule in ("one", "two")]  # inside the metrics timer
        assert limiters[0] is not None and limiters[0] is limiters[1]
        limiter = limiters[0]

        passed: list[str] = []

        async def take(who: str) -> None:
            await limiter.acquire()
            passed.append(who)

        async with anyio.create_task_group() as tg:
            for who in ("one", "two", "one"):
                tg.start_soon(take, who)
                await anyio.wait_all_tasks_blocked()
            assert passed == ["one"]  # the second use waits for the first's slot
            clock.advance(0.5)
            await anyio.wait_all_tasks_blocked()
            assert passed == ["one", "two"]
            # UpdateApiDestination changes the one rate for all of them (the slot handed out stays).
            await call("UpdateApiDestination", Name="d", InvocationRateLimitPerSecond=1)
            rebuilt = bus.describe_rule("one").targets[0].target.target.rate_limiter
            assert rebuilt is limiter and limiter.rate == 1
            clock.advance(0.5)
        assert passed == ["one", "two", "one"]
