"""A three-node JetStream cluster on loopback, streams with three replicas: a node killed mid-run
and restarted loses nothing accepted, and PutEvents keeps answering (failed entries while a
leader is elected, never a false success)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path

import anyio
import nats
import pytest

from eventbus.bus import EventBus
from eventbus.bus.logs.jetstream import JetStreamEventLog
from tests.conftest import serve_asgi

from .processes import Node, Worker, cluster
from .receiver import Receiver
from .test_workers import entries, specs, until

pytestmark = pytest.mark.anyio


async def _cluster_ready(urls: list[str], timeout: float = 60) -> None:
    """Until the cluster has a meta leader and can make a stream with three replicas."""
    with anyio.fail_after(timeout):
        while True:
            with contextlib.suppress(Exception):
                nc = await nats.connect(urls, connect_timeout=2, max_reconnect_attempts=1)
                try:
                    js = nc.jetstream(timeout=5)
                    await js.add_stream(name="READY", subjects=["ready.check"], num_replicas=3)
                    await js.delete_stream("READY")
                    return
                finally:
                    await nc.close()
            await anyio.sleep(0.5)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[Node]]:
    made = cluster(tmp_path)
    try:
        for node in made:
            node.start()
        yield made
    finally:
        for node in made:
            node.kill()


@pytest.mark.timeout(600)
async def test_a_node_killed_and_restarted_loses_nothing_accepted(nodes: list[Node], prefix: str) -> None:
    urls = [node.url for node in nodes]
    await _cluster_ready(urls)
    total = 3000
    app = Receiver()
    accepted: list[str] = []
    failed = 0
    with serve_asgi(app) as url:
        workers = [Worker(spec) for spec in specs(urls, prefix, url, 2, replicas=3, ack_wait=5)]
        try:
            for worker in workers:
                await anyio.to_thread.run_sync(worker.start)
            log = JetStreamEventLog(urls, stream=prefix, replicas=3, publish_timeout=2, publish_retry=4)
            async with EventBus("orders", log=log, front_only=True) as front:
                victim = random.Random(3).choice(nodes)
                for start in range(0, total, 10):
                    if start == total // 3:
                        victim.kill()
                    if start == 2 * total // 3:
                        await anyio.to_thread.run_sync(victim.start)
                    answer = await front.put_events(entries(start))
                    for entry in answer["Entries"]:
                        if "EventId" in entry:
                            accepted.append(entry["EventId"])
                        else:
                            failed += 1
                    await anyio.sleep(0.01)
            await until(lambda: set(app.ids()) >= set(accepted), "every accepted event to arrive", 240)
            for worker in workers:
                worker.stop()
        finally:
            for worker in workers:
                worker.kill()
    print(f"\nnode {victim.name} killed and restarted: {len(accepted)} accepted, {failed} answered failed")
    assert len(accepted) + failed == total
    assert len(accepted) >= total // 2, "PutEvents stopped taking events while a node was down"
    assert set(app.ids()) >= set(accepted), "an accepted event was lost"
