"""``deployment_status``: what a JetStream deployment holds and who works on it, for `eventbus status`.

Every stream whose name starts with the deployment's prefix (each bus's events and deliveries,
each pipe's records), its messages and each consumer's counts: ``pending`` (stored, not handed
out yet), ``in_flight`` (handed out, not acknowledged: being routed or delivered, or waiting for
a retry's delay), ``redelivered`` (handed out more than once: retries, and messages whose worker
died). And the workers: the entries of the workers bucket (``presence.py``), by process.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import nats.js.errors

from eventbus.bus.logs.jetstream.connection import JetStreamConnection
from eventbus.bus.logs.jetstream.presence import workers_bucket
from eventbus.bus.logs.jetstream.settings import JetStreamSettings

__all__ = ["ConsumerStatus", "DeploymentStatus", "StreamStatus", "WorkerStatus", "deployment_status"]


@dataclass
class ConsumerStatus:
    name: str
    pending: int
    in_flight: int
    redelivered: int
    waiting: int


@dataclass
class StreamStatus:
    name: str
    subjects: list[str]
    messages: int
    bytes: int
    replicas: int
    consumers: list[ConsumerStatus] = field(default_factory=list)


@dataclass
class WorkerStatus:
    worker: str
    host: str
    pid: int
    buses: list[str]
    since: float


@dataclass
class DeploymentStatus:
    servers: str
    prefix: str
    streams: list[StreamStatus]
    workers: list[WorkerStatus]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def deployment_status(settings: JetStreamSettings) -> DeploymentStatus:
    """The streams, consumers and live workers of the deployment ``settings`` name (connecting
    as a worker would: ``BackendError`` when no server answers)."""
    connection = JetStreamConnection(settings)
    await connection.acquire()
    try:
        js = connection.js
        head = f"{settings.stream}_"
        streams = []
        for info in await js.streams_info():
            config, state = info.config, info.state
            if not str(config.name).startswith(head) or str(config.name).startswith("KV_"):
                continue
            stream = StreamStatus(
                name=str(config.name),
                subjects=list(config.subjects or []),
                messages=int(state.messages or 0),
                bytes=int(state.bytes or 0),
                replicas=int(config.num_replicas or 1),
            )
            for consumer in await js.consumers_info(stream.name):
                stream.consumers.append(
                    ConsumerStatus(
                        name=str(consumer.name),
                        pending=int(consumer.num_pending or 0),
                        in_flight=int(consumer.num_ack_pending or 0),
                        redelivered=int(consumer.num_redelivered or 0),
                        waiting=int(consumer.num_waiting or 0),
                    )
                )
            stream.consumers.sort(key=lambda c: c.name)
            streams.append(stream)
        streams.sort(key=lambda s: s.name)
        return DeploymentStatus(settings.describe_servers(), settings.stream, streams, await _workers(js, settings))
    finally:
        await connection.release()


async def _workers(js: Any, settings: JetStreamSettings) -> list[WorkerStatus]:
    try:
        kv = await js.key_value(workers_bucket(settings.stream))
    except nats.js.errors.BucketNotFoundError:
        return []  # no worker ever ran
    try:
        keys = await kv.keys()
    except nats.js.errors.NoKeysError:
        return []
    workers: dict[str, WorkerStatus] = {}
    for key in keys:
        with contextlib.suppress(nats.js.errors.KeyNotFoundError, ValueError, KeyError, TypeError):
            entry = await kv.get(key)
            if entry is None or not entry.value:
                continue
            value = json.loads(entry.value)
            worker = workers.setdefault(
                value["worker"],
                WorkerStatus(value["worker"], str(value["host"]), int(value["pid"]), [], float(value["since"])),
            )
            worker.buses.append(str(value["bus"]))
            worker.since = min(worker.since, float(value["since"]))
    for worker in workers.values():
        worker.buses.sort()
    return sorted(workers.values(), key=lambda w: w.worker)
