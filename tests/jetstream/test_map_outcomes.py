"""The reading worker's side of a spread map (``JetStreamDispatcher``) on a real nats-server:
rows go out on the rows stream, and each row's outcome is handed to the map once however many
times it comes back (a row run twice after a worker died, an outcome of an earlier run)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from eventbus.bus.clock import SystemClock
from eventbus.bus.logs.jetstream.connection import JetStreamConnection
from eventbus.bus.logs.jetstream.layout import prepare_consumer, prepare_stream
from eventbus.bus.logs.jetstream.publish import Publisher
from eventbus.bus.logs.jetstream.pull import Puller
from eventbus.bus.logs.jetstream.settings import JetStreamSettings
from eventbus.errors import NonRetryableError
from eventbus.maps.feed import RowFeed
from eventbus.maps.jetstream.dispatcher import JetStreamDispatcher
from eventbus.maps.jetstream.wire import (
    MapNames,
    RemoteNonRetryableError,
    decode_row,
    failure_body,
    success_body,
)
from eventbus.maps.rows import Row

pytestmark = pytest.mark.anyio

ROWS = 200


async def test_each_row_is_counted_once_whatever_comes_back(nats_server: str, prefix: str) -> None:
    settings = JetStreamSettings(servers=[nats_server], stream=prefix, ack_wait=5)
    connection = JetStreamConnection(settings)
    nc = await connection.acquire()
    names = MapNames(prefix, "outcomes")
    try:
        js = connection.js
        await prepare_stream(js, names.rows_stream, [names.rows_subject], settings, role="rows")
        await prepare_consumer(js, names.rows_stream, "rows", names.rows_subject, settings)
        await prepare_stream(js, names.results_stream, [names.results_subject], settings, role="results")
        await prepare_consumer(js, names.results_stream, "results", names.results_subject, settings)
        publisher = Publisher(nc, settings)
        await publisher.start()

        clock = SystemClock()
        feed = RowFeed(clock, high_water=10_000)
        rows = [Row(n, 0, n + 2, {"n": n}, None, clock.now(), 0) for n in range(ROWS)]
        feed.add(len(rows))
        feed.put(rows)
        feed.finish_reading()
        succeeded: list[int] = []
        failed: list[tuple[int, BaseException]] = []
        out_at_most = 0
        dispatcher = JetStreamDispatcher(nc, publisher, names, "run-2")

        def on_succeeded(row: Row, output: Any) -> None:
            assert output == {"n": row.value["n"]}
            succeeded.append(row.line)
            feed.ended()

        async def on_failed(row: Row, error: BaseException) -> None:
            failed.append((row.line, error))
            feed.ended()

        async def worker() -> None:
            """Answers every row three times, after an answer from an earlier run."""
            nonlocal out_at_most
            puller = Puller(nc, names.rows_stream, "rows")
            await puller.start()
            while True:
                for msg in await puller.pull(100, 1.0):
                    out_at_most = max(out_at_most, len(dispatcher.out))
                    run, row = decode_row(msg.data, clock.now())
                    if row.value["n"] % 10 == 0:
                        body = failure_body(run, row, "w1", NonRetryableError("refused"))
                    else:
                        body = success_body(run, row, "w1", {"n": row.value["n"]})
                    earlier = success_body("run-1", row, "w0", {"n": -1})
                    ids = [f"{run}:{row.seq}:{k}" for k in range(4)]
                    await publisher.publish_many(names.results_subject, [earlier, body, body, body], ids)
                    await msg.ack()

        async with anyio.create_task_group() as tg:
            tg.start_soon(worker)
            with anyio.fail_after(60):
                await dispatcher.run(feed, lambda row: None, on_succeeded, on_failed, 25)  # type: ignore[arg-type, return-value]
            tg.cancel_scope.cancel()
        await publisher.stop()
    finally:
        await connection.release()

    refused = [n + 2 for n in range(0, ROWS, 10)]
    assert sorted(succeeded) == sorted(n + 2 for n in range(ROWS) if n % 10)
    assert sorted(line for line, _ in failed) == refused
    error = failed[0][1]
    assert isinstance(error, RemoteNonRetryableError) and str(error) == "refused"
    assert dispatcher.duplicates > 0 and dispatcher.by_worker == {"w1": ROWS}
    assert out_at_most <= 25, "more rows were out than the map's concurrency"
