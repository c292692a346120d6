"""Pipes on JetStream: several workers run one pipe; one elected worker reads its file, every
worker processes its records; retries are redeliveries counted by the server."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from eventbus.bus.logs.jetstream import JetStreamConnection, JetStreamSettings
from eventbus.errors import RetryableError
from eventbus.pipes import Pipe, PipeConfig
from eventbus.pipes.sources.base import Source
from eventbus.pipes.sources.relay import RelayedSource
from eventbus.targets.base import DeliveryContext

pytestmark = pytest.mark.anyio

WAIT = 60.0


class Seen:
    """A pipe target that keeps each record's row and attempt, and fails the first attempt of
    the rows in ``flaky``."""

    max_batch_size = 100

    def __init__(self, flaky: set[int] | None = None) -> None:
        self.rows: list[tuple[int, int, str]] = []
        self.flaky = flaky or set()

    def deliver_as(self, worker: str) -> Any:
        outer = self

        class Target:
            max_batch_size = 100

            async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> None:
                rows = [json.loads(json.loads(p)["data"])["n"] for p in payloads]
                if outer.flaky & set(rows) and context.attempt == 1:
                    raise RetryableError("first attempt fails")
                outer.rows.extend((row, context.attempt, worker) for row in rows)

            async def aclose(self) -> None:
                return None

        return Target()


def pipe(path: Path, target: Any, server: str, prefix: str) -> Pipe:
    connection = JetStreamConnection(JetStreamSettings(servers=[server], stream=prefix, ack_wait=5))

    def share(source: Source) -> Source:
        return RelayedSource(source, connection=connection, pipe="rows")

    config = PipeConfig(
        name="rows",
        source={"file": {"path": str(path)}},
        target=target,
        batch_size=10,
        retry_policy={"MaximumRetryAttempts": 3},
    )
    return Pipe(config, share=share)


async def test_one_worker_reads_the_file_and_every_worker_processes_records(
    tmp_path: Path, nats_server: str, prefix: str
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(500)), encoding="utf-8")
    seen = Seen(flaky={7, 300})
    first = pipe(path, seen.deliver_as("a"), nats_server, prefix)
    second = pipe(path, seen.deliver_as("b"), nats_server, prefix)
    async with first, second:
        with anyio.fail_after(WAIT):
            while len({row for row, _, _ in seen.rows}) < 500:
                await anyio.sleep(0.1)
        readers = [p for p in (first, second) if isinstance(p.source, RelayedSource) and p.source.reading]
        assert len(readers) == 1, "exactly one worker reads the file"
        with anyio.fail_after(WAIT):
            assert await first.wait_idle(WAIT) and await second.wait_idle(WAIT)
    rows = sorted(row for row, _, _ in seen.rows)
    assert rows == list(range(500)), "each row processed once"
    # A failed record came back as the stream's second delivery of it.
    assert {(row, attempt) for row, attempt, _ in seen.rows if row in (7, 300)} == {(7, 2), (300, 2)}
    assert {worker for _, _, worker in seen.rows} == {"a", "b"}, "both workers processed records"


async def test_another_worker_reads_on_when_the_reader_stops(tmp_path: Path, nats_server: str, prefix: str) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(50)), encoding="utf-8")
    seen = Seen()
    first = pipe(path, seen.deliver_as("a"), nats_server, prefix)
    async with first:
        with anyio.fail_after(WAIT):
            while len(seen.rows) < 50:
                await anyio.sleep(0.1)
        assert isinstance(first.source, RelayedSource) and first.source.reading
        second = pipe(path, seen.deliver_as("b"), nats_server, prefix)
        async with second:
            await anyio.sleep(0)
            assert isinstance(second.source, RelayedSource) and not second.source.reading
            await first.stop()
            with anyio.fail_after(WAIT):
                while not second.source.reading:
                    await anyio.sleep(0.1)


async def test_a_config_s_pipe_on_the_jetstream_backend_is_read_once_for_every_worker(
    tmp_path: Path, nats_server: str, prefix: str
) -> None:
    from eventbus.config import Runtime, load_configs
    from eventbus.targets.queue import SqliteQueue
    from eventbus.targets.recording import recording_target

    source = SqliteQueue(tmp_path / "orders.db")
    for n in range(50):
        await source.send(json.dumps({"n": n}))
    await source.aclose()
    config = tmp_path / "pipes.yaml"
    config.write_text(
        f"runtime: {{backend: {{type: jetstream, servers: ['{nats_server}'], stream: {prefix}, ack_wait: 5}}}}\n"
        "pipes:\n"
        "  orders:\n"
        f"    source: {{queue: {{type: sqlite, path: '{tmp_path / 'orders.db'}'}}}}\n"
        f"    target: {{recording: {{name: piped-{prefix}}}}}\n",
        encoding="utf-8",
    )
    seen = recording_target(f"piped-{prefix}")
    # Two runtimes of one config, each on a connection of its own, as two workers would be.
    first, second = Runtime(load_configs([str(config)])), Runtime(load_configs([str(config)]))
    assert isinstance(first.pipes["orders"].source, RelayedSource)
    async with first, second:
        await seen.wait_for(lambda payload: True, 50, WAIT)
        readers = [r.pipes["orders"].source.reading for r in (first, second)]  # type: ignore[attr-defined]
        assert sorted(readers) == [False, True], "not exactly one worker reads the queue"
    rows = sorted(json.loads(p["body"])["n"] for p in seen.payloads)
    assert rows == list(range(50))
