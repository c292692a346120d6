"""The NATS JetStream source: a durable pull consumer on a stream.

A message is acknowledged once its fate is settled; a retry is a ``nak`` with the backoff as its
delay, and a stop ``nak``s what the pipe did not finish, so the server redelivers it at once
(to this pipe when it starts again, or to another process reading the same durable consumer).
A crash needs nothing: the server redelivers after ``ack_wait``. The server counts deliveries,
and that count is the attempt number the retry policy reads. nats-py runs on asyncio only.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from anyio.abc import TaskGroup
from pydantic import Field, field_validator, model_validator

from eventbus import redact
from eventbus._logger import get_logger
from eventbus.errors import ConfigError
from eventbus.pipes.records import SourceRecord, aws_time
from eventbus.pipes.sources.base import DEFAULT_ACCOUNT, DEFAULT_REGION, SourceConfig

__all__ = ["NatsSource", "NatsSourceConfig", "nats_arn", "nats_record"]

_log = get_logger("eventbus.pipes.sources.nats")


class NatsSource:
    """Reads ``stream`` (optionally only ``subject``) through the durable consumer ``durable``."""

    durable = True
    #: Workers running the same pipe share its durable consumer: each reads it directly.
    shared_by_workers = True

    def __init__(
        self,
        *,
        servers: str | list[str] = "nats://127.0.0.1:4222",
        stream: str,
        subject: str | None = None,
        consumer: str = "eventbus-pipe",
        ack_wait: float = 30.0,
        create_stream: bool = False,
        connect_timeout: float = 5.0,
        region: str = DEFAULT_REGION,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        for server in self.servers:
            redact.register_url(server, self)
        self.stream = stream
        self.subject = subject
        self.consumer = consumer
        self.ack_wait = ack_wait
        self.create_stream = create_stream
        self.connect_timeout = connect_timeout
        self.arn = nats_arn(stream, region, account)
        self._nc: Any = None
        self._sub: Any = None

    def __repr__(self) -> str:
        # Server URLs may hold credentials (nats://user:pass@host): show the stream only.
        return f"NatsSource(stream={self.stream!r}, consumer={self.consumer!r})"

    async def open(self, task_group: TaskGroup) -> None:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig
        from nats.js.errors import NotFoundError

        async def quiet(exc: Exception) -> None:
            _log.warning("nats connection problem", error=redact.mask(f"{type(exc).__name__}: {exc}"))

        try:
            self._nc = await nats.connect(
                servers=self.servers,
                connect_timeout=self.connect_timeout,
                max_reconnect_attempts=-1,
                error_cb=quiet,
            )
        except Exception as exc:
            raise ConfigError(
                f"Cannot connect to NATS for stream {self.stream!r}: {type(exc).__name__}"
            ) from None
        js = self._nc.jetstream()
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            if not self.create_stream:
                await self.close()
                raise ConfigError(
                    f"JetStream stream {self.stream!r} does not exist (set create_stream to create it)"
                ) from None
            await js.add_stream(name=self.stream, subjects=[self.subject or f"{self.stream}.>"])
        config = ConsumerConfig(
            durable_name=self.consumer, ack_policy=AckPolicy.EXPLICIT, ack_wait=self.ack_wait
        )
        self._sub = await js.pull_subscribe(
            self.subject or "", durable=self.consumer, stream=self.stream, config=config
        )

    async def close(self) -> None:
        nc, self._nc, self._sub = self._nc, None, None
        if nc is not None:
            await nc.close()

    async def receive(self, max_records: int, wait_seconds: float) -> list[SourceRecord]:
        import nats.errors

        if self._sub is None:
            raise RuntimeError(f"{self!r} is not open")
        try:
            messages = await self._sub.fetch(batch=max_records, timeout=max(wait_seconds, 0.05))
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        return [self._record(m) for m in messages]

    async def backlog(self) -> int:
        """Messages of the stream the consumer has not had acknowledged: not yet delivered, or
        delivered and waiting for an ack (a nak'd retry included), as the server counts them."""
        if self._sub is None:
            raise RuntimeError(f"{self!r} is not open")
        info = await self._sub.consumer_info()
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def ack(self, records: Sequence[SourceRecord]) -> None:
        for record in records:
            await record.token.ack()

    async def release(self, records: Sequence[SourceRecord], delay: float) -> None:
        for record in records:
            await record.token.nak(delay=delay if delay > 0 else None)

    def _record(self, message: Any) -> SourceRecord:
        meta = message.metadata
        return nats_record(
            message.data,
            arn=self.arn,
            stream=self.stream,
            subject=message.subject,
            sequence=int(meta.sequence.stream),
            delivery_count=int(meta.num_delivered),
            timestamp=meta.timestamp if isinstance(meta.timestamp, datetime) else datetime.now(UTC),
            headers=message.headers,
            token=message,
        )


def nats_arn(stream: str, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT) -> str:
    return f"arn:eventbus:nats:{region}:{account}:stream/{stream}"


def nats_record(
    data: bytes,
    *,
    arn: str,
    stream: str,
    subject: str,
    sequence: int,
    delivery_count: int,
    timestamp: datetime,
    headers: Mapping[str, str] | None = None,
    token: Any = None,
) -> SourceRecord:
    """A JetStream message as a stream record; ``data`` that is not UTF-8 is carried as base64."""
    event_id = f"{stream}:{sequence}"
    record: dict[str, Any] = {
        "eventID": event_id,
        "eventSource": "eventbus:nats",
        "eventSourceARN": arn,
        "subject": subject,
        "sequence": sequence,
        "deliveryCount": delivery_count,
        "timestamp": aws_time(timestamp),
        "headers": dict(headers or {}),
    }
    try:
        record["data"] = data.decode("utf-8")
    except UnicodeDecodeError:
        record["data"] = base64.b64encode(data).decode("ascii")
        record["dataEncoding"] = "base64"
    return SourceRecord(
        record=record,
        record_id=event_id,
        ingestion_time=timestamp,
        attempt=delivery_count,
        token=token,
    )


class NatsSourceConfig(SourceConfig):
    """A JetStream ``stream`` read by the durable pull consumer ``consumer``."""

    kind: ClassVar[str] = "nats"

    servers: str | list[str] = "nats://127.0.0.1:4222"
    stream: str = Field(min_length=1)
    subject: str | None = None
    consumer: str = Field(default="eventbus-pipe", min_length=1)
    ack_wait: float = Field(default=30.0, gt=0)
    create_stream: bool = False
    connect_timeout: float = Field(default=5.0, gt=0)

    @field_validator("stream", "consumer")
    @classmethod
    def _no_dots(cls, name: str) -> str:
        if any(c in name for c in ". *>"):
            raise ValueError(f"{name!r}: JetStream names may not hold '.', '*', '>' or spaces")
        return name

    @model_validator(mode="after")
    def _mask_url_credentials(self) -> NatsSourceConfig:
        # nats://user:password@host: the password is a secret wherever the URL is shown.
        for server in [self.servers] if isinstance(self.servers, str) else self.servers:
            redact.register_url(server, self)
        return self

    def build(self) -> NatsSource:
        return NatsSource(
            servers=self.servers,
            stream=self.stream,
            subject=self.subject,
            consumer=self.consumer,
            ack_wait=self.ack_wait,
            create_stream=self.create_stream,
            connect_timeout=self.connect_timeout,
        )
