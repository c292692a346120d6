"""The queue source: the targets' memory and SQLite queues, read as Pipes reads SQS.

A message is deleted once its fate is settled (delivered, filtered out, dead-lettered); a retry
or a stop makes it visible again at once or after the backoff (``change_visibility``). A crash
needs nothing: the visibility timeout runs out and the queue hands the message out again, with
its receive count one higher, which is the attempt number the retry policy reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from anyio.abc import TaskGroup
from pydantic import Field, model_validator

from eventbus.pipes.records import SourceRecord
from eventbus.pipes.sources.base import DEFAULT_ACCOUNT, DEFAULT_REGION, SourceConfig
from eventbus.targets.queue import MessageQueue, QueueMessage, SqliteQueue, memory_queue

__all__ = ["QueueSource", "QueueSourceConfig", "queue_record"]


class QueueSource:
    """Reads a ``MessageQueue``; records look like SQS messages handed to a pipe."""

    durable = True

    def __init__(
        self,
        queue: MessageQueue | None = None,
        *,
        sqlite_path: str | None = None,
        visibility_timeout: float = 30.0,
        queue_name: str | None = None,
        region: str = DEFAULT_REGION,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        if (queue is None) == (sqlite_path is None):
            raise ValueError("QueueSource needs a queue or a sqlite_path (not both)")
        self._given = queue
        self._sqlite_path = sqlite_path
        self._visibility_timeout = visibility_timeout
        self._queue: MessageQueue | None = queue
        self.region = region
        name = queue_name or _queue_name(queue, sqlite_path)
        self.arn = f"arn:aws:sqs:{region}:{account}:{name}"

    def __repr__(self) -> str:
        return f"QueueSource({self.arn!r})"

    @property
    def queue(self) -> MessageQueue:
        if self._queue is None:
            raise RuntimeError(f"{self!r} is not open")
        return self._queue

    async def open(self, task_group: TaskGroup) -> None:
        if self._queue is None and self._sqlite_path is not None:
            # A fresh connection each time: a closed SqliteQueue cannot be reopened.
            self._queue = SqliteQueue(self._sqlite_path, visibility_timeout=self._visibility_timeout)

    async def close(self) -> None:
        # A queue handed in belongs to the caller (memory queues are shared by name).
        if self._given is None and self._queue is not None:
            queue, self._queue = self._queue, None
            await queue.aclose()

    async def backlog(self) -> int:
        """Messages in the queue, visible or not: a message leaves it once its record is settled."""
        if self._queue is None and self._sqlite_path is not None:
            queue = SqliteQueue(self._sqlite_path, visibility_timeout=self._visibility_timeout)
            try:
                return await queue.count()
            finally:
                await queue.aclose()
        count = getattr(self.queue, "count", None)
        if count is None:
            raise TypeError(f"{type(self.queue).__name__} cannot count its messages (it has no count())")
        return int(await count())

    async def receive(self, max_records: int, wait_seconds: float) -> list[SourceRecord]:
        messages = await self.queue.receive(max_records, wait_seconds)
        return [self._record(m) for m in messages]

    async def ack(self, records: Sequence[SourceRecord]) -> None:
        if not records:
            return
        # One transaction for the whole batch when the queue offers it (the per-message
        # delete of a SQLite queue is a transaction each, and dominates a pipe's cost).
        delete_batch = getattr(self.queue, "delete_batch", None)
        if callable(delete_batch):
            await delete_batch([r.token for r in records])
            return
        for record in records:
            await self.queue.delete(record.token)

    async def release(self, records: Sequence[SourceRecord], delay: float) -> None:
        if not records:
            return
        change_batch = getattr(self.queue, "change_visibility_batch", None)
        if callable(change_batch):
            await change_batch([r.token for r in records], max(0.0, delay))
            return
        for record in records:
            await self.queue.change_visibility(record.token, max(0.0, delay))

    def _record(self, message: QueueMessage) -> SourceRecord:
        return queue_record(message, arn=self.arn, region=self.region)


def queue_record(message: QueueMessage, *, arn: str, region: str = DEFAULT_REGION) -> SourceRecord:
    """A received message as the SQS-shaped record a pipe reads (config tests shape theirs so too)."""
    sent = datetime.fromtimestamp(message.sent_timestamp, UTC)
    sent_ms = str(int(message.sent_timestamp * 1000))
    record: dict[str, Any] = {
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": {
            "ApproximateReceiveCount": str(message.receive_count),
            "SentTimestamp": sent_ms,
            "SenderId": "eventbus",
            "ApproximateFirstReceiveTimestamp": sent_ms,
        },
        "messageAttributes": {
            name: {"stringValue": value, "dataType": "String"} for name, value in message.attributes.items()
        },
        # surrogatepass: a body Python code put there may hold a lone surrogate; the record
        # still comes out (to fail once, with the reason) instead of failing every receive.
        "md5OfBody": hashlib.md5(message.body.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    }
    return SourceRecord(
        record=record,
        record_id=message.message_id,
        ingestion_time=sent,
        attempt=message.receive_count,
        token=message.receipt_handle,
    )


def _queue_name(queue: MessageQueue | None, sqlite_path: str | None) -> str:
    if sqlite_path is not None:
        from pathlib import Path

        return Path(sqlite_path).stem or "queue"
    name = getattr(queue, "name", "") or ""
    if not name and isinstance(queue, SqliteQueue):
        name = queue.path.stem
    return str(name) or "queue"


class QueueSourceConfig(SourceConfig):
    """``type: memory`` (a process-wide queue by ``name``) or ``type: sqlite`` (a file by ``path``)."""

    kind: ClassVar[str] = "queue"

    type: Literal["memory", "sqlite"] = "memory"
    name: str | None = None
    path: str | None = None
    max_size: int = Field(default=1000, ge=1)
    visibility_timeout: float = Field(default=30.0, ge=0, le=43_200)

    @model_validator(mode="after")
    def _where(self) -> QueueSourceConfig:
        if self.type == "memory" and not self.name:
            raise ValueError("a memory queue needs a name")
        if self.type == "sqlite" and not self.path:
            raise ValueError("a sqlite queue needs a path")
        return self

    def build(self) -> QueueSource:
        if self.type == "sqlite":
            assert self.path is not None
            return QueueSource(
                sqlite_path=self.path, visibility_timeout=self.visibility_timeout, queue_name=self.name
            )
        assert self.name is not None
        return QueueSource(memory_queue(self.name, self.max_size), queue_name=self.name)
