"""What a bus needs on the server, made when missing and checked when present.

Per bus: an events stream, a deliveries stream and a parked-deliveries stream (all work-queue: a
message lives until it is acknowledged), the ``router`` consumer of the events, the
``deliveries`` consumer of the deliveries, one consumer per rule target on the parked ones, and
two key-value buckets (the rules put at run time, the schedules' last fire
times). A stream that exists with settings the bus cannot work with is an error naming the
setting, never silently changed: it may hold another deployment's data.
"""

from __future__ import annotations

from typing import Any

import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StorageType, StreamConfig

from eventbus.bus.logs.jetstream.names import BusNames
from eventbus.bus.logs.jetstream.settings import JetStreamSettings
from eventbus.errors import BackendError

__all__ = ["bucket", "prepare_bus", "prepare_consumer", "prepare_stream"]

#: Lingering pull requests a consumer keeps (workers x their concurrency may wait at once).
_MAX_WAITING = 4096


def _stream_config(name: str, subjects: list[str], settings: JetStreamSettings) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=subjects,
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        num_replicas=settings.replicas,
        duplicate_window=settings.duplicate_window,
        max_consumers=-1,
        max_msgs=-1,
        max_bytes=-1,
    )


def _value(value: Any) -> Any:
    return getattr(value, "value", value)


async def _stream(js: Any, wanted: StreamConfig, role: str) -> None:
    name = wanted.name
    try:
        info = await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        info = None
    if info is None:
        try:
            await js.add_stream(wanted)
        except nats.js.errors.APIError as exc:
            raise BackendError(
                f"JetStream refused to create stream {name} ({role}): {exc.description or exc}. "
                "If another stream already stores these subjects, give this deployment another "
                "prefix (runtime.backend.stream)"
            ) from None
        return
    have = info.config
    for setting, want, got in (
        ("retention", _value(wanted.retention), _value(have.retention)),
        ("subjects", sorted(wanted.subjects or []), sorted(have.subjects or [])),
        ("storage", _value(wanted.storage), _value(have.storage)),
    ):
        if want != got:
            raise BackendError(
                f"JetStream stream {name} ({role}) exists with {setting} {got!r}; eventbus needs "
                f"{want!r}. It was made by something else: delete it, or give this deployment "
                "another prefix (runtime.backend.stream)"
            )
    changes: dict[str, Any] = {}
    if (have.num_replicas or 1) != wanted.num_replicas:
        changes["num_replicas"] = wanted.num_replicas
    if abs((have.duplicate_window or 0) - (wanted.duplicate_window or 0)) > 1e-3:
        changes["duplicate_window"] = wanted.duplicate_window
    if changes:
        try:
            await js.update_stream(have.evolve(**changes))
        except nats.js.errors.APIError as exc:
            setting = "replicas" if "num_replicas" in changes else "duplicate_window"
            raise BackendError(
                f"JetStream stream {name} ({role}) exists with {setting} "
                f"{getattr(have, next(iter(changes)))!r} and cannot be changed to "
                f"{next(iter(changes.values()))!r}: {exc.description or exc}"
            ) from None


async def prepare_stream(js: Any, name: str, subjects: list[str], settings: JetStreamSettings, *, role: str) -> None:
    """Work-queue stream ``name`` on ``subjects`` (made, or checked; ``role`` names it in errors)."""
    await _stream(js, _stream_config(name, subjects, settings), role)


async def prepare_bus(js: Any, names: BusNames, settings: JetStreamSettings) -> None:
    """The streams and the router consumer of bus ``names.bus`` (made or checked)."""
    await _stream(js, _stream_config(names.events_stream, [names.events_subject], settings), "events")
    await _stream(
        js, _stream_config(names.deliveries_stream, [names.deliveries_prefix + ".>"], settings), "deliveries"
    )
    await _stream(js, _stream_config(names.parked_stream, [names.parked_prefix + ".>"], settings), "parked deliveries")
    await prepare_consumer(js, names.events_stream, names.router, None, settings)


async def prepare_consumer(js: Any, stream: str, name: str, subject: str | None, settings: JetStreamSettings) -> None:
    """The durable pull consumer ``name`` of ``stream`` (made, or updated to these settings),
    on ``subject`` (``None``: all the stream holds)."""
    config = ConsumerConfig(
        name=name,
        durable_name=name,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait,
        # Retries are the bus's: its retry policy decides, and acknowledges what it gave up on.
        max_deliver=-1,
        # Deliveries waiting on a retry delay count as unacknowledged: no cap on them.
        max_ack_pending=-1,
        max_waiting=_MAX_WAITING,
        filter_subject=subject,
    )
    try:
        await js.add_consumer(stream, config)
    except nats.js.errors.APIError as exc:
        raise BackendError(
            f"JetStream refused consumer {name} on stream {stream}: {exc.description or exc}"
        ) from None


async def bucket(js: Any, name: str, settings: JetStreamSettings, *, history: int, ttl: float | None = None) -> Any:
    """The key-value bucket ``name`` (made when missing); its entries expire ``ttl`` seconds
    after their last write when given."""
    try:
        return await js.key_value(name)
    except nats.js.errors.BucketNotFoundError:
        pass
    try:
        return await js.create_key_value(bucket=name, history=history, replicas=settings.replicas, ttl=ttl)
    except nats.js.errors.APIError as exc:
        # Another worker made it meanwhile.
        try:
            return await js.key_value(name)
        except nats.js.errors.APIError:
            raise BackendError(f"JetStream refused key-value bucket {name}: {exc.description or exc}") from None
