"""``JetStreamEventLog``: a bus's events on a NATS JetStream stream, routed by many workers.

``append`` publishes each event to the bus's events stream with its id as ``Nats-Msg-Id`` (a
PutEvents retried within the duplicate window is stored once), all acknowledgements awaited
together. Every process running the bus routes from one durable consumer, ``router``: each event
goes to one worker, which puts its fan-out on the deliveries stream (``queue.py``) and then
acknowledges it. A worker that dies before that leaves the event to another one after the ack
wait. ``open`` makes or checks what the bus needs on the server (``layout.py``).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import anyio
import nats.js.errors

from eventbus._logger import get_logger
from eventbus.bus.clock import Clock
from eventbus.bus.logs.jetstream.acks import Acks
from eventbus.bus.logs.jetstream.archives import JetStreamArchiveStore
from eventbus.bus.logs.jetstream.connection import JetStreamConnection
from eventbus.bus.logs.jetstream.held import Held
from eventbus.bus.logs.jetstream.layout import bucket, prepare_bus
from eventbus.bus.logs.jetstream.names import BusNames
from eventbus.bus.logs.jetstream.presence import Presence
from eventbus.bus.logs.jetstream.publish import Publisher
from eventbus.bus.logs.jetstream.pull import Puller, delivery_info
from eventbus.bus.logs.jetstream.queue import JetStreamDeliveryQueue, message_id
from eventbus.bus.logs.jetstream.rules import RuleBucket
from eventbus.bus.logs.jetstream.settings import JetStreamSettings
from eventbus.bus.logs.protocol import LogClosedError, LogRecord
from eventbus.patterns.reading import read_json

__all__ = ["JetStreamEventLog"]

_log = get_logger("eventbus.jetstream")

#: Seconds a lingering pull waits before asking again (the only idle traffic of a worker).
PULL_WAIT = 5.0

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

#: Scheduled events get ids derived from (bus, rule, fire time): every worker firing the same
#: period publishes the same id, so JetStream stores the period's event once.
_SCHEDULE_IDS = uuid.UUID("6f1c1c43-3b55-4f5e-9d0a-7a0c4e6b2d15")


def _record_head(record: LogRecord) -> str:
    """The JSON of a record's fields, open for the event to follow."""
    head = {"t": record.ingestion_time.isoformat(), "c": list(record.chain), "r": record.target_rule}
    if record.target_id is not None:
        head["ti"] = record.target_id
    if record.only_rules is not None:
        head["or"] = list(record.only_rules)
    return _encode(head)[:-1] + ',"e":'


def encode_record(record: LogRecord, heads: dict[tuple[Any, ...], str] | None = None) -> bytes:
    """A record as a message body: its fields and the event, as JSON (the event's own text when
    the caller has it, not encoded again). ``heads`` keeps the fields' JSON across the records
    of one call, which mostly share them (one PutEvents: one ingestion time, one chain)."""
    if heads is None:
        head = _record_head(record)
    else:
        key = (record.ingestion_time, record.chain, record.target_rule, record.target_id, record.only_rules)
        head = heads.get(key) or heads.setdefault(key, _record_head(record))
    text = record.text if record.text is not None else _encode(record.event)
    return (head + text + "}").encode()


def decode_record(data: bytes, offset: int) -> LogRecord:
    """The record ``encode_record`` wrote (``ValueError``, ``KeyError``... if it is not one)."""
    body = read_json(data)
    only = body.get("or")
    return LogRecord(
        body["e"],
        datetime.fromisoformat(body["t"]),
        tuple(body.get("c") or ()),
        body.get("r"),
        offset,
        target_id=body.get("ti"),
        only_rules=None if only is None else tuple(only),
    )


class JetStreamEventLog:
    """The event log of one bus on NATS JetStream (see the module's docstring).

    Give it the settings as keywords (``JetStreamEventLog(servers=[...], stream="EVENTBUS")``),
    as ``settings=JetStreamSettings(...)``, or share one ``connection`` between the logs of a
    process's buses. Needs asyncio (nats-py runs on asyncio only).
    """

    #: Another process may take what this one appends or puts: the bus counts only the work
    #: this process holds (an event it routes, a delivery it delivers) as its own.
    distributed = True

    def __init__(
        self,
        servers: Sequence[str] | None = None,
        *,
        settings: JetStreamSettings | None = None,
        connection: JetStreamConnection | None = None,
        **options: Any,
    ) -> None:
        if connection is not None:
            if settings is not None or options or servers is not None:
                raise ValueError("give a JetStreamEventLog either a connection or settings, not both")
            settings = connection.settings
        elif settings is None:
            if servers is not None:
                options["servers"] = list(servers)
            settings = JetStreamSettings.model_validate(options)
        elif options or servers is not None:
            raise ValueError("give a JetStreamEventLog either settings or keyword options, not both")
        self.settings = settings
        self.connection = connection if connection is not None else JetStreamConnection(settings)
        self.names: BusNames | None = None
        self._nc: Any = None
        self._publisher: Publisher | None = None
        self._puller: Puller | None = None
        self._acks: Acks | None = None
        self._held = Held(settings.ack_wait)
        self._queue: JetStreamDeliveryQueue | None = None
        self._rules: RuleBucket | None = None
        self._schedules: Any = None
        #: This worker's entry in the workers bucket, made when it starts routing (a front
        #: that only appends is no worker).
        self._presence: Presence | None = None
        self._closed = False
        self._opened = False

    def __repr__(self) -> str:
        bus = self.names.bus if self.names is not None else None
        return f"JetStreamEventLog({self.settings.describe_servers()!r}, stream={self.settings.stream!r}, bus={bus!r})"

    # -- the EventLog protocol ---------------------------------------------------------------

    async def open(self, bus: str, clock: Clock) -> JetStreamDeliveryQueue:
        if self._opened:
            raise RuntimeError("a JetStreamEventLog serves one bus: make one per bus")
        self._opened = True
        self.names = names = BusNames(self.settings.stream, bus)
        nc = await self.connection.acquire()
        try:
            js = self.connection.js
            await prepare_bus(js, names, self.settings)
            self._nc = nc
            self._acks = Acks(nc)
            self._publisher = Publisher(nc, self.settings)
            await self._publisher.start()
            self._puller = Puller(nc, names.events_stream, names.router, on_arrival=self._arrived)
            await self._puller.start()
            self._held.start()
            queue = JetStreamDeliveryQueue(self.connection, names, clock, self._publisher)
            await queue.open()
        except BaseException:
            await self._shutdown()
            raise
        self._queue = queue
        return queue

    async def append(self, records: Sequence[LogRecord], *, wait: bool = True) -> int:
        if self._closed:
            raise LogClosedError("the event log is closed")
        publisher, names = self._publisher, self.names
        if publisher is None or names is None:
            raise RuntimeError("open() the JetStreamEventLog first")
        heads: dict[tuple[Any, ...], str] = {}
        bodies = [encode_record(record, heads) for record in records]
        ids = [
            message_id(record.event, None if record.target_id is None else f"{record.target_rule}/{record.target_id}")
            for record in records
        ]
        results = await publisher.publish_many(names.events_subject, bodies, ids)
        taken = 0
        for record, result in zip(records, results, strict=True):
            if not isinstance(result, int):
                _log.error(
                    "event not stored; PutEvents answers it failed",
                    bus=names.bus,
                    event_id=record.event.get("id"),
                    reason=str(result),
                )
                break
            record.offset = result
            taken += 1
        return taken

    async def consume(self, max_records: int) -> list[LogRecord]:
        puller = self._puller
        if puller is None:
            raise RuntimeError("open() the JetStreamEventLog first")
        if self._presence is None and self.names is not None:
            self._presence = Presence(self.connection, self.names.bus)
            self._presence.start()
        # The next batch is asked for while this one is routed: a router back for more finds it
        # at hand instead of waiting a round trip. (Held meanwhile, and renewed.)
        puller.prefetch = max_records
        while not self._closed:
            msgs = await puller.pull(max_records, PULL_WAIT)
            if self._closed:
                for msg in msgs:
                    with contextlib.suppress(Exception):
                        await msg.nak()
                break
            records = []
            for msg in msgs:
                record = await self._decode(msg)
                if record is not None:
                    records.append(record)  # held since it arrived (``_arrived``)
            if records:
                return records
        return []

    def _arrived(self, msg: Any) -> None:
        # Fetched ahead, it is this worker's from now on: kept leased until it is routed.
        try:  # noqa: SIM105 (a try costs nothing here; a suppress context is a call a message)
            self._held.hold(delivery_info(msg.reply)[1], msg)
        except (ValueError, IndexError):
            pass

    async def _decode(self, msg: Any) -> LogRecord | None:
        try:
            _, seq = delivery_info(msg.reply)
            return decode_record(msg.data, seq)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            # Not ours to read (published by hand?): never handed out again.
            _log.error("unreadable message on the events stream; dropped", reply=msg.reply, error=str(exc))
            with contextlib.suppress(ValueError, IndexError):
                self._held.drop(delivery_info(msg.reply)[1])
            with contextlib.suppress(Exception):
                await msg.term()
            return None

    async def ack(self, offsets: Sequence[int]) -> None:
        if self._acks is None:
            return
        await self._acks.ack([m for m in (self._held.drop(offset) for offset in offsets) if m is not None])

    async def pending(self) -> int:
        names = self.names
        if names is None or self._nc is None or self._acks is None:
            return 0
        await self._acks.settle()
        info = await self.connection.js.consumer_info(names.events_stream, names.router)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    def pending_events(self) -> list[dict[str, Any]]:
        return []  # on the stream: a restart, or another worker, routes them

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            if self._puller is not None:
                # From now on it hands back what arrives; what it fetched ahead is held.
                await self._puller.close(hand_back=False)
            # Handed back at once rather than after the ack wait: another worker takes them.
            # Newest first: the server hands out what was handed back last first, so the
            # oldest comes out first again.
            await _naks(self._held.take_all()[::-1])
            if self._acks is not None:
                await self._acks.settle()
            await self._shutdown()

    async def _shutdown(self) -> None:
        await self._held.stop()
        if self._presence is not None:
            await self._presence.stop()
        if self._puller is not None:
            await self._puller.close()
        if self._publisher is not None:
            await self._publisher.stop()
        if self._rules is not None:
            await self._rules.stop()
        if self._nc is not None or self._opened:
            self._nc = None
            await self.connection.release()

    # -- what the bus asks of a distributed log ----------------------------------------------

    def schedule_event_id(self, rule: str, when: datetime) -> str:
        """The id of rule ``rule``'s scheduled event for ``when``: the same in every worker."""
        bus = self.names.bus if self.names is not None else ""
        return str(uuid.uuid5(_SCHEDULE_IDS, f"{bus}/{rule}/{when.isoformat()}"))

    async def claim_schedule(self, rule: str, when: datetime) -> bool:
        """Whether this worker fires rule ``rule``'s period ``when``: the first worker to move the
        rule's entry in the schedules bucket from an earlier time to ``when`` (a revision check:
        an update naming the revision it read) does; the others see ``when`` there, or lose the
        race, and do not. The entry keeps the last fire time across restarts."""
        names = self.names
        if names is None:
            return False
        try:
            if self._schedules is None:
                self._schedules = await bucket(self.connection.js, names.schedules_bucket, self.settings, history=1)
            kv = self._schedules
            value = when.isoformat().encode()
            try:
                entry = await kv.get(rule)
            except nats.js.errors.KeyNotFoundError:
                entry = None
            if entry is None or entry.value is None:
                await kv.create(rule, value)
                return True
            if datetime.fromisoformat(entry.value.decode()) >= when:
                return False  # another worker fired this period
            await kv.update(rule, value, last=entry.revision)
            return True
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.BadRequestError):
            return False  # another worker won the race for this period
        except Exception as exc:
            # Unsure whether someone else fired: skipping a period beats firing it twice.
            _log.warning("schedule not fired: its claim failed", bus=names.bus, rule=rule, error=str(exc))
            return False

    def front(self, bus: str) -> JetStreamEventLog:
        """A log for bus ``bus`` of the same deployment, on this log's connection: where a bus
        target of this bus appends (the bus is routed by whichever workers run it)."""
        return JetStreamEventLog(connection=self.connection)

    def archive_store(self) -> JetStreamArchiveStore:
        """The deployment's archives and replays (streams and a bucket every worker shares)."""
        return JetStreamArchiveStore(self.connection)

    async def rule_bucket(self) -> RuleBucket:
        """The bucket of the rules put while the bus runs (made on first use)."""
        names = self.names
        if names is None:
            raise RuntimeError("open() the JetStreamEventLog first")
        if self._rules is None:
            kv = await bucket(self.connection.js, names.rules_bucket, self.settings, history=5)
            self._rules = RuleBucket(kv, names.bus)
        return self._rules


async def _naks(msgs: Sequence[Any], delay: float | None = None) -> None:
    for msg in msgs:
        with contextlib.suppress(Exception):
            await msg.nak(delay=delay)
