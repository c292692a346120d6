"""``JetStreamDispatcher``: the reading worker's side of a spread map.

It is the map's ``RowDispatcher``: rows taken from the feed are published to the rows stream
(never more than ``concurrency`` out at once, across every worker), and the outcomes the workers
publish to the results stream are handed back to the map, which decides a failure's fate
(a retry comes back through the feed and is published again, one attempt later), writes the
results to the reduce and counts them for the summary, as for rows run here.

Delivery is at least once: a worker killed after it ran a row and before it acknowledged it
leaves the row to be run again by another, and an outcome can arrive twice. The rows out are
kept by their place in the map, with the attempt they are on: an outcome for a row not out any
more, or for an older attempt, is a duplicate and is dropped. So each row is counted once.
"""

from __future__ import annotations

from typing import Any

import anyio

from eventbus._logger import get_logger
from eventbus.bus.logs.jetstream.acks import Acks
from eventbus.bus.logs.jetstream.publish import Publisher
from eventbus.bus.logs.jetstream.pull import Puller
from eventbus.errors import BackendError
from eventbus.maps.dispatch import Failed, Invoke, Succeeded
from eventbus.maps.feed import RowFeed
from eventbus.maps.jetstream.wire import MapNames, Outcome, encode_row
from eventbus.maps.rows import Row

__all__ = ["JetStreamDispatcher"]

_log = get_logger("eventbus.maps")

#: Rows published in one go, at most.
PUBLISH_BATCH = 500
#: Outcomes taken from the results stream in one go, at most.
COLLECT_BATCH = 1000


class JetStreamDispatcher:
    """Runs the rows of run ``run`` of a map on every worker, through the streams of ``names``."""

    def __init__(self, nc: Any, publisher: Publisher, names: MapNames, run: str) -> None:
        self._nc = nc
        self._publisher = publisher
        self.names = names
        self.run_id = run
        #: Rows out (published, no outcome yet), by their place in the map.
        self.out: dict[int, Row] = {}
        #: Rows run, by the worker that ran them (what each worker's share was).
        self.by_worker: dict[str, int] = {}
        #: Outcomes dropped as duplicates (a row run twice, an outcome published twice).
        self.duplicates = 0
        self._room = anyio.Event()

    def __repr__(self) -> str:
        return f"JetStreamDispatcher({self.names.name!r}, run={self.run_id!r})"

    async def run(
        self, feed: RowFeed, invoke: Invoke, succeeded: Succeeded, failed: Failed, concurrency: int
    ) -> None:
        puller = Puller(self._nc, self.names.results_stream, "results")
        await puller.start()
        acks = Acks(self._nc)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._collect, puller, acks, succeeded, failed)
                await self._publish(feed, failed, concurrency)
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await puller.close()
                await acks.settle()

    async def _publish(self, feed: RowFeed, failed: Failed, concurrency: int) -> None:
        out = self.out
        while True:
            while len(out) >= concurrency:
                self._room = anyio.Event()
                await self._room.wait()
            first = feed.take()
            if first is None:
                first = await feed.next()
                if first is None:
                    return  # every row ended
            rows = [first]
            room = min(PUBLISH_BATCH, concurrency - len(out))
            while len(rows) < room:
                row = feed.take()
                if row is None:
                    break
                rows.append(row)
            for row in rows:
                out[row.seq] = row
            bodies = [encode_row(self.run_id, row) for row in rows]
            ids = [f"{self.run_id}:{row.seq}:{row.attempt}" for row in rows]
            results = await self._publisher.publish_many(self.names.rows_subject, bodies, ids)
            for row, result in zip(rows, results, strict=True):
                if not isinstance(result, int) and out.get(row.seq) is row:
                    del out[row.seq]
                    await failed(row, BackendError(f"the row could not be published to the workers: {result}"))

    async def _collect(self, puller: Puller, acks: Acks, succeeded: Succeeded, failed: Failed) -> None:
        out = self.out
        run = self.run_id
        while True:
            msgs = await puller.pull(COLLECT_BATCH, 1.0)
            for msg in msgs:
                try:
                    outcome = Outcome.decode(msg.data)
                except (ValueError, KeyError, TypeError) as exc:
                    _log.error("unreadable message on a map's results stream; dropped", map=self.names.name, error=str(exc))
                    continue
                if outcome.run != run:
                    continue  # an earlier run's
                row = out.get(outcome.seq)
                if row is None or row.attempt != outcome.attempt:
                    self.duplicates += 1
                    continue
                del out[outcome.seq]
                self.by_worker[outcome.worker] = self.by_worker.get(outcome.worker, 0) + 1
                if outcome.error is None:
                    try:
                        succeeded(row, outcome.output)
                    except Exception as exc:
                        await failed(row, exc)
                else:
                    await failed(row, outcome.error)
            if msgs:
                await acks.ack(msgs)
                self._room.set()
