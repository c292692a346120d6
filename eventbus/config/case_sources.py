"""The source a pipe reads in a config test: the case's records, shaped as its configured kind.

A case cannot use the configured source itself (it would need the file, the folder, the server or
the clock), so it gets one holding its records instead. Each built-in kind's records are made by
the function its source makes its own with, so their layout stays the source's.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anyio.abc import TaskGroup

from eventbus.pipes.records import SourceRecord
from eventbus.pipes.sources.base import BufferedSource

if TYPE_CHECKING:
    from eventbus.pipes import PipeConfig, Source

__all__ = ["EVENT_KINDS", "CaseSource", "case_source", "reaching_enrichment"]

#: Source kinds whose records are events: a case's record is such an event's ``detail``.
EVENT_KINDS = {"directory": "S3 'Object Created' events", "schedule": "'Scheduled Event' events"}


class CaseSource:
    """A pipe's source in a case: the case's records, counted until each one is settled."""

    def __init__(self, inner: Source, seed: Callable[[], Awaitable[list[str]]], total: int) -> None:
        self.inner = inner
        self.arn = inner.arn
        self.durable = inner.durable
        self.total = total
        #: Record identifier -> its position in the case's ``records``.
        self.index: dict[str, int] = {}
        self._seed: Callable[[], Awaitable[list[str]]] | None = seed
        self._settled: set[str] = set()

    def __repr__(self) -> str:
        return f"{self.inner!r} holding a config test's records"

    @property
    def unsettled(self) -> int:
        return self.total - len(self._settled)

    async def open(self, task_group: TaskGroup) -> None:
        await self.inner.open(task_group)
        if self._seed is not None:
            seed, self._seed = self._seed, None
            self.index = {record_id: index for index, record_id in enumerate(await seed())}

    async def receive(self, max_records: int, wait_seconds: float) -> list[SourceRecord]:
        return await self.inner.receive(max_records, wait_seconds)

    async def backlog(self) -> int:
        return self.unsettled

    async def ack(self, records: Sequence[SourceRecord]) -> None:
        # By identifier: a message handed out again after its visibility ran out settles once.
        self._settled.update(r.record_id for r in records)
        await self.inner.ack(records)

    async def release(self, records: Sequence[SourceRecord], delay: float) -> None:
        await self.inner.release(records, delay)

    async def close(self) -> None:
        await self.inner.close()


def case_source(pipe_name: str, pipe: PipeConfig, items: list[Any]) -> CaseSource:
    """A source holding ``items``, shaped as the pipe's configured source kind shapes records."""
    options: Any = pipe.source
    kind = str(getattr(type(options), "kind", ""))
    arn, records = _records(kind, options, pipe_name, items)
    # In memory, whatever the kind: a retry comes back at its due time (a queue would look for
    # it only every so often), so a case retrying a record 185 times still takes moments.
    buffered = _CaseBuffer(arn=arn, capacity=max(1, len(records)))

    async def offer() -> list[str]:
        for record in records:
            buffered.offer(record)
        buffered.producer_done()
        return [record.record_id for record in records]

    return CaseSource(buffered, offer, len(items))


class _CaseBuffer(BufferedSource):
    """Records in memory; an SQS-shaped record's receive count follows its attempts."""

    async def release(self, records: Sequence[SourceRecord], delay: float) -> None:
        await super().release(records, delay)
        for record in records:
            attributes = record.record.get("attributes")
            if record.record.get("eventSource") == "aws:sqs" and isinstance(attributes, dict):
                attributes["ApproximateReceiveCount"] = str(record.attempt)


def reaching_enrichment(pipe_name: str, pipe: PipeConfig, items: list[Any]) -> list[int]:
    """The positions of ``items`` whose record passes the pipe's filter, in order: the records
    that reach its enrichment (on their first attempt)."""
    from eventbus.patterns import Pattern
    from eventbus.pipes.records import filter_view

    if not pipe.filter:
        return list(range(len(items)))
    patterns = [Pattern(p) for p in pipe.filter]
    records = _shaped(pipe_name, pipe, items)
    return [
        index
        for index, record in enumerate(records)
        if any(p.matches(filter_view(record.record)) for p in patterns)
    ]


def _shaped(pipe_name: str, pipe: PipeConfig, items: list[Any]) -> list[SourceRecord]:
    """The records ``items`` become, shaped as the pipe's source kind shapes them."""
    options: Any = pipe.source
    return _records(str(getattr(type(options), "kind", "")), options, pipe_name, items)[1]


def _queue_name(options: Any) -> str:
    return str(options.name or (Path(options.path).stem if options.path else "") or "queue")


def _records(kind: str, options: Any, pipe_name: str, items: list[Any]) -> tuple[str, list[SourceRecord]]:
    """The source's ARN and the records, built by the functions the built-in kinds build theirs with."""
    now = datetime.now(UTC)
    if kind == "queue":
        from eventbus.pipes.sources.base import DEFAULT_ACCOUNT, DEFAULT_REGION
        from eventbus.pipes.sources.queue import queue_record
        from eventbus.targets.queue import QueueMessage

        # The messages of a queue of the case's own, as its first receive hands them out.
        arn = f"arn:aws:sqs:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:{_queue_name(options)}"
        messages = [
            QueueMessage(message_id, _text(item), {}, f"{message_id}:{uuid.uuid4().hex}", 1, now.timestamp())
            for message_id, item in ((str(uuid.uuid4()), item) for item in items)
        ]
        return arn, [queue_record(message, arn=arn) for message in messages]
    if kind == "webhook":
        from eventbus.pipes.sources.webhook import webhook_arn, webhook_record

        arn = webhook_arn(options.name)
        return arn, [
            webhook_record(
                _text(item),
                # What a client posting the record as written would declare.
                content_type="text/plain" if isinstance(item, str) else "application/json",
                path=options.path,
                query_string="",
                arn=arn,
                received=now.timestamp(),
            )
            for item in items
        ]
    if kind == "file":
        from eventbus.pipes.sources.files import file_format, file_record, file_source_arn

        listed = [options.path] if isinstance(options.path, str) else options.path
        paths = [Path(p).resolve() for p in listed]
        first = paths[0]
        # A CSV file's first line is its header; an extension the source cannot read fails here too.
        start = 2 if file_format(first, options.format) == "csv" else 1
        return file_source_arn(paths), [
            file_record(first, start + index, _text(item), now) for index, item in enumerate(items)
        ]
    if kind == "nats":
        from eventbus.pipes.sources.nats import nats_arn, nats_record

        arn = nats_arn(options.stream)
        return arn, [
            nats_record(
                # A lone surrogate (a YAML escape can write one) is not UTF-8: base64, as NATS would.
                _text(item).encode("utf-8", "surrogatepass"),
                arn=arn,
                stream=options.stream,
                subject=options.subject or options.stream,
                sequence=index + 1,
                delivery_count=1,
                timestamp=now,
            )
            for index, item in enumerate(items)
        ]
    if kind == "directory":
        from eventbus.pipes.sources.directory import bucket_arn, bucket_name, object_created_event

        bucket = bucket_name(options.path)
        return bucket_arn(bucket), [object_created_event(bucket, item, moment=now) for item in items]
    if kind == "schedule":
        from eventbus.pipes.sources.schedule import schedule_arn, scheduled_event

        arn = schedule_arn(options.name)
        return arn, [scheduled_event(item, arn=arn, when=now) for item in items]
    return _stream_records(kind, pipe_name, items, now)


def _stream_records(
    kind: str, pipe_name: str, items: list[Any], now: datetime
) -> tuple[str, list[SourceRecord]]:
    """A kind this package does not know: generic stream records, the record in ``data``."""
    from eventbus.pipes import SourceRecord
    from eventbus.pipes.sources.base import DEFAULT_ACCOUNT, DEFAULT_REGION

    arn = f"arn:eventbus:{kind}:{DEFAULT_REGION}:{DEFAULT_ACCOUNT}:{pipe_name}-source"
    records = []
    for index, item in enumerate(items):
        event_id = f"{pipe_name}:{index + 1}"
        record = {
            "eventID": event_id,
            "eventSource": f"eventbus:{kind}",
            "eventSourceARN": arn,
            "data": _text(item),
        }
        records.append(SourceRecord(record=record, record_id=event_id, ingestion_time=now))
    return arn, records


def _text(item: Any) -> str:
    """A record as a message body: text as written, anything else as its JSON text."""
    from eventbus.pipes.records import record_json

    return item if isinstance(item, str) else record_json(item)
