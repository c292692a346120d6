"""The queue source on a real SQLite file: end to end, stops and crashes lose nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from eventbus.bus import Backoff
from eventbus.pipes import Pipe, PipeConfig
from eventbus.targets.function import FunctionTargetConfig
from eventbus.targets.queue import SqliteQueue
from tests.pipes.conftest import eventually, settled

pytestmark = pytest.mark.anyio

HERE = Path(__file__).resolve().parent


async def seed(path: Path, count: int) -> None:
    queue = SqliteQueue(path)
    await queue.send_batch([(json.dumps({"n": i, "even": i % 2 == 0}), None) for i in range(count)])
    await queue.aclose()


async def remaining(path: Path) -> int:
    queue = SqliteQueue(path)
    try:
        return await queue.count()
    finally:
        await queue.aclose()


async def test_sqlite_queue_end_to_end_from_a_config_mapping(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    await seed(db, 30)
    seen: list[int] = []

    def handle(batch: list[Any]) -> None:
        seen.extend(json.loads(r["body"])["n"] for r in batch)

    pipe = Pipe(
        {
            "name": "evens",
            "source": {"queue": {"type": "sqlite", "path": str(db)}},
            "filter": [{"body": {"even": [True]}}],
            "target": {"function": {"function": handle}},
            "batch_size": 4,
        }
    )
    async with pipe:
        metrics = await settled(pipe, 30)
    assert sorted(seen) == list(range(0, 30, 2))
    assert metrics["filtered_out"] == 15 and metrics["delivered"] == 15
    assert await remaining(db) == 0


async def test_stopping_mid_stream_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    await seed(db, 60)
    seen: list[int] = []
    stuck = True

    async def slow(batch: list[Any]) -> None:
        if stuck and len(seen) >= 10:
            await anyio.sleep_forever()  # the first pipe is stopped with these batches under way
        seen.extend(json.loads(r["body"])["n"] for r in batch)

    def make() -> Pipe:
        return Pipe(
            PipeConfig(
                name="slow",
                source={"queue": {"type": "sqlite", "path": str(db)}},
                target=FunctionTargetConfig(function=slow),
                batch_size=5,
                max_concurrency=2,
                stop_timeout=0.02,  # batches are cut off mid-delivery
            )
        )

    async with make() as first:
        await eventually(lambda: len(seen) >= 10 and first.in_flight > 0, what="some deliveries, more under way")
    assert first.in_flight == 0
    assert 10 <= len(seen) < 60
    stuck = False
    async with make() as second:
        await eventually(lambda: set(seen) == set(range(60)), what="every record")
        await eventually(lambda: second.in_flight == 0)
    assert await remaining(db) == 0


async def test_a_killed_process_leaves_its_records_to_come_back(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    out = tmp_path / "seen.txt"
    await seed(db, 20)
    child = subprocess.Popen(
        [sys.executable, str(HERE / "pipe_worker.py"), str(db), str(out)],
        cwd=HERE.parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await eventually(
            lambda: out.exists() and len(out.read_text().split()) >= 10,
            timeout=20,
            what="the child's deliveries",
        )
    finally:
        child.kill()
        child.wait(timeout=10)
        assert child.stderr is not None
        child.stderr.close()
    in_child = [int(n) for n in out.read_text().split()]
    attempts: dict[int, str] = {}

    def handle(batch: list[Any]) -> None:
        for r in batch:
            attempts[json.loads(r["body"])["n"]] = r["attributes"]["ApproximateReceiveCount"]

    config = PipeConfig(
        name="after-crash",
        source={"queue": {"type": "sqlite", "path": str(db)}},
        target=FunctionTargetConfig(function=handle),
        backoff=Backoff(base=0.01, cap=0.05),
    )
    async with Pipe(config):
        # The stuck batch reappears once its 1 s visibility timeout runs out.
        await eventually(
            lambda: set(attempts) | set(in_child[:5]) == set(range(20)), what="all records"
        )
    stuck = set(in_child[5:10])
    assert all(attempts[n] == "2" for n in stuck)
    assert await remaining(db) == 0


async def test_a_queue_with_batch_operations_gets_one_call_a_batch() -> None:
    from eventbus.pipes import QueueSource
    from eventbus.targets.queue import MemoryQueue
    from eventbus.targets.recording import RecordingTarget

    class BatchingQueue(MemoryQueue):
        def __init__(self) -> None:
            super().__init__()
            self.batches: list[int] = []

        async def delete_batch(self, receipts: list[str]) -> None:
            self.batches.append(len(receipts))
            for receipt in receipts:
                await self.delete(receipt)

    queue = BatchingQueue()
    for i in range(6):
        await queue.send(json.dumps({"n": i}))
    config = PipeConfig(
        name="batched",
        source=QueueSource(queue),
        filter=[{"body": {"n": [{"numeric": ["<", 4]}]}}],
        target=RecordingTarget(),
        batch_size=6,
        maximum_batching_window_in_seconds=1,
    )
    async with Pipe(config) as pipe:
        await settled(pipe, 6)
    assert queue.batches == [6]


async def test_dead_letters_land_in_a_sqlite_queue_with_their_attributes(tmp_path: Path) -> None:
    from eventbus.errors import NonRetryableError

    db = tmp_path / "jobs.db"
    dlq = tmp_path / "dlq.db"
    await seed(db, 2)

    def reject(batch: list[Any]) -> None:
        raise NonRetryableError("malformed job", error_code="BAD_JOB")

    config = PipeConfig(
        name="with-dlq",
        source={"queue": {"type": "sqlite", "path": str(db)}},
        target=FunctionTargetConfig(function=reject),
        dead_letter={"queue": {"type": "sqlite", "path": str(dlq)}},
    )
    async with Pipe(config) as pipe:
        await settled(pipe, 2)
    letters = SqliteQueue(dlq)
    messages = await letters.receive(10)
    await letters.aclose()
    assert sorted(json.loads(json.loads(m.body)["body"])["n"] for m in messages) == [0, 1]
    attributes = messages[0].attributes
    assert attributes["ERROR_CODE"] == "BAD_JOB" and attributes["PIPE_ARN"] == pipe.arn
    assert attributes["STAGE"] == "TARGET" and attributes["RETRY_ATTEMPTS"] == "0"
    assert await remaining(db) == 0


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_wait_idle_returns_once_the_queue_is_empty_and_nothing_is_in_flight(
    tmp_path: Path, kind: str
) -> None:
    from eventbus.targets.queue import memory_queue

    seen: list[int] = []
    attempts: dict[int, int] = {}

    def handle(batch: list[Any]) -> dict[str, Any]:
        # Every odd record fails once: idle must wait for the retries too.
        failures = []
        for record in batch:
            n = json.loads(record["body"])["n"]
            attempts[n] = attempts.get(n, 0) + 1
            if n % 2 and attempts[n] == 1:
                failures.append({"itemIdentifier": record["messageId"]})
            else:
                seen.append(n)
        return {"batchItemFailures": failures}

    if kind == "sqlite":
        db = tmp_path / "idle.db"
        await seed(db, 12)
        source: dict[str, Any] = {"queue": {"type": "sqlite", "path": str(db)}}
    else:
        name = f"idle-{tmp_path.name}"
        queue = memory_queue(name)
        for n in range(12):
            await queue.send(json.dumps({"n": n}))
        source = {"queue": {"type": "memory", "name": name}}
    pipe = Pipe(
        PipeConfig(
            name="idle",
            source=source,
            target={"function": {"function": handle}},
            batch_size=5,
            backoff=Backoff(base=0.01, cap=0.02),
        )
    )
    async with pipe:
        assert await pipe.wait_idle(timeout=20)
        assert sorted(seen) == list(range(12)) and pipe.in_flight == 0
        assert await pipe.source.backlog() == 0  # type: ignore[attr-defined]
    # wait_finished is for sources that end; a queue never does, and the error says what to use.
    with pytest.raises(TypeError, match=r"QueueSource never finishes.*pipe\.wait_idle\(timeout\)"):
        await pipe.wait_finished(timeout=1)


async def test_wait_idle_gives_up_after_its_timeout_while_records_wait() -> None:
    from eventbus.pipes import QueueSource
    from eventbus.targets.queue import MemoryQueue

    queue = MemoryQueue()
    await queue.send('{"n": 1}')
    pipe = Pipe(
        PipeConfig(
            name="stopped", source=QueueSource(queue), target={"recording": {"name": "never"}},
            desired_state="STOPPED",
        )
    )
    async with pipe:
        # The pipe is stopped: the message stays in the queue, so the pipe is never idle.
        assert await pipe.wait_idle(timeout=0.05) is False
        assert await queue.count() == 1
