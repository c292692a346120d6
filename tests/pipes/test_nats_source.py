"""The NATS JetStream source against a real nats-server (the shared ``nats_server`` fixture)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import nats
import pytest

from eventbus.bus import Backoff
from eventbus.errors import ConfigError, RetryableError
from eventbus.pipes import NatsSourceConfig, Pipe, PipeConfig
from eventbus.targets.function import FunctionTargetConfig
from eventbus.targets.recording import RecordingTarget
from tests.pipes.conftest import eventually, settled

pytestmark = pytest.mark.anyio


@pytest.fixture
async def stream(nats_server: str) -> AsyncIterator[tuple[str, str]]:
    name = f"P{uuid.uuid4().hex[:8]}"
    subject = f"jobs.{name}"
    nc = await nats.connect(nats_server)
    js = nc.jetstream()
    await js.add_stream(name=name, subjects=[subject])
    try:
        yield name, subject
    finally:
        await js.delete_stream(name)
        await nc.close()


async def publish(server: str, subject: str, payloads: list[bytes]) -> None:
    nc = await nats.connect(server)
    js = nc.jetstream()
    for payload in payloads:
        await js.publish(subject, payload)
    await nc.close()


def source(server: str, stream: str, **options: Any) -> dict[str, Any]:
    return {"nats": {"servers": [server], "stream": stream, "consumer": "pipe", **options}}


async def test_stream_end_to_end_with_a_filter_on_json_and_text(
    nats_server: str, stream: tuple[str, str]
) -> None:
    name, subject = stream
    await publish(
        nats_server,
        subject,
        [b'{"level": "error", "n": 1}', b'{"level": "info"}', b"error: plain", b"\xff\xfe"],
    )
    target = RecordingTarget()
    config = PipeConfig(
        name="nats-pipe",
        source=source(nats_server, name),
        filter=[{"data": {"level": ["error"]}}, {"data": [{"prefix": "error:"}]}],
        target=target,
    )
    async with Pipe(config) as pipe:
        metrics = await settled(pipe, 4)
    assert [p["data"] for p in target.payloads] == ['{"level": "error", "n": 1}', "error: plain"]
    first = target.payloads[0]
    assert first["eventID"] == f"{name}:1" and first["subject"] == subject and first["deliveryCount"] == 1
    assert first["eventSourceARN"] == pipe.source_arn
    assert metrics["filtered_out"] == 2
    # Everything was acknowledged: the durable consumer has nothing pending.
    nc = await nats.connect(nats_server)
    info = await nc.jetstream().consumer_info(name, "pipe")
    await nc.close()
    assert info.num_pending == 0 and info.num_ack_pending == 0


async def test_failure_naks_and_the_server_redelivers(nats_server: str, stream: tuple[str, str]) -> None:
    name, subject = stream
    await publish(nats_server, subject, [b'{"n": 1}'])
    target = RecordingTarget()
    target.fail_next(RetryableError("not yet"), times=2)
    config = PipeConfig(
        name="nats-retry",
        source=source(nats_server, name),
        target=target,
        backoff=Backoff(base=0.05, cap=0.1),
    )
    async with Pipe(config) as pipe:
        metrics = await settled(pipe, 1)
    assert metrics["retried"] == 2
    assert target.payloads[0]["deliveryCount"] == 3


async def test_stopping_mid_stream_loses_nothing(nats_server: str, stream: tuple[str, str]) -> None:
    name, subject = stream
    await publish(nats_server, subject, [json.dumps({"n": i}).encode() for i in range(40)])
    seen: list[int] = []
    stuck = True

    async def slow(batch: list[Any]) -> None:
        if stuck and len(seen) >= 5:
            await anyio.sleep_forever()  # the first pipe is stopped with these batches under way
        seen.extend(json.loads(r["data"])["n"] for r in batch)

    def make() -> Pipe:
        return Pipe(
            PipeConfig(
                name="nats-stop",
                source=source(nats_server, name, ack_wait=30),
                target=FunctionTargetConfig(function=slow),
                batch_size=5,
                stop_timeout=0.02,
            )
        )

    async with make() as first:
        await eventually(
            lambda: len(seen) >= 5 and first.in_flight > 0, what="some deliveries, more under way"
        )
    assert 5 <= len(seen) < 40
    stuck = False
    # ack_wait is 30 s: only the naks sent on stop can bring the unfinished records back this soon.
    async with make() as second:
        await eventually(lambda: set(seen) == set(range(40)), what="every record")
        await eventually(lambda: second.in_flight == 0)


async def test_missing_stream_and_creating_it(nats_server: str) -> None:
    name = f"Q{uuid.uuid4().hex[:8]}"
    pipe = Pipe(PipeConfig(name="nats-missing", source=source(nats_server, name), target=RecordingTarget()))
    with pytest.raises(ConfigError, match="does not exist"):
        async with pipe:
            pass
    assert pipe.state == "START_FAILED"
    target = RecordingTarget()
    created = PipeConfig(
        name="nats-create", source=source(nats_server, name, create_stream=True), target=target
    )
    async with Pipe(created) as pipe2:
        await publish(nats_server, f"{name}.x", [b"hi"])
        await settled(pipe2, 1)
    assert target.payloads[0]["data"] == "hi"
    nc = await nats.connect(nats_server)
    await nc.jetstream().delete_stream(name)
    await nc.close()


def test_config_rejects_bad_names() -> None:
    with pytest.raises(ValueError, match="JetStream names"):
        NatsSourceConfig(stream="a.b")


async def test_wait_idle_counts_what_the_consumer_has_not_had_acknowledged(
    nats_server: str, stream: tuple[str, str]
) -> None:
    name, subject = stream
    await publish(nats_server, subject, [json.dumps({"n": i}).encode() for i in range(6)])
    target = RecordingTarget()
    target.fail_next(RetryableError("not yet"), times=2)
    config = PipeConfig(
        name="nats-idle",
        source=source(nats_server, name),
        target=target,
        batch_size=2,
        backoff=Backoff(base=0.05, cap=0.1),
    )
    async with Pipe(config) as pipe:
        assert await pipe.wait_idle(timeout=20)
        assert sorted(p["eventID"] for p in target.payloads) == [f"{name}:{i}" for i in range(1, 7)]
        assert await pipe.source.backlog() == 0  # type: ignore[attr-defined]
