"""Enrichment through an API destination (the targets' HTTP code) on a real local server."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from eventbus.pipes import Pipe, PipeConfig, QueueSource
from eventbus.targets.queue import MemoryQueue
from eventbus.targets.recording import RecordingTarget
from tests.pipes.conftest import settled

pytestmark = pytest.mark.anyio


class PriceApp:
    """Answers a batch of ``{"sku": ...}`` with prices; an empty batch of SKUs answers ``[]``."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        batch = json.loads(body)
        self.requests.append(batch)
        answer = [{"sku": item["sku"], "price": len(item["sku"]) * 10} for item in batch if item["sku"]]
        data = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})


async def test_http_enrichment_adds_data_and_its_empty_answer_skips(
    asgi_server: Callable[[Any], str],
) -> None:
    app = PriceApp()
    url = asgi_server(app)
    queue = MemoryQueue()
    for sku in ("ab", "abcd", ""):
        await queue.send(json.dumps({"sku": sku}))
    target = RecordingTarget()
    config = PipeConfig(
        name="prices",
        source=QueueSource(queue),
        enrichment={"http": {"endpoint": url + "/price"}},
        enrichment_input_template='{"sku": <$.body.sku>}',
        target=target,
        batch_size=1,
    )
    async with Pipe(config) as pipe:
        metrics = await settled(pipe, 3)
    assert app.requests == [[{"sku": "ab"}], [{"sku": "abcd"}], [{"sku": ""}]]
    assert target.payloads == [{"sku": "ab", "price": 20}, {"sku": "abcd", "price": 40}]
    assert metrics["enriched"] == 3 and metrics["skipped"] == 1 and metrics["delivered"] == 2
