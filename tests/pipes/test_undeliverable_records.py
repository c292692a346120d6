"""A pipe's records are all deliverable: what no target could write never reaches a target.

NaN, ``1e999`` and lone surrogates come into pipes by other doors than PutEvents: a JSON body on
the webhook, a file name that is not UTF-8, an enrichment's answer, a message put on a queue by
Python code. Each is refused where it arrives, kept as text, or failed once with a reason.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import httpx
import pytest

from eventbus.pipes import Pipe, PipeConfig, QueueSource
from eventbus.targets.files import FileTarget
from eventbus.targets.function import FunctionTargetConfig
from eventbus.targets.queue import MemoryQueue
from eventbus.targets.recording import RecordingTarget
from eventbus.testing import capture_logs
from tests.pipes.conftest import settled

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("body", [b'{"a": NaN}', b'{"a": 1e999}', b'{"a": "\\ud800"}'])
async def test_the_webhook_refuses_json_bodies_no_target_can_deliver(body: bytes, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    config = PipeConfig(name="hook", source={"webhook": {"port": 0}}, target=FileTarget(out))
    async with Pipe(config) as pipe, httpx.AsyncClient(timeout=5) as client:
        url = pipe.source.url  # type: ignore[attr-defined]
        refused = await client.post(url, content=body, headers={"content-type": "application/json"})
        # Sent as text, the same bytes are a text body: the filter and templates see the text.
        as_text = await client.post(url, content=body, headers={"content-type": "text/plain"})
        await settled(pipe, 1)
    assert refused.status_code == 400 and "Body is not valid JSON" in refused.json()["message"]
    assert as_text.status_code == 202
    (line,) = out.read_text().splitlines()
    assert json.loads(line)["body"] == body.decode()


async def test_a_file_name_that_is_not_utf8_is_announced_url_encoded(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    name = os.fsencode(inbox) + b"/caf\xe9 \xff.txt"
    out = tmp_path / "out.jsonl"
    config = PipeConfig(
        name="inbox",
        source={"directory": {"path": str(inbox), "stable_seconds": 0, "existing": True}},
        target=FileTarget(out),
    )
    try:
        with open(name, "wb") as handle:
            handle.write(b"data")
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    async with Pipe(config) as pipe:
        metrics = await settled(pipe, 1)
    assert metrics["delivered"] == 1
    (line,) = out.read_text().splitlines()
    key = json.loads(line)["detail"]["object"]["key"]
    assert key == "caf%E9%20%FF.txt"
    assert os.path.exists(os.fsencode(inbox) + b"/" + unquote_to_bytes(key))


@pytest.mark.parametrize("answer", [{"a": math.nan}, {"a": math.inf}, {"a": "\ud800"}], ids=["nan", "inf", "surrogate"])
async def test_an_enrichment_answer_no_target_can_take_fails_once_with_the_reason(answer: Any) -> None:
    queue = MemoryQueue()
    await queue.send('{"n": 1}')
    target, dead = RecordingTarget(), RecordingTarget()
    config = PipeConfig(
        name="enriched",
        source=QueueSource(queue),
        enrichment=FunctionTargetConfig(function=lambda batch: [answer]),
        target=target,
        dead_letter=dead,
    )
    async with Pipe(config) as pipe:
        metrics = await settled(pipe, 1)
    assert metrics["dead_lettered"] == 1 and metrics["retried"] == 0 and target.payloads == []
    attributes = dead.received[0].context.attributes
    assert attributes["ERROR_CODE"] == "TRANSFORMATION_ERROR"
    assert "not JSON a target can deliver" in attributes["ERROR_MESSAGE"]


async def test_a_queued_message_no_target_can_write_is_dead_lettered_escaped(tmp_path: Path) -> None:
    queue = MemoryQueue()
    await queue.send("caf\udce9")  # put there by Python code, from bytes that were not UTF-8
    await queue.send("fine")
    out, dead_out = tmp_path / "out.jsonl", tmp_path / "dead.jsonl"
    config = PipeConfig(
        name="queued", source=QueueSource(queue), target=FileTarget(out), dead_letter=FileTarget(dead_out)
    )
    with capture_logs() as logs:
        async with Pipe(config) as pipe:
            metrics = await settled(pipe, 2)
    assert metrics["delivered"] == 1 and metrics["dead_lettered"] == 1
    assert [json.loads(line)["body"] for line in out.read_text().splitlines()] == ["fine"]
    (letter,) = dead_out.read_text().splitlines()
    assert json.loads(letter)["body"] == "caf\udce9"  # escaped as \udce9: written, and exact
    (logged,) = [e for e in logs if e["event"] == "dead-lettered"]
    assert "lone surrogate" in logged["error"]
