"""``JetStreamDeliveryQueue``: deliveries on a work-queue stream, one consumer per rule target.

``put`` publishes each delivery to its route's subject (``...deliveries.<rule>.<target>``) with
``<event id>@<events stream sequence>:<route>`` as ``Nats-Msg-Id`` (``delivery_id``), so an event
routed twice (its router died before acknowledging it) is stored once, while a replay or a
redrive (a new message on the events stream) is not mistaken for it. ``lease`` pulls from the route's durable consumer, shared by
every worker: the attempt count is JetStream's delivery count. ``ack`` ends a delivery (the
stream forgets it); ``release(delay)`` is a delayed nak: the server hands the message out again
after ``delay`` seconds, so a retry waiting for minutes is a message on the server, not a task,
and each attempt is a delivery of its own (no single ack wait spans a delivery's retries).

Due times run on the NATS server's clock, not on the bus's ``Clock``: a ``ManualClock`` cannot
move them (``DeliveryQueueContract.clock_driven`` is False for this queue).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import anyio

from eventbus._logger import get_logger
from eventbus.bus.clock import Clock
from eventbus.bus.logs.jetstream.acks import Acks
from eventbus.bus.logs.jetstream.connection import JetStreamConnection
from eventbus.bus.logs.jetstream.held import Held
from eventbus.bus.logs.jetstream.layout import prepare_consumer
from eventbus.bus.logs.jetstream.names import BusNames
from eventbus.bus.logs.jetstream.publish import Publisher
from eventbus.bus.logs.jetstream.pull import Puller, delivery_info
from eventbus.bus.logs.protocol import Delivery, LogClosedError

__all__ = ["JetStreamDeliveryQueue", "delivery_id", "message_id"]

_log = get_logger("eventbus.jetstream")

#: Seconds a lingering pull waits before asking again.
PULL_WAIT = 5.0

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_encode_text = json.JSONEncoder(ensure_ascii=False).encode


def message_id(event: Mapping[str, Any], target: str | None = None) -> str:
    """The ``Nats-Msg-Id`` of ``event`` on the events stream. A replayed event is the same event
    under another name (its replay's name is part of the id), a redriven dead letter the same
    event for one rule target (``target``, ``<rule>/<target id>``)."""
    base = str(event.get("id", ""))
    replay = event.get("replay-name")
    if replay:
        base = f"{base}@{replay}"
    return base if target is None else f"{base}>{target}"


def delivery_id(delivery: Delivery) -> str:
    """The ``Nats-Msg-Id`` of a delivery: its event's place on the events stream and its route.
    An event routed again (its router died before acknowledging it) is the same message there,
    so its deliveries are stored once; a replay or a redrive is a new message, so they are not."""
    return f"{delivery.event.get('id', '')}@{delivery.offset}:{delivery.route}"


_WHOLE = ',"e":1'


def encode_delivery(delivery: Delivery, event_json: str) -> bytes:
    """A delivery as a message body: one line of JSON (route, ingestion time, chain, offset, the
    payload's length in bytes), then the payload as it is, then the event's JSON unless the
    payload is the event itself (a target that takes the whole event): nothing escaped twice."""
    payload = delivery.payload.encode()
    same = delivery.payload == event_json
    whole = _WHOLE if same else ""
    head = (
        f'{{"r":{_encode_text(delivery.route)},"t":"{delivery.ingestion_time.isoformat()}",'
        f'"c":{_encode(list(delivery.chain))},"o":{int(delivery.offset)},"n":{len(payload)}{whole}}}'
    ).encode() + b"\n"
    return head + payload if same else head + payload + event_json.encode()


def decode_delivery(data: bytes, route: str, attempts: int, handle: Any) -> Delivery:
    """The delivery ``encode_delivery`` wrote (``ValueError``, ``KeyError``... if it is not one)."""
    cut = data.index(b"\n")
    head = json.loads(data[:cut])
    rest = data[cut + 1 :]
    size = int(head["n"])
    payload = rest[:size].decode()
    event = json.loads(payload if head.get("e") else rest[size:])
    return Delivery(
        head.get("r", route),
        event,
        payload,
        datetime.fromisoformat(head["t"]),
        tuple(head.get("c") or ()),
        int(head.get("o", -1)),
        attempts,
        handle,
    )


class JetStreamDeliveryQueue:
    """The deliveries of one bus on its deliveries stream (made by ``JetStreamEventLog.open``)."""

    distributed = True

    def __init__(self, connection: JetStreamConnection, names: BusNames, clock: Clock, publisher: Publisher) -> None:
        self.connection = connection
        self.names = names
        self.clock = clock
        self._publisher = publisher
        self._pullers: dict[str, Puller] = {}
        self._preparing: dict[str, anyio.Lock] = {}
        #: Messages taken from the server and not ended: handed out, or waiting to be (renewed).
        self._held = Held(connection.settings.ack_wait)
        #: The batch each route's dispatcher leases, which its consumer fetches ahead.
        self._batch: dict[str, int] = {}
        self._nc: Any = None
        self._acks: Acks | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"JetStreamDeliveryQueue(bus={self.names.bus!r}, stream={self.names.deliveries_stream!r})"

    async def open(self) -> None:
        self._nc = await self.connection.acquire()
        self._acks = Acks(self._nc)
        self._held.start()

    async def put(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        names = self.names
        cache: dict[int, str] = {}
        bodies, subjects, ids = [], [], []
        for delivery in deliveries:
            event = delivery.event
            event_json = cache.get(id(event))
            if event_json is None:
                event_json = cache[id(event)] = _encode(event)
            bodies.append(encode_delivery(delivery, event_json))
            subjects.append(names.delivery_subject(delivery.route))
            ids.append(delivery_id(delivery))
        delay = 0.5
        todo = list(range(len(bodies)))
        while True:
            if self._closed:
                raise LogClosedError("the delivery queue is closed")
            results = await self._publisher.publish_many(
                [subjects[i] for i in todo], [bodies[i] for i in todo], [ids[i] for i in todo]
            )
            failed = [i for i, result in zip(todo, results, strict=True) if not isinstance(result, int)]
            if not failed:
                return
            # Nothing is lost by waiting: the events stay unacknowledged (and renewed) meanwhile.
            # The same ids again, so what did get stored is not stored twice.
            _log.warning(
                "deliveries not stored yet; trying again",
                bus=names.bus,
                deliveries=len(failed),
                reason=str(results[todo.index(failed[0])]),
            )
            await anyio.sleep(delay)
            delay = min(delay * 2, 5.0)
            todo = failed

    async def _puller(self, route: str) -> Puller:
        puller = self._pullers.get(route)
        if puller is not None:
            return puller
        lock = self._preparing.setdefault(route, anyio.Lock())
        async with lock:
            puller = self._pullers.get(route)
            if puller is None:
                names = self.names
                consumer = names.route_consumer(route)
                await prepare_consumer(
                    self.connection.js,
                    names.deliveries_stream,
                    consumer,
                    names.delivery_subject(route),
                    self.connection.settings,
                )
                # One batch more than the workers wait for: a worker back for more finds it at
                # hand. It is kept leased (renewed) while it waits.
                puller = Puller(
                    self._nc,
                    names.deliveries_stream,
                    consumer,
                    prefetch=self._batch.get(route, 1),
                    on_arrival=self._arrived,
                )
                await puller.start()
                self._pullers[route] = puller
        return puller

    def _arrived(self, msg: Any) -> None:
        self._held.hold(msg.reply, msg)

    async def lease(self, route: str, max_items: int) -> list[Delivery]:
        self._batch.setdefault(route, max_items)
        while not self._closed:
            try:
                puller = await self._puller(route)
            except Exception as exc:
                # The server is away (a failover): wait, then ask again.
                _log.warning("cannot reach a route's consumer yet", bus=self.names.bus, route=route, error=str(exc))
                await anyio.sleep(1.0)
                continue
            msgs = await puller.pull(max_items, PULL_WAIT)
            if self._closed:
                break  # what it brought is held: ``close`` hands it back
            leased = []
            for msg in msgs:
                delivery = await self._decode(msg, route)
                if delivery is not None:
                    leased.append(delivery)
            if leased:
                return leased
        return []

    async def _decode(self, msg: Any, route: str) -> Delivery | None:
        try:
            attempts, _ = delivery_info(msg.reply)
            # The reply subject names this delivery of this message: the handle to end it by.
            delivery = decode_delivery(msg.data, route, attempts, msg.reply)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            _log.error("unreadable message on the deliveries stream; dropped", reply=msg.reply, error=str(exc))
            self._held.drop(msg.reply)
            with contextlib.suppress(Exception):
                await msg.term()
            return None
        return delivery

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if self._acks is not None:
            await self._acks.ack([m for m in (self._held.drop(d.handle) for d in deliveries) if m is not None])

    async def release(self, deliveries: Sequence[Delivery], delay: float) -> None:
        for delivery in deliveries:
            msg = self._held.drop(delivery.handle)
            if msg is None:
                continue
            try:
                # A delayed nak: JetStream hands it out again, one delivery more, after ``delay``.
                await msg.nak(delay=delay if delay > 0 else None)
            except Exception as exc:
                _log.warning("retry not handed back; it comes back after the ack wait", error=str(exc))

    async def pending(self) -> int:
        if self._acks is not None:
            await self._acks.settle()
        info = await self.connection.js.stream_info(self.names.deliveries_stream)
        return int(info.state.messages or 0)

    async def routes(self) -> Mapping[str, int]:
        if self._acks is not None:
            await self._acks.settle()
        names = self.names
        info = await self.connection.js.stream_info(names.deliveries_stream, subjects_filter=names.deliveries_prefix + ".>")
        counts: dict[str, int] = {}
        for subject, count in (info.state.subjects or {}).items():
            route = names.route_of(subject)
            if route is not None and count:
                counts[route] = counts.get(route, 0) + int(count)
        return counts

    def pending_events(self) -> list[dict[str, Any]]:
        return []  # on the stream: a restart, or another worker, delivers them

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            for puller in self._pullers.values():
                # What arrives from now on it hands back itself; what it kept is held.
                await puller.close(hand_back=False)
            await self._held.stop()
            for msg in self._held.take_all():
                # Leased and not ended (a drain cut short), or fetched ahead: due again at once,
                # for another worker.
                with contextlib.suppress(Exception):
                    await msg.nak()
            if self._acks is not None:
                await self._acks.settle()
            if self._nc is not None:
                self._nc = None
                await self.connection.release()
