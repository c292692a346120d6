"""Worker processes sharing one bus on a real nats-server: the work spread, each event delivered
once when nothing fails, and at least once through kill -9 of random workers."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from eventbus.bus import EventBus
from eventbus.bus.logs.jetstream import JetStreamEventLog
from tests.conftest import serve_asgi

from .processes import Worker
from .receiver import Receiver

pytestmark = pytest.mark.anyio


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    app = Receiver()
    with serve_asgi(app) as url:
        yield app, url


def entries(start: int, n: int = 10) -> list[dict[str, Any]]:
    return [{"Source": "load", "DetailType": "t", "Detail": json.dumps({"n": i})} for i in range(start, start + n)]


async def publish(front: EventBus, total: int, accepted: list[str], pause: float = 0.0) -> None:
    """PutEvents of ten entries until ``total`` were sent; the ids of those accepted."""
    for start in range(0, total, 10):
        answer = await front.put_events(entries(start, min(10, total - start)))
        accepted += [e["EventId"] for e in answer["Entries"] if "EventId" in e]
        if pause:
            await anyio.sleep(pause)


async def until(condition: Any, what: str, timeout: float) -> None:
    with anyio.move_on_after(timeout):
        while not condition():
            await anyio.sleep(0.2)
        return
    raise AssertionError(f"waited {timeout:g} s for {what}")


def specs(server: str | list[str], prefix: str, url: str, n: int, **extra: Any) -> list[dict[str, Any]]:
    servers = [server] if isinstance(server, str) else server
    return [{"servers": servers, "prefix": prefix, "receiver": url, "name": f"w{i}", **extra} for i in range(n)]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("count", [2, 3])
async def test_workers_share_a_bus_and_deliver_each_event_once(
    nats_server: str, prefix: str, receiver: tuple[Receiver, str], count: int
) -> None:
    app, url = receiver
    workers = [Worker(spec) for spec in specs(nats_server, prefix, url, count)]
    try:
        for worker in workers:
            worker.start()
        async with EventBus("orders", log=JetStreamEventLog([nats_server], stream=prefix), front_only=True) as front:
            accepted: list[str] = []
            await publish(front, 3000, accepted)
        assert len(accepted) == 3000
        await until(lambda: len(app.ids()) == 3000, "every event to arrive", 120)
        for worker in workers:
            assert worker.stop() == 0
    finally:
        for worker in workers:
            worker.kill()
    ids = app.ids()
    assert set(ids) == set(accepted)
    assert max(ids.values()) == 1, "an event arrived twice though nothing failed"
    shares = app.by_worker()
    assert set(shares) == {w.name for w in workers}, f"not every worker delivered: {shares}"
    assert min(shares.values()) >= 3000 / count / 4, f"the work is not spread: {shares}"


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    ("total", "kills"),
    [
        (5_000, 5),
        # The full run (20,000 events, ten kills): pytest -m slow.
        pytest.param(20_000, 10, marks=pytest.mark.slow),
    ],
)
async def test_killing_random_workers_loses_nothing(
    nats_server: str, prefix: str, receiver: tuple[Receiver, str], total: int, kills: int
) -> None:
    concurrency = 16
    app, url = receiver
    workers = [Worker(spec) for spec in specs(nats_server, prefix, url, 3, ack_wait=3, concurrency=concurrency)]
    accepted: list[str] = []
    killed: list[str] = []
    pick = random.Random(15)
    try:
        for worker in workers:
            worker.start()
        async with EventBus(
            "orders", log=JetStreamEventLog([nats_server], stream=prefix), front_only=True
        ) as front, anyio.create_task_group() as tg:
            tg.start_soon(publish, front, total, accepted, 0.005)
            for k in range(1, kills + 1):
                # Spread over the run: the k-th kill once k/(kills + 1) of the events arrived.
                await until(lambda k=k: len(app.ids()) >= total * k // (kills + 1), f"progress {k}", 240)
                victim = pick.choice(workers)
                victim.kill()
                killed.append(victim.name)
                await anyio.to_thread.run_sync(victim.start)
        await until(lambda: set(app.ids()) >= set(accepted), "every accepted event to arrive", 240)
        for worker in workers:
            worker.stop()
    finally:
        for worker in workers:
            worker.kill()
    ids = app.ids()
    assert len(accepted) == total
    assert set(ids) >= set(accepted), "an accepted event was never delivered"
    duplicates = sum(n - 1 for n in ids.values())
    # Only deliveries in flight at a kill may arrive twice: a worker holds at most its
    # concurrency's worth (one event a call to this target).
    print(f"\n{kills} kills ({', '.join(killed)}): {len(ids)} events, {duplicates} delivered twice")
    assert duplicates <= kills * concurrency
