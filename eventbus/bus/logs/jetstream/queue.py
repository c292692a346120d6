"""``JetStreamDeliveryQueue``: deliveries on a work-queue stream, taken in batches by every worker.

``put`` publishes each delivery to its route's subject (``...deliveries.<rule>.<target>``) with
``<event id>@<events stream sequence>:<route>`` as ``Nats-Msg-Id`` (``delivery_id``), so an
event routed twice (its router died before acknowledging it) is stored once, while a replay or a
redrive (a new message on the events stream) is not mistaken for it.

One durable consumer, ``deliveries``, hands every route's deliveries to every worker. A worker's
feed task pulls from it in requests as large as what its idle dispatchers wait for, and sorts
what comes into a ready list per route, where ``lease`` takes it. One request serves many
routes: with a consumer per route, a bus of many sparsely matched rules cost the server a pull
request for nearly every delivery. A delivery that comes for a route this worker does not lease,
whose ready list is full, or none of whose leases came for ``_IDLE`` seconds (a slow target, or
one removed), is *parked*: published again on the route's subject of the parked stream
(``...parked.<rule>.<target>``) with the attempts it had, then acknowledged, and leased from
there through the route's own consumer when a lease of the route waits. So a slow target never
holds up the others, and what waits for a target no worker runs waits on the server, not in a
worker's memory. (The route consumers live on a stream of their own: the server looks at every
consumer of a stream for each message stored and each acknowledgement, so a hundred of them
beside ``deliveries`` cost it more than the deliveries did.)

``ack`` ends a delivery (the stream forgets it); ``release(delay)`` is a delayed nak: the server
hands the message out again after ``delay`` seconds, so a retry waiting for minutes is a message
on the server, not a task, and each attempt is a delivery of its own (no single ack wait spans a
delivery's retries). The attempt count is JetStream's delivery count, plus the attempts a parked
delivery had made before it was parked.

Due times run on the NATS server's clock, not on the bus's ``Clock``: a ``ManualClock`` cannot
move them (``DeliveryQueueContract.clock_driven`` is False for this queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections import deque
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
from eventbus.bus.logs.jetstream.wakeup import Wakeup
from eventbus.bus.logs.protocol import Delivery, LogClosedError
from eventbus.patterns.reading import read_json

__all__ = ["JetStreamDeliveryQueue", "delivery_id", "message_id"]

_log = get_logger("eventbus.jetstream")

#: Seconds a lingering pull waits before asking again.
PULL_WAIT = 5.0
#: Deliveries a route's ready list holds beyond four leases' worth before more are parked.
_READY = 64
#: Seconds before a delivery that could not be parked comes back (the server was away).
_PARK_RETRY = 1.0
#: Seconds after its last lease a route's deliveries are parked rather than held ready.
_IDLE = 10.0

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


@functools.lru_cache(maxsize=4096)
def _route_json(route: str) -> str:
    """A route's name as JSON, made once per route (routes come and go with the rules)."""
    return _encode_text(route)


def encode_delivery(delivery: Delivery, event_json: str) -> bytes:
    """A delivery as a message body: one line of JSON (route, ingestion time, chain, offset, the
    payload's length in bytes; ``a``, the attempts made before, once parked), then the payload as it is, then the event's JSON unless the
    payload is the event itself (a target that takes the whole event): nothing escaped twice."""
    payload = delivery.payload.encode()
    same = delivery.payload == event_json
    whole = _WHOLE if same else ""
    chain = _encode(list(delivery.chain)) if delivery.chain else "[]"
    head = (
        f'{{"r":{_route_json(delivery.route)},"t":"{delivery.ingestion_time.isoformat()}",'
        f'"c":{chain},"o":{int(delivery.offset)},"n":{len(payload)}{whole}}}'
    ).encode() + b"\n"
    return head + payload if same else head + payload + event_json.encode()


def decode_delivery(data: bytes, route: str, attempts: int, handle: Any) -> Delivery:
    """The delivery ``encode_delivery`` wrote (``ValueError``, ``KeyError``... if it is not one)."""
    cut = data.index(b"\n")
    head = read_json(data[:cut])
    rest = data[cut + 1 :]
    size = int(head["n"])
    payload = rest[:size].decode()
    event = read_json(payload if head.get("e") else rest[size:])
    return Delivery(
        head.get("r", route),
        event,
        payload,
        datetime.fromisoformat(head["t"]),
        tuple(head.get("c") or ()),
        int(head.get("o", -1)),
        attempts + int(head.get("a", 0)),
        handle,
    )


def parked_body(data: bytes, attempts: int) -> bytes:
    """Message ``data`` (written by ``encode_delivery``) with ``attempts`` as the attempts made."""
    cut = data.index(b"\n")
    head = json.loads(data[:cut])
    head["a"] = attempts
    return _encode(head).encode() + data[cut:]


class _Route:
    """What a worker holds of one route: deliveries ready to lease, and who waits for them."""

    __slots__ = ("_changed", "_wanted", "cap", "last", "ready", "waiting")

    def __init__(self, batch: int) -> None:
        self.cap = 4 * batch + _READY
        self.ready: deque[Delivery] = deque()
        self._changed = Wakeup()
        #: Leases waiting on an empty ready list, and when a lease last came.
        self.waiting = 0
        self.last = time.monotonic()
        self._wanted = Wakeup()

    def active(self, now: float) -> bool:
        """Whether a lease of this route waits, or came lately: a route whose target was removed,
        or that a slow target keeps busy, gets no more deliveries held for it here."""
        return self.waiting > 0 or now - self.last < _IDLE

    def wanted(self) -> anyio.Event:
        """Set when a lease starts waiting."""
        return self._wanted.event()

    def want(self) -> None:
        self._wanted.fire()

    def changed(self) -> anyio.Event:
        """Set at the next ``notify``."""
        return self._changed.event()

    def notify(self) -> None:
        self._changed.fire()


class JetStreamDeliveryQueue:
    """The deliveries of one bus on its deliveries stream (made by ``JetStreamEventLog.open``)."""

    distributed = True

    def __init__(self, connection: JetStreamConnection, names: BusNames, clock: Clock, publisher: Publisher) -> None:
        self.connection = connection
        self.names = names
        self.clock = clock
        self._publisher = publisher
        #: Each route's subject on the deliveries stream, made once.
        self._subjects: dict[str, str] = {}
        #: The routes this worker leases, each with its ready list.
        self._routes: dict[str, _Route] = {}
        #: Deliveries the leases waiting on an empty ready list want: what the feed asks for.
        self._demand = 0
        self._wake = anyio.Event()
        #: The feed (from the shared consumer) and each route's puller of its parked deliveries.
        self._tasks: list[asyncio.Task[None]] = []
        self._feeding = False
        self._shared: Puller | None = None
        self._pullers: dict[str, Puller] = {}
        #: Messages taken from the server and not ended: handed out, or waiting to be (renewed).
        self._held = Held(connection.settings.ack_wait)
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
        subject_of = self._subjects
        if len(subject_of) > 10_000:
            subject_of.clear()  # routes come and go with the rules
        bodies, subjects, ids = [], [], []
        for delivery in deliveries:
            event = delivery.event
            event_json = delivery.event_text or cache.get(id(event))
            if event_json is None:
                event_json = cache[id(event)] = _encode(event)
            bodies.append(encode_delivery(delivery, event_json))
            route = delivery.route
            subject = subject_of.get(route)
            if subject is None:
                subject = subject_of[route] = names.shared_subject(route)
            subjects.append(subject)
            ids.append(delivery_id(delivery))
        await self._publish(subjects, bodies, ids, "deliveries not stored yet; trying again")

    async def _publish(self, subjects: list[str], bodies: list[bytes], ids: list[str], warning: str) -> None:
        """Publish until every message is stored (the same ids again: nothing stored twice)."""
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
            # Nothing is lost by waiting: what is being published stays unacknowledged (and
            # renewed) meanwhile.
            _log.warning(warning, bus=self.names.bus, deliveries=len(failed), reason=str(results[todo.index(failed[0])]))
            await anyio.sleep(delay)
            delay = min(delay * 2, 5.0)
            todo = failed

    # -- taking deliveries -------------------------------------------------------------------

    def _arrived(self, msg: Any) -> None:
        self._held.hold(msg.reply, msg)

    async def lease(self, route: str, max_items: int) -> list[Delivery]:
        state = self._routes.get(route)
        if state is None and not self._closed:
            state = self._routes[route] = _Route(max_items)
            self._start(self._parked(route, state))
            if len(self._routes) == 1:
                self._start(self._feed())
        while state is not None and not self._closed:
            ready = state.ready
            state.last = time.monotonic()
            if ready:
                return [ready.popleft() for _ in range(min(max_items, len(ready)))]
            changed = state.changed()
            self._demand += max_items
            state.waiting += 1
            state.want()  # the route's parked deliveries are wanted too
            if not self._feeding:
                self._wake.set()
            try:
                await changed.wait()
            finally:
                self._demand -= max_items
                state.waiting -= 1
        return []

    def _start(self, work: Any) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(work))

    async def _feed(self) -> None:
        """Pull from the shared consumer what the waiting leases want; sort it into the routes'
        ready lists, parking what this worker has no room for."""
        names = self.names
        puller = Puller(self._nc, names.deliveries_stream, names.shared_consumer, on_arrival=self._arrived)
        while not self._closed:
            try:
                await prepare_consumer(
                    self.connection.js,
                    names.deliveries_stream,
                    names.shared_consumer,
                    None,
                    self.connection.settings,
                )
                await puller.start()
                break
            except Exception as exc:
                # The server is away (a failover): wait, then ask again.
                _log.warning("cannot reach the deliveries consumer yet", bus=names.bus, error=str(exc))
                await anyio.sleep(1.0)
        if self._closed:
            await puller.close(hand_back=False)
            return
        self._shared = puller
        while not self._closed:
            want = self._demand
            if want <= 0:
                self._wake = wake = anyio.Event()
                await wake.wait()
                continue
            self._feeding = True
            try:
                # Some more than the leases want: part of what comes is for other routes.
                msgs = await puller.pull(want + min(want, _READY), PULL_WAIT)
            finally:
                self._feeding = False
            touched: dict[int, _Route] = {}
            try:
                while msgs and not self._closed:
                    await self._sort(msgs, touched)
                    # Parking waited for the server: what arrived meanwhile goes with this batch.
                    msgs = puller.take(max(self._demand, 1))
            except Exception as exc:  # what was not sorted is held: it comes back after the ack wait
                _log.error("deliveries not sorted", bus=names.bus, error=f"{type(exc).__name__}: {exc}")
            for state in touched.values():
                state.notify()

    async def _sort(self, msgs: list[Any], touched: dict[int, _Route]) -> None:
        routes = self._routes
        parking: list[tuple[Any, Delivery]] = []
        now = time.monotonic()
        for msg in msgs:
            delivery = await self._decode(msg, "")
            if delivery is None:
                continue
            state = routes.get(delivery.route)
            if state is None or len(state.ready) >= state.cap or not state.active(now):
                parking.append((msg, delivery))
                continue
            state.ready.append(delivery)
            touched[id(state)] = state
        if parking:
            await self._park(parking)

    async def _park(self, parking: list[tuple[Any, Delivery]]) -> None:
        """Publish each delivery again on its route's own subject, then acknowledge it here."""
        names = self.names
        subjects = [names.parked_subject(delivery.route) for _, delivery in parking]
        bodies = [parked_body(msg.data, delivery.attempts - 1) for msg, delivery in parking]
        # Parked again after a crash, the same message is the same id: stored once.
        ids = [f"{delivery_id(delivery)}~{delivery.attempts - 1}" for _, delivery in parking]
        results = await self._publisher.publish_many(subjects, bodies, ids)
        stored = []
        for (msg, _), result in zip(parking, results, strict=True):
            self._held.drop(msg.reply)
            if isinstance(result, int):
                stored.append(msg)
                continue
            _log.warning("delivery not parked; it comes back shortly", bus=names.bus, reason=str(result))
            with contextlib.suppress(Exception):
                await msg.nak(delay=_PARK_RETRY)
        if stored and self._acks is not None:
            await self._acks.ack(stored)

    async def _parked(self, route: str, state: _Route) -> None:
        """Lease route ``route``'s parked deliveries into its ready list whenever a lease of the
        route waits for one."""
        batch = max(1, (state.cap - _READY) // 4)
        puller = None
        while not self._closed:
            try:
                if puller is None:
                    puller = await self._puller(route)
                if not state.waiting:
                    await state.wanted().wait()
                    continue
                msgs = await puller.pull(batch, PULL_WAIT)
                if self._closed:
                    break  # what it brought is held: ``close`` hands it back
                got = False
                for msg in msgs:
                    delivery = await self._decode(msg, route)
                    if delivery is not None:
                        state.ready.append(delivery)
                        got = True
                if got:
                    state.notify()
            except Exception as exc:
                # The server is away (a failover): wait, then ask again.
                _log.warning("cannot reach a route's consumer yet", bus=self.names.bus, route=route, error=str(exc))
                await anyio.sleep(1.0)

    async def _puller(self, route: str) -> Puller:
        names = self.names
        consumer = names.route_consumer(route)
        await prepare_consumer(
            self.connection.js,
            names.parked_stream,
            consumer,
            names.parked_subject(route),
            self.connection.settings,
        )
        puller = Puller(self._nc, names.parked_stream, consumer, on_arrival=self._arrived)
        await puller.start()
        self._pullers[route] = puller
        if self._closed:
            await puller.close(hand_back=False)
        return puller

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

    # -- ending deliveries -------------------------------------------------------------------

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
        js = self.connection.js
        total = 0
        for stream in (self.names.deliveries_stream, self.names.parked_stream):
            info = await js.stream_info(stream)
            total += int(info.state.messages or 0)
        return total

    async def routes(self) -> Mapping[str, int]:
        if self._acks is not None:
            await self._acks.settle()
        names = self.names
        counts: dict[str, int] = {}
        for stream, prefix in (
            (names.deliveries_stream, names.deliveries_prefix),
            (names.parked_stream, names.parked_prefix),
        ):
            info = await self.connection.js.stream_info(stream, subjects_filter=prefix + ".>")
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
            self._wake.set()
            for state in self._routes.values():
                state.notify()  # waiting leases end
            pullers = list(self._pullers.values()) + ([self._shared] if self._shared is not None else [])
            for puller in pullers:
                # What arrives from now on it hands back itself; what it kept is held.
                await puller.close(hand_back=False)
            tasks, self._tasks = self._tasks, []
            if tasks:
                # A park under way finishes (its publish is bounded); the rest ends at once.
                _, late = await asyncio.wait(tasks, timeout=self.connection.settings.publish_timeout + 1)
                for task in late:
                    task.cancel()
            await self._held.stop()
            for msg in self._held.take_all():
                # Leased and not ended (a drain cut short), or ready and not leased: due again
                # at once, for another worker.
                with contextlib.suppress(Exception):
                    await msg.nak()
            if self._acks is not None:
                await self._acks.settle()
            if self._nc is not None:
                self._nc = None
                await self.connection.release()
