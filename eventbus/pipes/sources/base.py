"""The source protocol, the base of source configs, and a bounded buffer for non-durable sources.

A pipe asks its source for records (``receive``) and later tells it each record's fate: ``ack``
(done: delivered, filtered out or dead-lettered) or ``release`` (hand it out again after a
delay, for a retry or because the pipe stopped). Durable sources (queues, JetStream) keep a
record until it is acknowledged, so a stop or a crash loses nothing; the others keep records in
memory (``BufferedSource``) and say so with ``durable = False``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any, ClassVar, Final, Protocol, runtime_checkable

import anyio
from anyio.abc import TaskGroup
from pydantic import BaseModel, ConfigDict

from eventbus import redact
from eventbus.bus.clock import Clock, SystemClock
from eventbus.bus.logs.due import DueQueue
from eventbus.errors import ConfigError
from eventbus.pipes.records import SourceRecord

__all__ = ["DEFAULT_ACCOUNT", "DEFAULT_REGION", "BufferedSource", "Source", "SourceConfig"]

#: The account and region in the ARNs and records sources make up, as the bus's defaults.
DEFAULT_ACCOUNT: Final = "123456789012"
DEFAULT_REGION: Final = "us-east-1"


@runtime_checkable
class Source(Protocol):
    """Where a pipe's records come from."""

    #: The source's ARN: ``<aws.pipes.source-arn>`` and the records' ``eventSourceARN``.
    arn: str
    #: Whether records not acknowledged survive a stop or a crash of the process.
    durable: bool

    async def open(self, task_group: TaskGroup) -> None:
        """Connect, and start any background work in ``task_group``; return when ready."""
        ...

    async def receive(self, max_records: int, wait_seconds: float) -> list[SourceRecord]:
        """Up to ``max_records`` records, waiting up to ``wait_seconds`` for the first one."""
        ...

    async def ack(self, records: Sequence[SourceRecord]) -> None:
        """These records are done with: never hand them out again."""
        ...

    async def release(self, records: Sequence[SourceRecord], delay: float) -> None:
        """Hand these records out again after ``delay`` seconds, one attempt later."""
        ...

    async def close(self) -> None:
        """Disconnect; ``open`` may be called again later. Idempotent."""
        ...

    # Optional, and so not part of the protocol's checks: ``async def backlog(self) -> int``,
    # the records the source holds that are not acknowledged (waiting, handed out, or released
    # for a retry). ``Pipe.wait_idle`` needs it.


class SourceConfig(BaseModel):
    """Base of every source's config model; each sets ``kind`` and implements ``build()``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassVar[str] = ""

    def build(self) -> Source:
        raise NotImplementedError(f"{type(self).__name__} does not build a source")

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A URL may carry a password: whatever secret is registered is masked in the repr.
        for name, value in super().__repr_args__():
            yield name, redact.mask_value(value)


class BufferedSource:
    """Records held in memory: a bounded buffer fed by a producer, and the retries waiting for
    their time (a ``DueQueue``, as the bus's in-memory delivery queue).

    ``put`` waits while ``capacity`` records are waiting, which is how a slow pipe slows a
    directory watcher or a file reader down; ``offer`` refuses instead (the webhook answers 429).
    A record counts as outstanding from ``put`` until ``ack``; ``finished`` is true once the
    producer said it is done and nothing is outstanding. Retry delays run on ``clock``.
    """

    durable: bool = False

    def __init__(self, *, arn: str, capacity: int = 1000, clock: Clock | None = None) -> None:
        if capacity < 1:
            raise ConfigError("a source's capacity must be at least 1")
        self.arn = arn
        self.capacity = capacity
        self._records: DueQueue[SourceRecord] = DueQueue(clock if clock is not None else SystemClock())
        self._outstanding = 0
        self._producer_done = False
        self._is_open = False
        # anyio events need a running loop: made on first use, set and dropped on change.
        self._room: anyio.Event | None = None

    # -- producing -------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._is_open

    @property
    def pending(self) -> int:
        """Records waiting in the buffer (retries not included)."""
        return self._records.ready

    @property
    def outstanding(self) -> int:
        """Records put and not yet acknowledged (waiting, in a pipe, or waiting to retry)."""
        return self._outstanding

    async def backlog(self) -> int:
        """Records put and not acknowledged: what ``Pipe.wait_idle`` waits to reach 0."""
        return self._outstanding

    @property
    def finished(self) -> bool:
        """No record will come any more: the producer is done and every record was acknowledged."""
        return self._producer_done and self._outstanding == 0

    def offer(self, record: SourceRecord) -> bool:
        """Add ``record`` if there is room; ``False`` when the buffer is full."""
        if self._records.ready >= self.capacity:
            return False
        self._add(record)
        return True

    async def put(self, record: SourceRecord) -> None:
        """Add ``record``, waiting for room."""
        while self._records.ready >= self.capacity:
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()
        self._add(record)

    def producer_done(self) -> None:
        """The producer will put no more records (a file was read to its end)."""
        self._producer_done = True
        self._records.wake_all()

    def _add(self, record: SourceRecord) -> None:
        self._outstanding += 1
        self._records.push(record)

    # -- the Source protocol ---------------------------------------------------------------

    async def open(self, task_group: TaskGroup) -> None:
        self._is_open = True

    async def close(self) -> None:
        # Records released with a delay were in the pipe's hands: they wait in the buffer, in
        # order, for the next open (a process exit loses them: this source is not durable).
        self._records.make_ready()
        self._is_open = False

    async def receive(self, max_records: int, wait_seconds: float) -> list[SourceRecord]:
        out = self._take(max_records)
        if out or wait_seconds <= 0:
            return out
        with anyio.move_on_after(wait_seconds):
            while not out:
                await self._records.wait()
                out = self._take(max_records)
        return out

    async def ack(self, records: Sequence[SourceRecord]) -> None:
        self._outstanding -= len(records)
        if self._producer_done:
            self._records.wake_all()

    async def release(self, records: Sequence[SourceRecord], delay: float) -> None:
        # Due at once or later, a released record goes out before the buffer: it is older.
        due = self._records.clock.now() + timedelta(seconds=max(0.0, delay))
        for record in records:
            record.attempt += 1
            self._records.push_at(record, due)

    # -- internals -------------------------------------------------------------------------

    def _take(self, limit: int) -> list[SourceRecord]:
        before = self._records.ready
        out = self._records.take(limit)
        if self._records.ready < before and self._room is not None:
            self._room.set()
            self._room = None
        return out
