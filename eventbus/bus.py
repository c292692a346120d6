"""``EventBus``: PutEvents, rules, schedules and delivery, on anyio (asyncio or trio).

The journey of an event: ``put_events`` validates each entry on its own and appends the accepted
events to the ``EventLog`` (the transport seam, see docs/architecture.md); one router task consumes
the log in batches, asks the ``Matcher`` which enabled rules match, renders each target's input
and hands the payload to that target's ``Dispatcher`` (delivery.py), whose workers deliver, retry
and dead-letter. The log acknowledges an event when every delivery it caused has ended, which is
what ``async with`` waits for on exit (up to ``drain_timeout``).
"""

from __future__ import annotations

import json
import random as _random
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal

import anyio
import anyio.lowlevel
import structlog

from eventbus.bus_chain import bus_chain, delivering_for
from eventbus.bus_clock import Clock, SystemClock
from eventbus.bus_config import BusConfig
from eventbus.bus_entries import event_from_valid_entry, fast_event, new_event_id, new_event_ids
from eventbus.bus_manage import RuleEntry, RuleManagement
from eventbus.bus_scheduler import Scheduler
from eventbus.delivery import DeliveryItem, Dispatcher
from eventbus.envelope import (
    Event,
    PutEventsEntry,
    format_time,
    validate_entry,
)
from eventbus.errors import BusClosedError, BusValidationError
from eventbus.log import EventLog, InMemoryEventLog, LogClosedError, LogRecord
from eventbus.metrics import Metrics
from eventbus.patterns.matcher import Matcher
from eventbus.targets.base import Target
from eventbus.targets.bus import register_bus, unregister_bus

__all__ = ["BusConfig", "EventBus"]

_log = structlog.get_logger("eventbus.bus")

_BUS_NAME_RE = re.compile(r"[/\.\-_A-Za-z0-9]{1,256}")
_THROTTLED = {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded."}
# One encoder for every event: json.dumps with options builds a new encoder per call.
_encode_event = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class EventBus(RuleManagement):
    """An event bus. ``async with EventBus(name="orders") as bus:`` runs it.

    Rules may be set before or while it runs. ``config`` (or keyword overrides of its fields)
    sets the limits; ``log``, ``clock`` and ``random`` are seams for other transports and tests.
    """

    def __init__(
        self,
        name: str = "default",
        *,
        config: BusConfig | None = None,
        log: EventLog | None = None,
        clock: Clock | None = None,
        random: Callable[[], float] | None = None,
        **overrides: Any,
    ) -> None:
        if not isinstance(name, str) or not _BUS_NAME_RE.fullmatch(name):
            raise BusValidationError(
                f"1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: [/\\.\\-_A-Za-z0-9]+"
            )
        base = config or BusConfig()
        self.config = BusConfig.model_validate({**base.model_dump(), **overrides}) if overrides else base
        self.name = name
        self.arn = f"arn:aws:events:{self.config.region}:{self.config.account}:event-bus/{name}"
        self._eventlog: EventLog = log if log is not None else InMemoryEventLog(self.config.log_capacity)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._rand = random if random is not None else _random.random
        self._metrics = Metrics()
        self._matcher = Matcher()
        self._rules: dict[str, RuleEntry] = {}
        self._scheduler = Scheduler(self._clock, self._fire_schedule)
        self._remaining: dict[int, int] = {}
        self._state: Literal["new", "running", "closing", "closed"] = "new"
        self._tg: anyio.abc.TaskGroup | None = None
        self._scheduler_scope: anyio.CancelScope | None = None
        self._owned_targets: dict[int, Target] = {}
        self._task_scopes: set[anyio.CancelScope] = set()
        self._trace = self.config.trace_events
        self._time_cache: tuple[datetime | None, str] = (None, "")

    def __repr__(self) -> str:
        return f"EventBus({self.name!r}, rules={len(self._rules)}, state={self._state})"

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> EventBus:
        if self._state != "new":
            raise BusClosedError(f"EventBus {self.name} was already started; make a new one")
        # First, so that a name clash with another running bus fails before anything starts.
        register_bus(self)
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._state = "running"
        self._start(self._route_loop)
        self._scheduler_scope = self._start(self._scheduler.run)
        for entry in self._rules.values():
            for route in entry.routes:
                self._start(route.dispatcher.run)
        return self

    def _start(self, run: Callable[[], Awaitable[None]]) -> anyio.CancelScope:
        assert self._tg is not None
        # Made here, not in the task, so that shutdown can cancel a task that has not run yet.
        scope = anyio.CancelScope(shield=True)
        self._task_scopes.add(scope)
        self._tg.start_soon(self._shielded, run, scope)
        return scope

    async def _shielded(self, run: Callable[[], Awaitable[None]], scope: anyio.CancelScope) -> None:
        # Background tasks ignore a cancelled caller: only shutdown stops them, after the drain,
        # so leaving ``async with`` through a cancellation still delivers what was accepted.
        try:
            with scope:
                await run()
        finally:
            self._task_scopes.discard(scope)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._tg is not None
        self._state = "closing"
        unregister_bus(self)
        try:
            if self._scheduler_scope is not None:
                self._scheduler_scope.cancel()
            # Shielded: a cancelled caller still gets its in-flight events drained (bounded).
            with anyio.move_on_after(self.config.drain_timeout, shield=True):
                while self._eventlog.pending():
                    await anyio.sleep(0.005)
            self._count_undelivered()
            for scope in list(self._task_scopes):
                scope.cancel()
            self._tg.cancel_scope.cancel()
        finally:
            # Not given the body's exception: that one propagates as itself (not in a group)
            # once this returns; only a failure of the bus's own tasks is raised from here.
            await self._tg.__aexit__(None, None, None)
            with anyio.CancelScope(shield=True):
                await self._eventlog.close()
                for target in self._owned_targets.values():
                    try:
                        await target.aclose()
                    except Exception as close_exc:
                        _log.error("target close failed", bus=self.name, error=str(close_exc))
            self._state = "closed"
        return None

    def _count_undelivered(self) -> None:
        events = self._eventlog.pending()
        if not events:
            return
        deliveries = sum(r.dispatcher.outstanding for e in self._rules.values() for r in e.routes)
        self._metrics.count_bus("UndeliveredAtShutdown", events)
        _log.error(
            "undelivered at shutdown",
            bus=self.name,
            events=events,
            unrouted_events=self._eventlog.unconsumed(),
            deliveries=deliveries,
            drain_timeout=self.config.drain_timeout,
        )

    @property
    def running(self) -> bool:
        return self._state == "running"

    def pending(self) -> int:
        """Events accepted and not yet delivered or dead-lettered to every target."""
        return self._eventlog.pending()

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every accepted event has ended; ``False`` if ``timeout`` came first."""
        with anyio.move_on_after(timeout):
            while self._eventlog.pending():
                await anyio.sleep(0.002)
            return True
        return False

    def metrics(self) -> dict[str, Any]:
        """Counters: ``{"bus": {...}, "rules": {rule: {...}}, "targets": {"rule/id": {...}}}``."""
        return self._metrics.snapshot()

    # -- PutEvents -------------------------------------------------------------------------

    async def put_events(
        self, entries: Sequence[Mapping[str, Any] | PutEventsEntry | Event]
    ) -> dict[str, Any]:
        """PutEvents: validate each entry on its own; answer in request order."""
        if self._state != "running":
            raise BusClosedError(f"EventBus {self.name} is not running (use 'async with bus:')")
        if type(entries) is not list:
            if isinstance(entries, Mapping | PutEventsEntry | Event | str | bytes):
                raise BusValidationError("Entries must be a list of PutEvents entries.")
            entries = list(entries)
        limit = self.config.max_entries_per_put
        if not 1 <= len(entries) <= limit:
            bound = "greater than or equal to 1" if not entries else f"less than or equal to {limit}"
            raise BusValidationError(
                "1 validation error detected: Value at 'entries' failed to satisfy constraint: "
                f"Member must have length {bound}"
            )
        chain = bus_chain.get()
        looped = self.name in chain
        now = self._clock.now()
        second = now.replace(microsecond=0)
        if second != self._time_cache[0]:
            # Formatting a time costs more than a put's other per-call work: once a second.
            self._time_cache = (second, format_time(second))
        now_text = self._time_cache[1]
        results: list[dict[str, str]] = []
        records: list[LogRecord] = []
        positions: list[int] = []
        config = self.config
        account, region, max_size = config.account, config.region, config.max_entry_size
        for entry, event_id in zip(entries, new_event_ids(len(entries)), strict=True):
            event = fast_event(
                entry,
                account=account,
                region=region,
                now_text=now_text,
                max_entry_size=max_size,
                event_id=event_id,
            )
            if event is not None:
                # fast_event takes plain dicts only.
                bus_name = entry.get("EventBusName") if isinstance(entry, dict) else None
            elif isinstance(entry, Event):
                event, bus_name = entry.to_dict(), None
            else:
                raw = entry.to_dict() if isinstance(entry, PutEventsEntry) else entry
                error = validate_entry(raw, max_entry_size=max_size)
                if error is not None:
                    results.append(error.to_dict())
                    continue
                event = event_from_valid_entry(
                    raw, account=account, region=region, now_text=now_text, event_id=event_id
                )
                bus_name = raw.get("EventBusName")
            if bus_name is not None and bus_name != self.name and bus_name != self.arn:
                results.append(
                    {
                        "ErrorCode": "InvalidArgument",
                        "ErrorMessage": "Parameter EventBusName is not valid. Reason: "
                        f"this is event bus {self.name}, not {bus_name}.",
                    }
                )
                continue
            results.append({"EventId": event["id"]})
            if looped:
                continue
            records.append(LogRecord(event, now, chain))
            positions.append(len(results) - 1)
        if looped:
            self._drop_looped(results, chain)
        elif records:
            try:
                # A target publishing to the bus that delivers to it would wait on itself.
                wait = self.config.when_full == "wait" and delivering_for.get() != self.name
                taken = await self._eventlog.append(records, wait=wait)
            except LogClosedError:
                raise BusClosedError(f"EventBus {self.name} closed while the call waited for room") from None
            for position in positions[taken:]:
                results[position] = dict(_THROTTLED)
            self._metrics.count_bus("AcceptedEvents", taken)
            self._metrics.count_bus("PutEventsThrottledEntries", len(records) - taken)
            if self.config.trace_events:
                for record in records[:taken]:
                    _log.info("accepted", bus=self.name, event_id=record.event["id"])
        failed = sum(1 for r in results if "ErrorCode" in r)
        self._metrics.count_bus("PutEventsEntries", len(results))
        self._metrics.count_bus("PutEventsFailedEntries", failed)
        return {"FailedEntryCount": failed, "Entries": results}

    def _drop_looped(self, results: list[dict[str, str]], chain: tuple[str, ...]) -> None:
        # Answered as accepted so the sending bus does not retry a loop into its dead letters.
        ids = [r["EventId"] for r in results if "EventId" in r]
        self._metrics.count_bus("LoopedEvents", len(ids))
        _log.warning("loop: event already passed through this bus", bus=self.name, chain=chain, event_ids=ids)

    # -- routing ---------------------------------------------------------------------------

    async def _route_loop(self) -> None:
        log = self._eventlog
        while True:
            records = await log.consume(self.config.router_batch)
            if not records:
                return
            # The batch in one matcher call: one snapshot of the rules, no call per event.
            found = iter(self._matcher.match_many([r.event for r in records if r.target_rule is None]) if self._rules else ())
            done: list[int] = []
            for record in records:
                blocked = self._route(record, (record.target_rule,) if record.target_rule is not None else next(found, ()))
                if blocked is None:
                    done.append(record.offset)
                    continue
                # Rare: a target's queue is full. Wait for room, in order, before routing on.
                for entry, dispatcher, item in blocked:
                    await dispatcher.submit(item)
                    entry.counters["ThrottledRules"] += 1
            if done:
                log.ack(done)
            # Let workers run between batches even when the log never runs dry.
            await anyio.lowlevel.checkpoint()

    def _route(self, record: LogRecord, names: Iterable[str]) -> list[tuple[RuleEntry, Dispatcher, DeliveryItem]] | None:
        """Hand ``record`` to the targets of the rules ``names``: ``None`` when it caused no
        delivery (ack it now), else the deliveries whose target had no room (usually none)."""
        event = record.event
        metrics = self._metrics
        trace = self._trace
        event_json: str | None = None
        ingestion_text: str | None = None
        count = 0
        blocked: list[tuple[RuleEntry, Dispatcher, DeliveryItem]] = []
        for name in names:
            entry = self._rules.get(name)
            if entry is None or entry.rule.state != "ENABLED":
                continue
            counters = entry.counters
            counters["MatchedEvents"] += 1
            if not entry.routes:
                continue
            counters["TriggeredRules"] += 1
            if trace:
                _log.info("matched", bus=self.name, event_id=event["id"], rule=name)
            for route in entry.routes:
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
                        _log.warning(
                            "input transformation failed; nothing delivered",
                            bus=self.name,
                            event_id=event["id"],
                            rule=name,
                            target=route.target_id,
                            error=str(exc),
                        )
                        continue
                # Offered at once: no delivery can end (and look up ``_remaining``) before this
                # synchronous method returns and the count below is in place.
                item = DeliveryItem(payload, event, record.ingestion_time, record.chain, record.offset)
                if not route.dispatcher.offer(item):
                    blocked.append((entry, route.dispatcher, item))
                count += 1
        if not count:
            return None
        self._remaining[record.offset] = count
        return blocked

    def _deliveries_done(self, items: list[DeliveryItem]) -> None:
        remaining = self._remaining
        done: list[int] = []
        for item in items:
            offset: int = item.token
            left = remaining.get(offset, 1) - 1
            if left > 0:
                remaining[offset] = left
            else:
                remaining.pop(offset, None)
                done.append(offset)
        if done:
            self._eventlog.ack(done)

    # -- schedules -------------------------------------------------------------------------

    async def _fire_schedule(self, rule: str, when: datetime) -> None:
        entry = self._rules.get(rule)
        if entry is None or entry.rule.state != "ENABLED":
            return
        event = {
            "version": "0",
            "id": new_event_id(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.config.account,
            "time": format_time(when),
            "region": self.config.region,
            "resources": [entry.rule.arn],
            "detail": {},
        }
        if self.config.trace_events:
            _log.info("scheduled", bus=self.name, rule=rule, event_id=event["id"])
        await self._eventlog.append([LogRecord(event, self._clock.now(), (), target_rule=rule)])
        self._metrics.count_bus("AcceptedEvents")
