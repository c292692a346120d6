"""``RelayedSource``: a pipe's source shared by the workers of a JetStream deployment.

Every worker runs the same pipe. One of them, elected (``Election``), reads the pipe's own
source (a file, a folder, a webhook, a queue, a schedule: things with one place to read from)
and publishes each record to the pipe's records stream, a work-queue stream, with the record's
id as ``Nats-Msg-Id`` (a record read again after a reader died is stored once). Every worker's
pipe receives from that stream's durable consumer: the records are processed by all. A record
is acknowledged once its fate is settled; a retry is a delayed nak, and the attempt number is
JetStream's delivery count, as for a bus's deliveries. The reader acknowledges a record to its
own source only once the stream stored it, so a reader killed mid-way loses nothing.

A source whose records already come from a shared stream (``nats``) is read by every worker
directly instead (``shared_by_workers``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import anyio
from anyio.abc import TaskGroup

from eventbus._logger import get_logger
from eventbus.bus.logs.jetstream.acks import Acks
from eventbus.bus.logs.jetstream.connection import JetStreamConnection
from eventbus.bus.logs.jetstream.election import Election
from eventbus.bus.logs.jetstream.held import Held
from eventbus.bus.logs.jetstream.layout import bucket, prepare_consumer, prepare_stream
from eventbus.bus.logs.jetstream.names import token
from eventbus.bus.logs.jetstream.publish import Publisher
from eventbus.bus.logs.jetstream.pull import Puller, delivery_info
from eventbus.pipes.records import SourceRecord
from eventbus.pipes.sources.base import Source

__all__ = ["RelayedSource"]

_log = get_logger("eventbus.pipes")

#: Seconds an elected reader's lease lasts without renewal (it renews every third of it).
LEASE = 10.0
#: Records the reader takes from its source at once.
READ_BATCH = 100

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class RelayedSource:
    """``inner``'s records, through pipe ``pipe``'s records stream on ``connection``."""

    durable = True

    def __init__(self, inner: Source, *, connection: JetStreamConnection, pipe: str) -> None:
        self.inner = inner
        self.arn = inner.arn
        self.connection = connection
        self.pipe = pipe
        prefix = connection.settings.stream
        self.stream = f"{prefix}_PIPE_{token(pipe)}"
        self.subject = f"{prefix}.pipe.{token(pipe)}.records"
        self.elections = f"{prefix}_ELECTIONS"
        self._nc: Any = None
        self._publisher: Publisher | None = None
        self._puller: Puller | None = None
        self._acks: Acks | None = None
        self._held = Held(connection.settings.ack_wait)
        self._election: Election | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"RelayedSource({self.inner!r}, stream={self.stream!r})"

    @property
    def reading(self) -> bool:
        """Whether this worker is the one reading the pipe's source now."""
        return self._election is not None and self._election.leading

    async def open(self, task_group: TaskGroup) -> None:
        self._closed = False
        self._nc = nc = await self.connection.acquire()
        settings = self.connection.settings
        js = self.connection.js
        await prepare_stream(js, self.stream, [self.subject], settings, role=f"pipe {self.pipe}")
        await prepare_consumer(js, self.stream, "pipe", self.subject, settings)
        self._publisher = Publisher(nc, settings)
        await self._publisher.start()
        self._acks = Acks(nc)
        self._puller = Puller(nc, self.stream, "pipe")
        await self._puller.start()
        self._held.start()
        kv = await bucket(js, self.elections, settings, history=1, ttl=LEASE)
        self._election = Election(kv, f"pipe.{token(self.pipe)}", LEASE, name=self.pipe)
        task_group.start_soon(self._election.run, self._read)

    # -- the elected reader --------------------------------------------------------------------

    async def _read(self) -> None:
        """Read the pipe's source into the stream, for as long as this worker leads."""
        publisher = self._publisher
        assert publisher is not None
        _log.info("reading the pipe's source for every worker", pipe=self.pipe)
        async with anyio.create_task_group() as tg:
            await self.inner.open(tg)
            try:
                while True:
                    records = await self.inner.receive(READ_BATCH, 1.0)
                    if not records:
                        continue
                    bodies = [
                        _encode({"i": r.record_id, "t": r.ingestion_time.isoformat(), "r": r.record}).encode()
                        for r in records
                    ]
                    ids = [f"{self.pipe}:{r.record_id}" for r in records]
                    results = await publisher.publish_many(self.subject, bodies, ids)
                    stored = [r for r, result in zip(records, results, strict=True) if isinstance(result, int)]
                    failed = [r for r, result in zip(records, results, strict=True) if not isinstance(result, int)]
                    if stored:
                        await self.inner.ack(stored)
                    if failed:
                        _log.warning("records not stored yet; read again shortly", pipe=self.pipe, records=len(failed))
                        await self.inner.release(failed, 1.0)
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                    await self.inner.close()
                tg.cancel_scope.cancel()

    # -- every worker ------------------------------------------------------------------------

    async def receive(self, max_records: int, wait_seconds: float) -> list[SourceRecord]:
        puller = self._puller
        if puller is None or self._closed:
            return []
        records = []
        for msg in await puller.pull(max_records, max(wait_seconds, 0.05)):
            try:
                attempt, _ = delivery_info(msg.reply)
                body = json.loads(msg.data)
                record = SourceRecord(
                    record=body["r"],
                    record_id=str(body["i"]),
                    ingestion_time=datetime.fromisoformat(body["t"]),
                    attempt=attempt,
                    token=msg.reply,
                )
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                _log.error("unreadable message on a pipe's records stream; dropped", pipe=self.pipe, error=str(exc))
                with contextlib.suppress(Exception):
                    await msg.term()
                continue
            self._held.hold(msg.reply, msg)
            records.append(record)
        return records

    async def ack(self, records: Sequence[SourceRecord]) -> None:
        if self._acks is not None:
            await self._acks.ack([m for m in (self._held.drop(r.token) for r in records) if m is not None])

    async def release(self, records: Sequence[SourceRecord], delay: float) -> None:
        for record in records:
            msg = self._held.drop(record.token)
            if msg is not None:
                with contextlib.suppress(Exception):
                    await msg.nak(delay=delay if delay > 0 else None)

    async def backlog(self) -> int:
        """Records in the stream not acknowledged yet (and what the reader has not stored yet)."""
        if self._acks is None:
            return 0
        await self._acks.settle()
        info = await self.connection.js.stream_info(self.stream)
        waiting = int(info.state.messages or 0)
        inner_backlog = getattr(self.inner, "backlog", None)
        if self.reading and inner_backlog is not None:
            waiting += int(await inner_backlog())
        return waiting

    async def close(self) -> None:
        if self._closed or self._nc is None:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            if self._puller is not None:
                await self._puller.close()
            await self._held.stop()
            for msg in self._held.take_all():
                with contextlib.suppress(Exception):
                    await msg.nak()
            if self._acks is not None:
                await self._acks.settle()
            if self._publisher is not None:
                await self._publisher.stop()
            self._nc = None
            await self.connection.release()
