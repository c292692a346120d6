from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus.errors import ConfigError
from eventbus.targets.base import DeliveryContext
from eventbus.targets.queue import MemoryQueue, QueueTarget, SqliteQueue, memory_queue
from eventbus.targets.registry import build_target

pytestmark = pytest.mark.anyio

DLQ = DeliveryContext(kind="dead-letter", attributes={"ERROR_CODE": "TIMEOUT", "RULE_ARN": "arn:r"})


async def test_memory_queue_send_receive_delete() -> None:
    queue = MemoryQueue(10, visibility_timeout=0.1)
    target = QueueTarget(queue)
    ids = await target.deliver(['{"a":1}', '{"b":2}'], DLQ)
    got = await queue.receive(max_messages=5)
    assert [m.body for m in got] == ['{"a":1}', '{"b":2}']
    assert [m.message_id for m in got] == ids
    assert got[0].attributes == {"ERROR_CODE": "TIMEOUT", "RULE_ARN": "arn:r"}
    assert got[0].receive_count == 1 and got[0].sent_timestamp <= time.time()
    assert await queue.delete(got[0].receipt_handle)
    assert not await queue.delete(got[0].receipt_handle)
    # The other one was not deleted: it comes back after the visibility timeout.
    again = await queue.receive(max_messages=5, wait_seconds=2)
    assert [(m.body, m.receive_count) for m in again] == [('{"b":2}', 2)]
    assert not await queue.delete(got[1].receipt_handle)  # stale receipt
    assert await queue.delete(again[0].receipt_handle)


async def test_memory_queue_full_makes_deliver_wait() -> None:
    queue = MemoryQueue(2)
    target = QueueTarget(queue)
    await target.deliver(["1", "2"], DLQ)
    with anyio.move_on_after(0.1) as scope:
        await target.deliver(["3"], DLQ)
    assert scope.cancelled_caught
    done = anyio.Event()

    async def put_four() -> None:
        await target.deliver(["4"], DLQ)
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(put_four)
        await anyio.wait_all_tasks_blocked()
        assert not done.is_set()  # waiting for room, not dropped
        first = await queue.receive(1)
        with anyio.fail_after(30):
            await done.wait()
    rest = await queue.receive(10)
    assert [m.body for m in first + rest] == ["1", "2", "4"]


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_memory_queue_wait_and_change_visibility(anyio_backend: str) -> None:
    queue = MemoryQueue(visibility_timeout=30)
    assert await queue.receive(wait_seconds=0.05) == []

    async def later() -> None:
        await anyio.wait_all_tasks_blocked()  # the receive below is waiting by now
        await queue.send("late")

    async with anyio.create_task_group() as tg:
        tg.start_soon(later)
        got = await queue.receive(wait_seconds=2)
    assert [m.body for m in got] == ["late"]
    assert await queue.change_visibility(got[0].receipt_handle, 0)
    again = await queue.receive(wait_seconds=1)
    assert again[0].receive_count == 2


def test_named_memory_queues_are_shared() -> None:
    target = build_target("queue", {"type": "memory", "name": "orders-test"})
    assert isinstance(target, QueueTarget) and target.queue is memory_queue("orders-test")
    with pytest.raises(ConfigError, match="needs a name"):
        build_target("queue", {"type": "memory"})
    with pytest.raises(ConfigError, match="needs a path"):
        build_target("queue", {"type": "sqlite"})


async def test_sqlite_queue_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    target = build_target("queue", {"type": "sqlite", "path": str(path), "visibility_timeout": 0.2})
    await target.deliver(['{"n":1}', '{"n":2}', '{"n":3}'], DLQ)
    await target.aclose()
    assert (tmp_path / "q.db").exists()

    queue = SqliteQueue(path, visibility_timeout=0.2)
    got = await queue.receive(max_messages=2)
    assert [m.body for m in got] == ['{"n":1}', '{"n":2}']
    assert got[0].attributes == dict(DLQ.attributes)
    for message in got:
        assert await queue.delete(message.receipt_handle)
    third = await queue.receive(max_messages=5)
    assert [m.body for m in third] == ['{"n":3}']
    assert await queue.change_visibility(third[0].receipt_handle, 0)
    back = await queue.receive(max_messages=5)
    assert back[0].receive_count == 2 and back[0].message_id == third[0].message_id
    assert not await queue.delete(third[0].receipt_handle)  # superseded receipt
    assert await queue.delete(back[0].receipt_handle)
    assert await queue.count() == 0
    mode = await queue._run(lambda conn: conn.execute("PRAGMA journal_mode").fetchone()[0])
    assert mode == "wal"
    await queue.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_sqlite_receive_waits_for_a_message(tmp_path: Path, anyio_backend: str) -> None:
    queue = SqliteQueue(tmp_path / "q.db")
    other = SqliteQueue(tmp_path / "q.db")  # a second connection, as another process would have

    async def later() -> None:
        await anyio.sleep(0.1)
        await other.send("hello", {"k": "v"})

    async with anyio.create_task_group() as tg:
        tg.start_soon(later)
        got = await queue.receive(wait_seconds=3)
    assert [(m.body, dict(m.attributes)) for m in got] == [("hello", {"k": "v"})]
    await queue.aclose()
    await other.aclose()
    with pytest.raises(ConfigError, match="closed"):
        await queue.receive()


async def test_sqlite_message_returns_after_the_receiver_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    # The child's lease lasts long enough that no stall of this machine ends it before the
    # check below that the message is leased; after the kill, it returns when the lease ends.
    lease = 3.0
    queue = SqliteQueue(path, visibility_timeout=lease)
    await queue.send('{"important":true}')
    worker = Path(__file__).with_name("queue_worker.py")
    child = subprocess.Popen(
        [sys.executable, str(worker), str(path), str(lease)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        line = await anyio.to_thread.run_sync(child.stdout.readline)
        assert json.loads(line) == ['{"important":true}'], child.stderr.read() if child.stderr else ""
        assert await queue.receive() == []  # leased by the child
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=5)
        for stream in (child.stdout, child.stderr):
            if stream:
                stream.close()
    assert child.returncode == -signal.SIGKILL
    back = await queue.receive(wait_seconds=30)
    assert [(m.body, m.receive_count) for m in back] == [('{"important":true}', 2)]
    await queue.aclose()


async def test_two_consumers_never_share_a_lease(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    producer = SqliteQueue(path)
    for start in range(0, 40, 10):
        await producer.send_batch([(str(i), None) for i in range(start, start + 10)])
    consumers = [SqliteQueue(path, visibility_timeout=30) for _ in range(3)]
    seen: list[str] = []

    async def drain(queue: SqliteQueue) -> None:
        for _ in range(100):
            got = await queue.receive(max_messages=3)
            if not got:
                return
            seen.extend(m.body for m in got)

    async with anyio.create_task_group() as tg:
        for consumer in consumers:
            tg.start_soon(drain, consumer)
    assert sorted(seen, key=int) == [str(i) for i in range(40)]
    for q in [producer, *consumers]:
        await q.aclose()


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.text(max_size=30), min_size=1, max_size=8),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)
def test_sqlite_queue_keeps_bodies_and_attributes_in_order(
    bodies: list[str], attributes: dict[str, str]
) -> None:
    import tempfile

    async def main() -> list[tuple[str, dict[str, str]]]:
        with tempfile.TemporaryDirectory() as folder:
            queue = SqliteQueue(Path(folder) / "q.db")
            for body in bodies:
                await queue.send(body, attributes)
            got = await queue.receive(max_messages=len(bodies))
            await queue.aclose()
            return [(m.body, dict(m.attributes)) for m in got]

    assert anyio.run(main) == [(b, attributes) for b in bodies]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_batch_delete_and_visibility(kind: str, tmp_path: Path) -> None:
    queue: MemoryQueue | SqliteQueue = (
        MemoryQueue(10, visibility_timeout=30)
        if kind == "memory"
        else SqliteQueue(tmp_path / "q.db", visibility_timeout=30)
    )
    try:
        for body in ("1", "2", "3"):
            await queue.send(body)
        got = await queue.receive(max_messages=3)
        assert len(got) == 3
        # Two are acknowledged in one call; the third is made visible again at once.
        assert await queue.delete_batch([m.receipt_handle for m in got[:2]]) == 2
        assert await queue.delete_batch([got[0].receipt_handle]) == 0
        assert await queue.change_visibility_batch([got[2].receipt_handle], 0) == 1
        again = await queue.receive(max_messages=3, wait_seconds=1)
        assert [(m.body, m.receive_count) for m in again] == [("3", 2)]
    finally:
        await queue.aclose()
