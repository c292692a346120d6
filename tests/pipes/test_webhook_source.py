"""The webhook source over real HTTP: mounted in a server of its own, and self-served."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from eventbus.pipes import Pipe, PipeConfig, WebhookSource
from eventbus.targets.function import FunctionTargetConfig
from eventbus.targets.recording import RecordingTarget
from tests.pipes.conftest import eventually, settled, sqs_body

pytestmark = pytest.mark.anyio


async def test_mounted_in_another_server_thread(asgi_server: Callable[[Any], str]) -> None:
    source = WebhookSource(path="/hooks/orders")
    url = asgi_server(source.app) + "/hooks/orders"
    target = RecordingTarget()
    config = PipeConfig(name="hook", source=source, target=target, filter=[{"body": {"type": ["order"]}}])
    async with Pipe(config) as pipe, httpx.AsyncClient(timeout=5) as client:
        accepted = await client.post(url, json={"type": "order", "id": 7})
        ignored = await client.post(url, content="just text", headers={"content-type": "text/plain"})
        await settled(pipe, 2)
    assert accepted.status_code == 202 and ignored.status_code == 202
    assert [sqs_body(p) for p in target.payloads] == [{"type": "order", "id": 7}]
    record = target.payloads[0]
    assert record["messageId"] == accepted.json()["messageId"]
    assert record["eventSource"] == "eventbus:webhook" and record["attributes"]["Path"] == "/hooks/orders"


async def test_self_served_answers_bad_requests_with_4xx() -> None:
    target = RecordingTarget()
    config = PipeConfig(
        name="hook",
        source={"webhook": {"port": 0, "token": "let-me-in", "max_body_bytes": 100}},
        target=target,
    )
    async with Pipe(config) as pipe, httpx.AsyncClient(timeout=5) as client:
        source = pipe.source
        assert isinstance(source, WebhookSource) and source.url is not None
        url = source.url
        auth = {"authorization": "Bearer let-me-in"}
        statuses = {
            "ok": (await client.post(url, json={"a": 1}, headers=auth)).status_code,
            "no token": (await client.post(url, json={"a": 1})).status_code,
            "wrong token": (
                await client.post(url, json={"a": 1}, headers={"authorization": "Bearer nope"})
            ).status_code,
            "empty": (await client.post(url, content=b"", headers=auth)).status_code,
            "bad json": (
                await client.post(url, content=b"{oops", headers={**auth, "content-type": "application/json"})
            ).status_code,
            "not utf-8": (await client.post(url, content=b"\xff\xfe", headers=auth)).status_code,
            "too big": (await client.post(url, content=b"x" * 101, headers=auth)).status_code,
            "wrong path": (await client.post(url + "other", json={}, headers=auth)).status_code,
            "wrong method": (await client.get(url, headers=auth)).status_code,
        }
        await settled(pipe, 1)
        unauthorised = await client.post(url, json={"a": 1}, headers={"authorization": "Bearer nope"})
    assert statuses == {
        "ok": 202,
        "no token": 401,
        "wrong token": 401,
        "empty": 400,
        "bad json": 400,
        "not utf-8": 400,
        "too big": 413,
        "wrong path": 404,
        "wrong method": 405,
    }
    assert "let-me-in" not in unauthorised.text and "let-me-in" not in repr(pipe.source)
    assert len(target.payloads) == 1


async def test_back_pressure_429_when_full_and_503_when_stopped() -> None:
    gate = anyio.Event()

    async def slow(batch: list[Any]) -> None:
        await gate.wait()

    source = WebhookSource(port=0, capacity=3)
    config = PipeConfig(name="hook", source=source, target=FunctionTargetConfig(function=slow), batch_size=1)
    async with Pipe(config) as pipe, httpx.AsyncClient(timeout=5) as client:
        assert source.url is not None
        url = source.url
        statuses = []
        for i in range(10):
            response = await client.post(url, json={"n": i})
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.headers["retry-after"] == "1"
                break
        # One record at the target, one read ahead (once the poller got to it), three waiting:
        # the fifth or sixth is refused.
        accepted = statuses.count(202)
        assert statuses[-1] == 429 and accepted in (4, 5) and statuses[:accepted] == [202] * accepted
        gate.set()
        await settled(pipe, accepted)
        await pipe.stop()
        # The server stops with the pipe: nothing listens any more.
        with pytest.raises(httpx.ConnectError):
            await client.post(url, json={"late": True})
    mounted = WebhookSource()
    transport = httpx.ASGITransport(app=mounted.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        refused = await client.post("/", json={"n": 1})
    assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    assert json.loads(refused.text)["message"] == "The pipe is not running"


async def test_many_posts_from_another_server_thread_all_arrive(
    asgi_server: Callable[[Any], str],
) -> None:
    source = WebhookSource()
    url = asgi_server(source.app)
    target = RecordingTarget()
    async with Pipe(PipeConfig(name="hook", source=source, target=target)):
        async with httpx.AsyncClient(timeout=5) as client:
            for i in range(20):
                assert (await client.post(url, json={"n": i})).status_code == 202
        await eventually(lambda: len(target.payloads) == 20)
    assert sorted(sqs_body(p)["n"] for p in target.payloads) == list(range(20))


async def test_mounted_under_a_prefix() -> None:
    source = WebhookSource(path="/hooks/orders")
    transport = httpx.ASGITransport(app=source.app, root_path="/hooks")
    async with (
        anyio.create_task_group() as tg,
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        await source.open(tg)
        full = await client.post("/hooks/orders", json={"n": 1})
        other = await client.post("/hooks/other", json={"n": 1})
        await source.close()
    assert full.status_code == 202 and other.status_code == 404
    # Older frameworks strip the mount's prefix from the path and keep it in root_path.
    stripped = {"type": "http", "method": "POST", "path": "/", "root_path": "/hooks/orders", "headers": []}
    assert source._path_matches(stripped)
    assert not source._path_matches({**stripped, "root_path": "/hooks/other"})
    assert [r.record["body"] for r in await source.receive(10, 0)] == ['{"n":1}']
