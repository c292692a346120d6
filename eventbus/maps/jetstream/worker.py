"""``RowWorker``: every worker's side of a spread map: take rows, run them, send the outcomes.

Each worker of the deployment runs up to its share of the map's ``max_concurrency`` rows at once
(the reading worker never has more than ``max_concurrency`` out in all), each taken from the
rows stream's durable consumer and kept leased while it runs (``Held``). A row's outcome is
published to the results stream and only then is the row acknowledged: a worker killed between
the two leaves the row to another worker after ``ack_wait`` (at least once; the reading worker
drops the second outcome).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import anyio

from eventbus._logger import get_logger
from eventbus.bus.logs.jetstream.acks import Acks
from eventbus.bus.logs.jetstream.held import Held
from eventbus.bus.logs.jetstream.publish import Publisher
from eventbus.bus.logs.jetstream.pull import Puller
from eventbus.maps.dispatch import Invoke
from eventbus.maps.jetstream.wire import MapNames, decode_row, failure_body, success_body
from eventbus.maps.map import ResultNotJsonError

__all__ = ["RowWorker"]

_log = get_logger("eventbus.maps")


class RowWorker:
    """Runs rows of map ``names.name`` with ``invoke``, ``concurrency`` at once, as ``worker``."""

    def __init__(
        self,
        nc: Any,
        publisher: Publisher,
        names: MapNames,
        invoke: Invoke,
        *,
        worker: str,
        concurrency: int,
        ack_wait: float,
        now: Callable[[], datetime],
    ) -> None:
        self._nc = nc
        self._publisher = publisher
        self.names = names
        self._invoke = invoke
        self.worker = worker
        self.concurrency = concurrency
        self._held = Held(ack_wait)
        self._now = now
        #: Rows this worker ran (whatever their outcome).
        self.ran = 0

    async def run(self) -> None:
        """Take and run rows until cancelled; rows taken and not run are handed back."""
        puller = Puller(self._nc, self.names.rows_stream, "rows")
        await puller.start()
        acks = Acks(self._nc)
        self._held.start()
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(self.concurrency):
                    tg.start_soon(self._work, puller, acks)
        finally:
            with anyio.CancelScope(shield=True):
                await puller.close()
                await self._held.stop()
                for msg in self._held.take_all():
                    with contextlib.suppress(Exception):
                        await msg.nak()
                await acks.settle()

    async def _work(self, puller: Puller, acks: Acks) -> None:
        invoke, publisher, held = self._invoke, self._publisher, self._held
        subject, worker = self.names.results_subject, self.worker
        while True:
            for msg in await puller.pull(1, 5.0):
                try:
                    run, row = decode_row(msg.data, self._now())
                except (ValueError, KeyError, TypeError) as exc:
                    _log.error("unreadable message on a map's rows stream; dropped", map=self.names.name, error=str(exc))
                    with contextlib.suppress(Exception):
                        await msg.term()
                    continue
                held.hold(msg.reply, msg)
                try:
                    output = await invoke(row)
                    try:
                        body = success_body(run, row, worker, output)
                    except ValueError as exc:
                        raise ResultNotJsonError(f"The target's answer is not JSON: {exc}") from None
                except Exception as exc:
                    body = failure_body(run, row, worker, exc)
                self.ran += 1
                result = await publisher.publish_many(subject, [body], [f"{run}:{row.seq}:{row.attempt}:outcome"])
                held.drop(msg.reply)
                if isinstance(result[0], int):
                    await acks.ack([msg])
                else:
                    # Not stored: run it again (here or elsewhere) rather than lose the outcome.
                    _log.warning("a row's outcome was not stored; the row runs again", map=self.names.name, line=row.line)
                    with contextlib.suppress(Exception):
                        await msg.nak(delay=1.0)
