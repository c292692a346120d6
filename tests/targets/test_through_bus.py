"""Each target's failure classes as the bus sees them: retried until it passes, or dead-lettered."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest

from eventbus.bus import Backoff, EventBus
from eventbus.errors import NonRetryableError, ThrottledError
from eventbus.targets.base import Target
from eventbus.targets.bus import BusTarget
from eventbus.targets.command import CommandTarget
from eventbus.targets.files import FileTarget
from eventbus.targets.function import FunctionTarget
from eventbus.targets.http import HttpTarget
from eventbus.targets.nats import NatsTarget
from eventbus.targets.queue import MemoryQueue, QueueTarget, SqliteQueue
from eventbus.targets.recording import RecordingTarget

from .http_app import ApiApp

pytestmark = pytest.mark.anyio

ENTRY = {"Source": "shop", "DetailType": "Order Placed", "Detail": '{"order":7}'}


async def run_one(
    target: Target, *, retries: int = 3, input: str | None = None, bus_name: str | None = None
) -> RecordingTarget:
    """Put one event through a bus whose only rule delivers to ``target``; return the DLQ."""
    dlq = RecordingTarget("dlq")
    bus = EventBus(bus_name or f"b{uuid.uuid4().hex[:8]}", backoff=Backoff(base=0.01, cap=0.02))
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets(
        "r",
        [{
            "Id": "t", "Target": target, "Input": input, "DeadLetterTarget": dlq,
            "RetryPolicy": {"MaximumRetryAttempts": retries},
        }],
    )
    async with bus:
        answer = await bus.put_events([ENTRY])
        assert answer["FailedEntryCount"] == 0
        assert await bus.wait_idle(timeout=15)
    return dlq


def assert_dead_letter(dlq: RecordingTarget, code: str, *, exhausted: bool) -> None:
    assert len(dlq.received) == 1, dlq.payloads
    attributes = dict(dlq.received[0].context.attributes)
    assert attributes["ERROR_CODE"] == code
    assert ("EXHAUSTED_RETRY_CONDITION" in attributes) is exhausted
    assert dlq.payloads[0]["detail"] == {"order": 7}


async def test_function_retryable_then_non_retryable() -> None:
    calls: list[Any] = []

    def flaky(event: dict[str, Any]) -> str:
        calls.append(event)
        if len(calls) < 3:
            raise ThrottledError("slow down")
        return "ok"

    assert (await run_one(FunctionTarget(flaky))).received == []
    assert len(calls) == 3 and calls[0]["detail"] == {"order": 7}

    def refuse(event: dict[str, Any]) -> None:
        raise NonRetryableError("never", error_code="NO_RESOURCE")

    assert_dead_letter(await run_one(FunctionTarget(refuse)), "NO_RESOURCE", exhausted=False)

    def broken(event: dict[str, Any]) -> None:
        raise KeyError("x")  # a plain exception is retryable: retries run out, then the DLQ

    assert_dead_letter(await run_one(FunctionTarget(broken), retries=1), "SDK_CLIENT_ERROR", exhausted=True)


async def test_command_failures(tmp_path: Path) -> None:
    marker = tmp_path / "ran-once"
    script = (
        "import sys, pathlib; p = pathlib.Path(sys.argv[1]); "
        "first = not p.exists(); p.touch(); sys.exit(1 if first else 0)"
    )
    assert (await run_one(CommandTarget([sys.executable, "-c", script, str(marker)]))).received == []
    failing = CommandTarget([sys.executable, "-c", "import sys; sys.exit(2)"], non_retryable_exit_codes=[2])
    assert_dead_letter(await run_one(failing), "SDK_CLIENT_ERROR", exhausted=False)
    assert_dead_letter(await run_one(CommandTarget([str(tmp_path / "missing")])), "NO_RESOURCE", exhausted=False)


async def test_http_failures(asgi_server: Callable[[Any], str]) -> None:
    app = ApiApp()
    base = asgi_server(app)
    app.scripted = [(503, {"Retry-After": "0"}, ""), (429, {}, "")]
    assert (await run_one(HttpTarget.create(f"{base}/api"))).received == []
    assert len(app.requests) == 3 and app.requests[-1].json()["detail"] == {"order": 7}
    app.scripted = [(404, {}, "")]
    assert_dead_letter(await run_one(HttpTarget.create(f"{base}/api")), "NO_RESOURCE", exhausted=False)
    app.scripted = [(500, {}, "")] * 2
    assert_dead_letter(await run_one(HttpTarget.create(f"{base}/api"), retries=1), "SDK_CLIENT_ERROR", exhausted=True)


async def test_queue_targets(tmp_path: Path) -> None:
    memory = MemoryQueue(10)
    await run_one(QueueTarget(memory))
    assert json.loads((await memory.receive())[0].body)["detail"] == {"order": 7}
    sqlite = SqliteQueue(tmp_path / "q.db")
    await run_one(QueueTarget(sqlite))
    assert json.loads((await sqlite.receive())[0].body)["source"] == "shop"
    await sqlite.aclose()
    # A directory where the database file should be: SQLite cannot open it, retries run out.
    (tmp_path / "dir.db").mkdir()
    dlq = await run_one(QueueTarget(SqliteQueue(tmp_path / "dir.db")), retries=1)
    assert_dead_letter(dlq, "SDK_CLIENT_ERROR", exhausted=True)


async def test_bus_to_bus() -> None:
    inner = RecordingTarget("inner")
    downstream = EventBus(f"down{uuid.uuid4().hex[:6]}")
    downstream.put_rule("all", {"source": ["shop"]})
    downstream.put_targets("all", [{"Id": "rec", "Target": inner}])
    async with downstream:
        assert (await run_one(BusTarget(downstream.name))).received == []
        await inner.wait_for(lambda p: p["detail"] == {"order": 7}, timeout=5)
        # A transformed payload is not an event: it cannot be put on a bus.
        dlq = await run_one(BusTarget(downstream), input='{"not": "an event"}')
        assert_dead_letter(dlq, "SDK_CLIENT_ERROR", exhausted=False)
    assert_dead_letter(await run_one(BusTarget("no-such-bus")), "NO_RESOURCE", exhausted=False)


async def test_file_target(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    await run_one(FileTarget(path))
    assert json.loads(path.read_text())["detail"] == {"order": 7}
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    assert_dead_letter(await run_one(FileTarget(blocker / "x.jsonl"), retries=1), "SDK_CLIENT_ERROR", exhausted=True)


async def test_nats_target(nats_server: str) -> None:
    name = f"S{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(nats_server)
    js = nc.jetstream()
    await js.add_stream(name=name, subjects=[f"bus.{name}"])
    try:
        await run_one(NatsTarget.create(f"bus.{name}", servers=[nats_server]))
        message = await js.get_msg(name, 1)
        assert json.loads(message.data)["detail"] == {"order": 7}
        assert message.headers is not None and message.headers["Nats-Msg-Id"] == json.loads(message.data)["id"]
    finally:
        await js.delete_stream(name)
        await nc.close()
    dlq = await run_one(NatsTarget.create("no.stream.here", servers=[nats_server]))
    assert_dead_letter(dlq, "NO_RESOURCE", exhausted=False)


async def test_recording_target_retry() -> None:
    target = RecordingTarget("r")
    target.fail_next(ThrottledError("busy"), times=2)
    assert (await run_one(target)).received == []
    target.assert_received({"source": ["shop"]}, count=1)
