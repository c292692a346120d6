"""``RowWorker``: every worker's side of a spread map: take rows, run them, send the outcomes.

Each worker of the deployment runs up to its share of the map's ``max_concurrency`` rows at once
(the reading worker never has more than ``max_concurrency`` out in all), each taken from the
rows stream's durable consumer and kept leased while it runs (``Held``). A row's outcome is
published to the results stream (with the others ready, a batch a round trip) and only then is
the row acknowledged: a worker killed between
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

#: Outcomes published in one go, at most.
SEND_BATCH = 500


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
        #: Outcomes ready to send: (body, message id, the row's message).
        self._outbox: list[tuple[bytes, str, Any]] = []
        self._ready = anyio.Event()
        #: Workers free to take a row, and what the puller waits on when none is.
        self._free = concurrency
        self._room = anyio.Event()

    async def run(self) -> None:
        """Take and run rows until cancelled; rows taken and not run are handed back."""
        puller = Puller(self._nc, self.names.rows_stream, "rows")
        await puller.start()
        acks = Acks(self._nc)
        self._held.start()
        # One task pulls (as many rows as there are free workers), the workers take them from
        # here: thousands of workers each waiting on the puller would all wake for every row.
        send, receive = anyio.create_memory_object_stream[Any](max_buffer_size=self.concurrency)
        try:
            async with anyio.create_task_group() as tg, send, receive:
                tg.start_soon(self._send, acks)
                for _ in range(self.concurrency):
                    tg.start_soon(self._work, receive)
                await self._pull(puller, send)
        finally:
            with anyio.CancelScope(shield=True):
                await puller.close()
                await self._held.stop()
                for msg in self._held.take_all():
                    with contextlib.suppress(Exception):
                        await msg.nak()
                await acks.settle()

    async def _pull(self, puller: Puller, send: Any) -> None:
        while True:
            while self._free <= 0:
                self._room = anyio.Event()
                await self._room.wait()
            msgs = await puller.pull(min(self._free, 1024), 5.0)
            self._free -= len(msgs)
            for msg in msgs:
                self._held.hold(msg.reply, msg)
                send.send_nowait(msg)

    async def _work(self, receive: Any) -> None:
        worker = self.worker
        async for msg in receive:
            try:
                await self._run_one(msg, worker)
            finally:
                self._free += 1
                self._room.set()

    async def _run_one(self, msg: Any, worker: str) -> None:
        try:
            run, row = decode_row(msg.data, self._now())
        except (ValueError, KeyError, TypeError) as exc:
            _log.error("unreadable message on a map's rows stream; dropped", map=self.names.name, error=str(exc))
            self._held.drop(msg.reply)
            with contextlib.suppress(Exception):
                await msg.term()
            return
        try:
            output = await self._invoke(row)
            try:
                body = success_body(run, row, worker, output)
            except ValueError as exc:
                raise ResultNotJsonError(f"The target's answer is not JSON: {exc}") from None
        except Exception as exc:
            body = failure_body(run, row, worker, exc)
        self.ran += 1
        # Sent with the others ready (one round trip for many), the row held meanwhile.
        self._outbox.append((body, f"{run}:{row.seq}:{row.attempt}:outcome", msg))
        self._ready.set()

    async def _send(self, acks: Acks) -> None:
        """Publish the outcomes ready, a batch at a time; acknowledge each row once stored."""
        subject, held = self.names.results_subject, self._held
        while True:
            await self._ready.wait()
            self._ready = anyio.Event()
            while self._outbox:
                batch, self._outbox = self._outbox[:SEND_BATCH], self._outbox[SEND_BATCH:]
                results = await self._publisher.publish_many(subject, [b for b, _, _ in batch], [i for _, i, _ in batch])
                stored = []
                for (_, _, msg), result in zip(batch, results, strict=True):
                    held.drop(msg.reply)
                    if isinstance(result, int):
                        stored.append(msg)
                    else:
                        # Not stored: the row runs again (here or elsewhere) rather than lose it.
                        _log.warning("a row's outcome was not stored; the row runs again", map=self.names.name)
                        with contextlib.suppress(Exception):
                            await msg.nak(delay=1.0)
                await acks.ack(stored)
