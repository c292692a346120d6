"""Routing: from the event log to the delivery queue.

One router task per bus consumes the log in batches, asks the rule table's ``Matcher`` which
enabled rules match each event (a scheduled event names its one rule), renders each target's
input and makes one ``Delivery`` per rule target. It puts each event's fan-out in the delivery
queue in one call, and acknowledges the events in the log once their fan-out is committed: from
then on the queue, not the log, holds the work. No task is created per event.

Each delivery takes a slot of its rule target's bound first. When a target has no room, the
router puts what it routed so far, waits for room (counted as ``ThrottledRules``) and goes on, in
order: a full target slows routing down, the log fills up, and ``put_events`` waits or throttles.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from eventbus import redact
from eventbus._logger import get_logger
from eventbus.bus.archives import ArchiveKeeper
from eventbus.bus.clock import Clock
from eventbus.bus.delivery.dispatcher import Slots
from eventbus.bus.logs.protocol import Delivery, DeliveryQueue, EventLog, LogClosedError, LogRecord
from eventbus.bus.metrics import Metrics
from eventbus.bus.outcomes import Outcome
from eventbus.bus.routed import RenderedInput, RoutedEvent, RoutedFeed
from eventbus.bus.table import RuleEntry, RuleTable
from eventbus.envelope import format_time

__all__ = ["Outstanding", "Router"]

_log = get_logger("eventbus.bus")

#: Batches a distributed router commits at once (stored over the network) while it routes on.
_IN_FLIGHT = 4

# One encoder for every event: json.dumps with options builds a new encoder per call.
_encode_event = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class Outstanding:
    """What a bus has taken on and not finished: events not routed yet, deliveries not ended.

    Counted up before the work is handed on and down once it is done, so the counts never fall
    short of the truth; ``wait_idle`` returns when both are zero, without polling.
    """

    __slots__ = ("_idle", "deliveries", "events")

    def __init__(self) -> None:
        self.events = 0
        self.deliveries = 0
        self._idle: anyio.Event | None = None

    def __int__(self) -> int:
        return self.events + self.deliveries

    def routed(self, events: int) -> None:
        self.events -= events
        self._settle()

    def ended(self, deliveries: int) -> None:
        self.deliveries -= deliveries
        self._settle()

    def _settle(self) -> None:
        if self._idle is not None and self.events <= 0 and self.deliveries <= 0:
            self._idle.set()
            self._idle = None

    async def wait_idle(self) -> None:
        while self.events > 0 or self.deliveries > 0:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()


class Router:
    """Consumes ``log`` and puts each event's deliveries in ``queue``."""

    def __init__(
        self,
        bus_name: str,
        *,
        log: EventLog,
        queue: DeliveryQueue,
        table: RuleTable,
        metrics: Metrics,
        outstanding: Outstanding,
        clock: Clock,
        batch: int,
        trace: bool = False,
        distributed: bool = False,
        routed: RoutedFeed | None = None,
        archives: ArchiveKeeper | None = None,
    ) -> None:
        self.bus_name = bus_name
        self._routed = routed if routed is not None else RoutedFeed()
        self._archives = archives
        self._log = log
        self._queue = queue
        self._table = table
        self._metrics = metrics
        self._outstanding = outstanding
        self._clock = clock
        self._batch = batch
        self._trace = trace
        #: Other processes route the same log: this router counts the events it consumed as the
        #: bus's work in hand (not those its bus appended), puts deliveries for other workers to
        #: lease (no slot of this process's taken), and stops when told to, between batches.
        self._distributed = distributed
        self._stopping = False
        self._waiting: anyio.CancelScope | None = None
        #: Where a distributed router's commits run, and how many may be under way.
        self._committing: tuple[TaskGroup, anyio.Semaphore] | None = None

    def stop(self) -> None:
        """Route the batch in hand, then consume no more (a distributed bus leaving)."""
        self._stopping = True
        if self._waiting is not None:
            self._waiting.cancel()

    async def run(self) -> None:
        try:
            if self._distributed:
                # Commits go over the network: the next batch is matched while earlier ones are
                # being stored, up to ``_IN_FLIGHT`` at once. (Each event is acknowledged on its
                # own, so the order they are committed in does not matter.)
                async with anyio.create_task_group() as tg:
                    self._committing = (tg, anyio.Semaphore(_IN_FLIGHT))
                    try:
                        await self._run()
                    except LogClosedError:
                        return  # the commits under way end as they can (see ``_commit_aside``)
            else:
                await self._run()
        except LogClosedError:
            # A distributed queue closed under a put: the events stay unacknowledged in the log,
            # for another worker.
            return

    async def _run(self) -> None:
        log = self._log
        distributed = self._distributed
        while not self._stopping:
            if distributed:
                # Only the wait is cancelled by ``stop``: a batch, once consumed, is routed.
                records = []
                with anyio.CancelScope() as self._waiting:
                    records = await log.consume(self._batch)
                self._waiting = None
                if self._stopping and not records:
                    return
                self._outstanding.events += len(records)
            else:
                records = await log.consume(self._batch)
            if not records:
                return
            deliveries: list[Delivery] = []
            offsets: list[int] = []
            first = 0  # the first record of ``records`` whose offset is not committed yet
            matched = self._match_batch(records)
            for index, record in enumerate(records):
                try:
                    routed, short = self._route(record, None if matched is None else matched[index])
                except Exception as exc:
                    # Whatever one event does to the matcher or the encoder (a RecursionError
                    # from extreme nesting, say) must not stop the router for every other event.
                    self._unroutable(record, exc)
                    offsets.append(record.offset)
                    continue
                if short:
                    # Rare: a target is full. What is routed so far goes first (its slots can
                    # only free once it is in the queue), then wait for room, in order.
                    await self._commit(deliveries, offsets, records[first:index])
                    deliveries, offsets, first = [], [], index
                    for entry, slots in short:
                        entry.counters["ThrottledRules"] += 1
                        await slots.take_waiting()
                deliveries += routed
                offsets.append(record.offset)
            if self._committing is not None:
                tg, room = self._committing
                await room.acquire()
                tg.start_soon(self._commit_aside, deliveries, offsets, records[first:], room)
            else:
                await self._commit(deliveries, offsets, records[first:])
            # Let workers run between batches even when the log never runs dry.
            await anyio.lowlevel.checkpoint()

    async def _commit_aside(
        self, deliveries: list[Delivery], offsets: list[int], records: list[LogRecord], room: anyio.Semaphore
    ) -> None:
        try:
            await self._commit(deliveries, offsets, records)
        except LogClosedError:
            # Stopping: these events stay unacknowledged in the log, for another worker; route no more.
            self.stop()
        finally:
            room.release()

    async def _commit(self, deliveries: list[Delivery], offsets: list[int], records: list[LogRecord]) -> None:
        archives = self._archives
        archived = archives.matches(records) if archives is not None and archives.active else {}
        if deliveries or archived:
            if not self._distributed:
                # Counted before they are handed on: a delivery may end before ``put`` returns.
                self._outstanding.deliveries += len(deliveries)
            delay = 0.05
            while True:
                try:
                    # Archived before the events leave the log: a crash in between archives
                    # them again on the next run, which the archive ignores by event id.
                    if archived:
                        assert archives is not None
                        await archives.keep(archived)
                        archived = {}
                    if deliveries:
                        await self._queue.put(deliveries)
                    break
                except LogClosedError:
                    raise  # stopping (a distributed queue closed): the events stay in the log
                except Exception as exc:
                    # A durable queue that cannot write (a full disk): the events stay in the log,
                    # unacknowledged, and routing waits until the write succeeds. Wall-clock
                    # time: this waits for the disk, not for anything on the bus's clock.
                    _log.error(
                        "routed events could not be stored; trying again",
                        bus=self.bus_name,
                        events=len(offsets),
                        error=f"{type(exc).__name__}: {str(exc)[:300]}",
                        retry_in=delay,
                    )
                    await anyio.sleep(delay)
                    delay = min(delay * 2, 1.0)
        if offsets:
            await self._log.ack(offsets)
            self._outstanding.routed(len(offsets))

    def _unroutable(self, record: LogRecord, exc: Exception) -> None:
        self._metrics.count_bus("UnroutableEvents")
        _log.error(
            "event could not be routed; nothing delivered",
            bus=self.bus_name,
            event_id=record.event.get("id"),
            error=f"{type(exc).__name__}: {str(exc)[:200]}",
        )

    def _dropped(self, event: dict[str, Any], rule: str, target_id: str, exc: Exception) -> None:
        self._table.outcomes.emit(
            Outcome(
                "dropped",
                self.bus_name,
                rule,
                target_id,
                event["id"],
                0,
                self._clock.now(),
                error_type=type(exc).__name__,
                reason=redact.mask(str(exc))[:500],
            )
        )

    def _match_batch(self, records: list[LogRecord]) -> list[set[str] | None] | None:
        """The names of the rules each record's event matches, from one matcher call for the
        batch (one snapshot of the rules, no call per event); ``None`` for a record sent to one
        rule. ``None`` for the whole batch when there is nothing to match, or when one event
        makes the matcher raise: each is then matched alone, so that one alone is unroutable."""
        if not self._table.rules:
            return None
        events = [record.event for record in records if record.target_rule is None]
        if not events:
            return None
        try:
            found = iter(self._table.matcher.match_many(events))
        except Exception:
            return None
        return [None if record.target_rule is not None else next(found) for record in records]

    def _route(
        self, record: LogRecord, matched: set[str] | None = None
    ) -> tuple[list[Delivery], list[tuple[RuleEntry, Slots]]]:
        """The deliveries of ``record`` (``matched``: the rules its event matches, when they are
        known already), and the rule targets among them that had no free slot (their slots are
        the caller's to wait for; the others are taken). Should it raise, the slots it took are
        free again."""
        taken: list[Slots] = []
        try:
            return self._fan_out(record, taken, matched)
        except BaseException:
            for slots in taken:
                slots.free(1)
            raise

    def _fan_out(
        self, record: LogRecord, taken: list[Slots], matched: set[str] | None
    ) -> tuple[list[Delivery], list[tuple[RuleEntry, Slots]]]:
        event = record.event
        rules = self._table.rules
        if record.target_rule is not None:
            names: Iterable[str] = (record.target_rule,)
        else:
            # Matched with the batch as a rule, alone when the batch's call failed.
            names = matched if matched is not None else self._table.matcher.match(event) if rules else ()
            if record.only_rules is not None:
                # A replay to some rules only: matched as usual, delivered to those alone.
                names = [name for name in names if name in record.only_rules]
        only_target = record.target_id
        deliveries: list[Delivery] = []
        short: list[tuple[RuleEntry, Slots]] = []
        metrics = self._metrics
        event_json: str | None = None
        ingestion_text: str | None = None
        # Someone reads bus.routed(): what this event matched and what each target gets.
        watched: list[str] | None = [] if self._routed.active else None
        inputs: list[RenderedInput] = []
        for name in names:
            entry = rules.get(name)
            if entry is None or entry.rule.state != "ENABLED":
                continue
            if watched is not None:
                watched.append(name)
            counters = entry.counters
            counters["MatchedEvents"] += 1
            if not entry.routes:
                continue
            counters["TriggeredRules"] += 1
            if self._trace:
                _log.info("matched", bus=self.bus_name, event_id=event["id"], rule=name)
            for route in entry.routes:
                if only_target is not None and route.target_id != only_target:
                    continue  # a redriven dead letter goes back to the one target it failed for
                if route.target_input is None:
                    if event_json is None:
                        event_json = _encode_event(event)
                    payload = event_json
                else:
                    if ingestion_text is None and route.target_input.uses_ingestion_time:
                        ingestion_text = format_time(record.ingestion_time)
                    try:
                        payload = route.target_input.render(
                            event,
                            rule_name=name,
                            rule_arn=entry.rule.arn,
                            ingestion_time=ingestion_text,
                        )
                    except Exception as exc:  # TransformError; anything else must not stop routing
                        metrics.count_bus("TransformFailures")
                        metrics.count_target(name, route.target_id, "FailedInvocations")
                        if self._table.outcomes.active:
                            self._dropped(event, name, route.target_id, exc)
                        _log.warning(
                            "input transformation failed; nothing delivered",
                            bus=self.bus_name,
                            event_id=event["id"],
                            rule=name,
                            target=route.target_id,
                            error=str(exc),
                        )
                        if watched is not None:
                            inputs.append(RenderedInput(name, route.target_id, None, redact.mask(str(exc))[:500]))
                        continue
                if not self._distributed:
                    slots = route.dispatcher.slots
                    if slots.take():
                        taken.append(slots)
                    else:
                        short.append((entry, slots))
                deliveries.append(
                    Delivery(
                        route.key, event, payload, record.ingestion_time, record.chain, record.offset,
                        event_text=event_json,
                    )
                )
                if watched is not None:
                    inputs.append(RenderedInput(name, route.target_id, payload))
        if watched is not None:
            self._routed.emit(
                RoutedEvent(self.bus_name, event, record.ingestion_time, tuple(watched), tuple(inputs))
            )
        return deliveries, short
