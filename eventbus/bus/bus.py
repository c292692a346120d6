"""``EventBus``: PutEvents, rules, schedules and delivery, on anyio (asyncio or trio).

The journey of an event: ``put_events`` validates each entry on its own and appends the accepted
events to the ``EventLog`` (see docs/architecture.md); the router (router.py) consumes the log,
matches the rules of the ``RuleTable`` (table.py), puts one ``Delivery`` per rule target in the
``DeliveryQueue`` and acknowledges the event; each rule target's ``Dispatcher`` (delivery/)
leases its deliveries, delivers, retries and dead-letters. ``async with`` waits on exit (up to
``drain_timeout``) until every accepted event is routed and every delivery has ended.
"""

from __future__ import annotations

import random as _random
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal

import anyio

from eventbus._logger import get_logger
from eventbus.bus.archives import ArchiveKeeper
from eventbus.bus.chain import bus_chain, delivering_for
from eventbus.bus.clock import Clock, SystemClock
from eventbus.bus.config import BusConfig
from eventbus.bus.delivery.retry import RetryPolicy
from eventbus.bus.entries import (
    entry_from_event_shape,
    event_from_valid_entry,
    fast_event,
    is_event_shaped,
    new_event_id,
    new_event_ids,
)
from eventbus.bus.logs.archives import Archive, ArchiveStore, InMemoryArchiveStore, Replay
from eventbus.bus.logs.memory import InMemoryEventLog
from eventbus.bus.logs.protocol import DeliveryQueue, EventLog, KeepsSchedules, LogClosedError, LogRecord
from eventbus.bus.metrics import Metrics
from eventbus.bus.outcomes import Outcomes, OutcomeStream
from eventbus.bus.routed import RoutedFeed, RoutedStream
from eventbus.bus.router import Outstanding, Router
from eventbus.bus.rule_sync import RuleSync
from eventbus.bus.rules import Rule, RuleState, RuleTarget, rule_arn
from eventbus.bus.table import F, RuleTable
from eventbus.envelope import (
    Event,
    PutEventsEntry,
    format_time,
    validate_entry,
)
from eventbus.errors import (
    BackendError,
    BusClosedError,
    BusValidationError,
    NonRetryableError,
    RuleNotFoundError,
)
from eventbus.patterns import Pattern
from eventbus.targets.base import Target
from eventbus.targets.bus import BusRegistry, PutEventsSink, default_registry

__all__ = ["BusConfig", "EventBus"]

_log = get_logger("eventbus.bus")

_BUS_NAME_RE = re.compile(r"[/\.\-_A-Za-z0-9]{1,256}")
_THROTTLED = {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded."}
#: Seconds a distributed bus waits at start for its rule bucket's current entries.
_RULES_READY = 30.0


def _internal_failure(exc: Exception) -> dict[str, str]:
    return {"ErrorCode": "InternalFailure", "ErrorMessage": f"The event could not be stored: {str(exc)[:500]}"}


def _not_an_event_field(key: str) -> dict[str, str]:
    return {
        "ErrorCode": "InvalidArgument",
        "ErrorMessage": f"Parameter {key} is not valid. Reason: {key} is not a field of an event "
        "(source, detail-type, detail, resources, time) nor of a PutEvents entry.",
    }


class EventBus:
    """An event bus. ``async with EventBus(name="orders") as bus:`` runs it.

    Rules may be set before or while it runs. ``config`` (or keyword overrides of its fields)
    sets the limits; ``log``, ``clock`` and ``random`` are seams for other transports and tests;
    ``registry`` is where it is found by name while it runs (``default_registry`` unless given).
    ``front_only`` makes a front: it takes events and appends them to a log that other processes
    route (a distributed log), and routes nothing itself.
    """

    def __init__(
        self,
        name: str = "default",
        *,
        config: BusConfig | None = None,
        log: EventLog | None = None,
        clock: Clock | None = None,
        random: Callable[[], float] | None = None,
        registry: BusRegistry | None = None,
        front_only: bool = False,
        archives: ArchiveStore | None = None,
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
        #: Where the running bus is found by name (bus targets, the HTTP API).
        self.registry = registry if registry is not None else default_registry
        self._metrics = Metrics()
        self._outcomes = Outcomes()
        #: Other processes route this bus's log too (NATS JetStream): the bus counts the work it
        #: holds (events it routes, deliveries it delivers), not what it accepted, and leaves
        #: the rest on the log for the others when it stops.
        self._distributed = bool(getattr(self._eventlog, "distributed", False))
        self._routed = RoutedFeed()
        self._table = RuleTable(
            name,
            config=self.config,
            clock=self._clock,
            metrics=self._metrics,
            fire=self._fire_schedule,
            on_done=self._deliveries_ended,
            rand=self._rand,
            outcomes=self._outcomes,
            on_leased=self._deliveries_leased,
            distributed=self._distributed,
            resolver=self._resolve_bus if self._distributed else None,
            on_adopt=self._deliveries_adopted,
        )
        self._router: Router | None = None
        self._rule_sync: RuleSync | None = None
        self._front_only = front_only
        #: Fronts of the other buses this one's bus targets reach through its backend, by name.
        self._fronts: dict[str, EventBus] = {}
        self._fronts_lock: anyio.Lock | None = None
        self._queue: DeliveryQueue | None = None
        #: Where archives and replays are kept: given, the log's own (a durable log's file), or
        #: in memory; opened with the bus.
        self._archive_store = archives
        self._archives = ArchiveKeeper(
            name,
            bus_arn=self.arn,
            region=self.config.region,
            account=self.config.account,
            clock=self._clock,
            put=self._put_replayed,
            rule_names=lambda: list(self._table.rules),
            rule_arn=lambda rule: rule_arn(self.config.region, self.config.account, name, rule),
        )
        self._replay_scope: anyio.CancelScope | None = None
        self._outstanding = Outstanding()
        self._state: Literal["new", "running", "closing", "closed"] = "new"
        self._tg: anyio.abc.TaskGroup | None = None
        self._scheduler_scope: anyio.CancelScope | None = None
        self._task_scopes: set[anyio.CancelScope] = set()
        self._trace = self.config.trace_events
        self._time_cache: tuple[datetime | None, str] = (None, "")

    def __repr__(self) -> str:
        return f"EventBus({self.name!r}, rules={len(self._table)}, state={self._state})"

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> EventBus:
        if self._state != "new":
            raise BusClosedError(f"EventBus {self.name} was already started; make a new one")
        if self._front_only:
            self._queue = await self._eventlog.open(self.name, self._clock)
            self._state = "running"
            return self
        # First, so that a name clash with another running bus fails before anything starts.
        # (A distributed bus is reached through its backend's streams, not by this registry.)
        if not self._distributed:
            self.registry.register(self)
        try:
            queue = await self._eventlog.open(self.name, self._clock)
            if self._distributed:
                # What the log holds is every worker's: this one holds nothing yet.
                pending: Mapping[str, int] = {}
            else:
                # A durable log reopened holds what an earlier run left: it is this run's work too.
                self._outstanding.events = await self._eventlog.pending()
                pending = await queue.routes()
                if isinstance(self._eventlog, KeepsSchedules):
                    self._table.scheduler.resume(await self._eventlog.last_fires())
            store = self._archive_store
            if store is None:
                own = getattr(self._eventlog, "archive_store", None)
                store = own() if own is not None else InMemoryArchiveStore()
                self._archive_store = store
            await self._archives.open(store)
        except BaseException:
            self.registry.unregister(self)
            raise
        routes = self._table.route_keys()
        parked = {key: n for key, n in pending.items() if key not in routes}
        pending = {key: n for key, n in pending.items() if key in routes}
        if parked:
            # Deliveries for rule targets this run does not configure: kept, not delivered, not
            # waited for; a target put again under the same rule and id takes them over.
            _log.warning(
                "deliveries wait for rule targets that are not configured",
                bus=self.name,
                routes={key: n for key, n in sorted(parked.items())},
            )
        self._outstanding.deliveries = sum(pending.values())
        self._queue = queue
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            await self._follow_shared_rules()
        except BaseException:
            tg.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                await tg.__aexit__(None, None, None)
                await queue.close()
                await self._eventlog.close()
            self.registry.unregister(self)
            raise
        self._state = "running"
        router = Router(
            self.name,
            log=self._eventlog,
            queue=queue,
            table=self._table,
            metrics=self._metrics,
            outstanding=self._outstanding,
            clock=self._clock,
            batch=self.config.router_batch,
            trace=self.config.trace_events,
            distributed=self._distributed,
            routed=self._routed,
            archives=self._archives,
        )
        self._router = router
        self._start(router.run)
        self._scheduler_scope = self._start(self._table.scheduler.run)
        self._replay_scope = self._start(self._archives.run_replays)
        self._start(self._archives.run_expiry)
        self._table.start(self._start, queue, pending, parked)
        return self

    async def _follow_shared_rules(self) -> None:
        """A log that keeps a rule bucket (JetStream): apply what it holds before routing, follow
        it from then on, and write the rule changes made here to it."""
        rule_bucket = getattr(self._eventlog, "rule_bucket", None)
        if rule_bucket is None:
            return
        sync = RuleSync(self._table, await rule_bucket())
        self._start(sync.follow)
        with anyio.move_on_after(_RULES_READY):
            await sync.ready.wait()
        if not sync.ready.is_set():
            raise BackendError(
                f"EventBus {self.name}: the rules bucket did not answer within {_RULES_READY:g} s"
            )
        sync.attach()
        self._start(sync.write)
        self._rule_sync = sync

    async def _resolve_bus(self, name: str) -> PutEventsSink | None:
        """Bus ``name`` as this bus's targets reach it through the shared backend: a front that
        appends to its stream, whichever process routes it."""
        if name == self.name:
            return self
        front = self._fronts.get(name)
        if front is not None:
            return front
        make = getattr(self._eventlog, "front", None)
        if make is None:
            return self.registry.lookup(name)
        if self._fronts_lock is None:
            self._fronts_lock = anyio.Lock()
        async with self._fronts_lock:
            front = self._fronts.get(name)
            if front is None:
                try:
                    front = EventBus(name, log=make(name), config=self.config, clock=self._clock, front_only=True)
                except BusValidationError as exc:
                    raise NonRetryableError(str(exc)) from None
                await front.__aenter__()
                self._fronts[name] = front
        return front

    async def flush_rules(self) -> None:
        """Until every rule change made through this bus is stored where the other workers of a
        distributed bus read it (at once for a bus that shares its rules with no one)."""
        if self._rule_sync is not None:
            await self._rule_sync.flush()

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

    def stop_taking(self) -> None:
        """Take no more events (``put_events`` raises ``BusClosedError``, schedules stop) while
        what was accepted is still delivered; leaving ``async with`` ends the drain.

        The bus stays reachable by name until then, but a new bus of the same name may take its
        place (a reload starts the new buses while the old ones deliver what they accepted).
        """
        if self._state == "running":
            self._state = "closing"
        if self._scheduler_scope is not None:
            self._scheduler_scope.cancel()
        if self._distributed:
            # The log and the queue go on without this worker: it finishes the work in hand
            # and takes no more; the other workers (or the next start) take the rest.
            if self._router is not None:
                self._router.stop()
            self._table.stop_dispatchers()
        if self._replay_scope is not None:
            # Replays stop putting events; one under way resumes when the bus runs again.
            self._replay_scope.cancel()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        if self._front_only:
            self._state = "closed"
            with anyio.CancelScope(shield=True):
                if self._queue is not None:
                    await self._queue.close()
                await self._eventlog.close()
            return None
        assert self._tg is not None
        self.stop_taking()
        self.registry.unregister(self)
        try:
            # Shielded: a cancelled caller still gets its in-flight events drained (bounded).
            with anyio.move_on_after(self.config.drain_timeout, shield=True):
                await self._outstanding.wait_idle()
            if self._rule_sync is not None:
                # Rule changes made here reach the other workers before this one leaves.
                with anyio.move_on_after(_RULES_READY, shield=True):
                    await self._rule_sync.flush()
            self._table.stop()
            for scope in list(self._task_scopes):
                scope.cancel()
            self._tg.cancel_scope.cancel()
        finally:
            # Not given the body's exception: that one propagates as itself (not in a group)
            # once this returns; only a failure of the bus's own tasks is raised from here.
            try:
                await self._tg.__aexit__(None, None, None)
            finally:
                # Counted once every delivery task has ended, so a delivery that completed while
                # the drain was being cut short is not counted as undelivered.
                self._count_undelivered()
            with anyio.CancelScope(shield=True):
                for front in list(self._fronts.values()):
                    await front.__aexit__(None, None, None)
                if self._archives.store is not None:
                    try:
                        await self._archives.store.close()
                    except Exception as exc:
                        _log.error("archive store close failed", bus=self.name, error=str(exc))
                if self._queue is not None:
                    await self._queue.close()
                await self._eventlog.close()
                await self._table.aclose_targets()
            self._outcomes.end()
            self._routed.end()
            self._state = "closed"
        return None

    def _count_undelivered(self) -> None:
        events, deliveries = self._outstanding.events, self._outstanding.deliveries
        if events <= 0 and deliveries <= 0:
            return
        if self._distributed:
            # Nothing is lost: closing hands them back to the log for another worker.
            _log.warning(
                "work in hand handed back at shutdown",
                bus=self.name,
                events=events,
                deliveries=deliveries,
                drain_timeout=self.config.drain_timeout,
            )
            return
        if getattr(self._eventlog, "durable", False):
            # Nothing is lost: the next run on the same storage resumes it.
            _log.info(
                "pending work kept for the next run",
                bus=self.name,
                unrouted_events=events,
                deliveries=deliveries,
            )
            return
        self._metrics.count_bus("UndeliveredAtShutdown", events + deliveries)
        _log.error(
            "undelivered at shutdown",
            bus=self.name,
            # The events a process exit loses (none for a durable backend, which keeps them).
            events=len(self.pending_events()),
            unrouted_events=events,
            deliveries=deliveries,
            drain_timeout=self.config.drain_timeout,
        )

    @property
    def log(self) -> EventLog:
        """The event log this bus keeps its state in (``InMemoryEventLog`` unless given)."""
        return self._eventlog

    @property
    def clock(self) -> Clock:
        """The clock schedules and event ages run on (a ``ManualClock`` in tests)."""
        return self._clock

    @property
    def running(self) -> bool:
        return self._state == "running"

    def pending(self) -> int:
        """Work not finished: events accepted and not routed yet, plus deliveries (one per event
        and rule target) not delivered or dead-lettered yet. 0 when the bus is idle."""
        return int(self._outstanding)

    def pending_events(self) -> list[dict[str, Any]]:
        """The events ``pending()`` counts that would be lost if the process ended now, each once,
        oldest first (after a shutdown: those it abandoned). The in-memory backend loses them
        all; a durable one keeps them for the next run and names none."""
        events: dict[str, dict[str, Any]] = {}
        if self._queue is not None:
            for event in self._queue.pending_events():
                events.setdefault(event["id"], event)
        for event in self._eventlog.pending_events():
            events.setdefault(event["id"], event)
        return list(events.values())

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every accepted event has ended; ``False`` if ``timeout`` came first."""
        with anyio.move_on_after(timeout):
            await self._outstanding.wait_idle()
            return True
        return False

    def outcomes(self, buffer: int = 10_000) -> OutcomeStream:
        """What happens to each delivery from now on, as an async iterator of ``Outcome``:
        delivered, failed (with the error and attempt), retry scheduled (with the delay),
        dead-lettered or dropped.

        The stream keeps at most ``buffer`` outcomes; the bus never waits for a reader, so one
        that reads too slowly loses the oldest (``stream.lost`` counts them). It ends once the
        bus has stopped and everything buffered is read; ``stream.close()`` ends it sooner.
        """
        return self._outcomes.subscribe(buffer)

    def routed(self, buffer: int = 1_000) -> RoutedStream:
        """Each event as the router matched it, from now on, as an async iterator of
        ``RoutedEvent``: the event, the enabled rules it matched and the input rendered for each of
        their targets (what happened to those deliveries comes through ``outcomes()``).

        Bounded like ``outcomes()``: at most ``buffer`` held, the oldest lost (``stream.lost``)
        when the reader falls behind, never a wait for the bus. It ends once the bus has stopped.
        """
        return self._routed.subscribe(buffer)

    @property
    def rule_table(self) -> RuleTable:
        """The rules and what serves them: the object the rule methods below delegate to."""
        return self._table

    def metrics(self) -> dict[str, Any]:
        """Counters: ``{"bus": {...}, "rules": {rule: {...}}, "targets": {"rule/id": {...}}}``."""
        return self._metrics.snapshot()

    # -- rules (the rule table's API) ------------------------------------------------------

    def put_rule(
        self,
        name: str,
        event_pattern: Mapping[str, Any] | str | Pattern | None = None,
        *,
        schedule_expression: str | None = None,
        state: RuleState = "ENABLED",
        description: str | None = None,
    ) -> str:
        """Create or update a rule (its targets stay); return its ARN."""
        return self._table.put_rule(
            name, event_pattern, schedule_expression=schedule_expression, state=state, description=description
        )

    def delete_rule(self, name: str, *, force: bool = False) -> None:
        """Delete a rule. As on AWS, a rule with targets needs them removed first, or ``force``."""
        self._table.delete_rule(name, force=force)

    def describe_rule(self, name: str) -> Rule:
        return self._table.describe_rule(name)

    def list_rules(self, name_prefix: str | None = None) -> list[Rule]:
        return self._table.list_rules(name_prefix)

    def list_targets_by_rule(self, name: str) -> list[RuleTarget]:
        return self._table.list_targets_by_rule(name)

    def enable_rule(self, name: str) -> None:
        self._table.enable_rule(name)

    def disable_rule(self, name: str) -> None:
        self._table.disable_rule(name)

    def put_targets(
        self, rule: str, targets: Sequence[RuleTarget | Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Add or replace targets (by id). Replaced targets finish what they hold, then stop."""
        return self._table.put_targets(rule, targets)

    def remove_targets(self, rule: str, ids: Iterable[str]) -> dict[str, Any]:
        """Remove targets by id; they finish what they hold, then stop. Unknown ids are ignored."""
        return self._table.remove_targets(rule, ids)

    def rule(
        self,
        event_pattern: Mapping[str, Any] | str | Pattern | None = None,
        *,
        name: str | None = None,
        schedule_expression: str | None = None,
        description: str | None = None,
        input: str | None = None,
        input_path: str | None = None,
        input_transformer: Mapping[str, Any] | None = None,
        retry_policy: RetryPolicy | Mapping[str, Any] | None = None,
        dead_letter: Target | None = None,
        max_concurrency: int | None = None,
    ) -> Callable[[F], F]:
        """Decorator: make a sync or async function the target of a new rule.

        The function receives the target input: the event dict, or the transformed payload.
        The rule is named after the function unless ``name`` is given.
        """
        return self._table.rule(
            event_pattern,
            name=name,
            schedule_expression=schedule_expression,
            description=description,
            input=input,
            input_path=input_path,
            input_transformer=input_transformer,
            retry_policy=retry_policy,
            dead_letter=dead_letter,
            max_concurrency=max_concurrency,
        )

    # -- archives and replay (the archive keeper's API) ---------------------------------------

    @property
    def archive_keeper(self) -> ArchiveKeeper:
        """This bus's archives and the replays into it: what the methods below delegate to."""
        return self._archives

    def create_archive(
        self,
        name: str,
        *,
        event_pattern: Mapping[str, Any] | str | Pattern | None = None,
        retention_days: int = 0,
        description: str | None = None,
    ) -> Archive:
        """CreateArchive on this bus: from now on it keeps the events this bus receives that match
        ``event_pattern`` (every event without one), for ``retention_days`` (0: for ever)."""
        return self._archives.create_archive(
            name, event_pattern=event_pattern, retention_days=retention_days, description=description
        )

    def update_archive(
        self,
        name: str,
        *,
        event_pattern: Mapping[str, Any] | str | Pattern | None = None,
        retention_days: int | None = None,
        description: str | None = None,
    ) -> Archive:
        """UpdateArchive: change what is given, keep the rest (and the events)."""
        return self._archives.update_archive(
            name, event_pattern=event_pattern, retention_days=retention_days, description=description
        )

    def describe_archive(self, name: str) -> Archive:
        return self._archives.describe_archive(name)

    def list_archives(self, name_prefix: str | None = None, state: str | None = None) -> list[Archive]:
        return self._archives.list_archives(name_prefix, state)

    def delete_archive(self, name: str) -> None:
        """DeleteArchive: the archive and its events are gone."""
        self._archives.delete_archive(name)

    async def start_replay(
        self,
        name: str,
        archive: str,
        start_time: datetime,
        end_time: datetime,
        *,
        rules: Sequence[str] | None = None,
        description: str | None = None,
    ) -> Replay:
        """StartReplay into this bus: the archived events whose ``time`` is in ``[start_time,
        end_time]``, in time order, each with ``replay-name``, to every rule or only to ``rules``
        (names or ARNs). Returns at once, STARTING; ``describe_replay`` shows the progress."""
        return await self._archives.start_replay(
            name, archive, start_time, end_time, rules=rules, description=description
        )

    def describe_replay(self, name: str) -> Replay:
        return self._archives.describe_replay(name)

    def list_replays(self, name_prefix: str | None = None, state: str | None = None) -> list[Replay]:
        return self._archives.list_replays(name_prefix, state)

    def cancel_replay(self, name: str) -> Replay:
        """CancelReplay: CANCELLING now, CANCELLED once it has stopped putting events."""
        return self._archives.cancel_replay(name)

    async def wait_replay(self, name: str, timeout: float | None = None) -> Replay:
        """Until the replay ended (COMPLETED, CANCELLED or FAILED); ``TimeoutError`` after ``timeout``."""
        return await self._archives.wait_replay(name, timeout)

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
                if is_event_shaped(raw):
                    # An event as targets receive it, as ``eventbus put`` and config tests take.
                    raw, unknown = entry_from_event_shape(raw)
                    if unknown:
                        results.append(_not_an_event_field(unknown[0]))
                        continue
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
            # Counted before they are handed on: the router may route them before append returns.
            # (A distributed bus counts what its router consumes instead: any worker may route them.)
            counted = 0 if self._distributed else len(records)
            self._outstanding.events += counted
            taken = 0
            refused = _THROTTLED
            try:
                # A target publishing to the bus that delivers to it would wait on itself.
                wait = self.config.when_full == "wait" and delivering_for.get() != self.name
                taken = await self._eventlog.append(records, wait=wait)
            except LogClosedError:
                raise BusClosedError(f"EventBus {self.name} closed while the call waited for room") from None
            except Exception as exc:
                # The log could not store them (a durable one on a full disk): each is answered
                # as failed, never as accepted; AWS clients retry InternalFailure.
                refused = _internal_failure(exc)
                _log.error(
                    "events could not be stored", bus=self.name, events=len(records), error=refused["ErrorMessage"]
                )
            finally:
                self._outstanding.routed(min(counted, len(records) - taken))
            for position in positions[taken:]:
                results[position] = dict(refused)
            self._metrics.count_bus("AcceptedEvents", taken)
            if refused is _THROTTLED:
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

    async def redeliver(self, event: Mapping[str, Any], *, rule: str, target: str) -> None:
        """Take ``event`` back for the one rule target ``rule``/``target`` (a dead letter redriven):
        accepted as PutEvents accepts (stored when this returns), routed to that target only, its
        attempts from one and its age from now. ``RuleNotFoundError`` or ``BusValidationError``
        when the rule or the target is not there (the dead letter should stay where it is)."""
        if self._state != "running":
            raise BusClosedError(f"EventBus {self.name} is not running (use 'async with bus:')")
        entry = self._table.rules.get(rule)
        if entry is None:
            raise RuleNotFoundError(f"Rule {rule} does not exist on EventBus {self.name}.")
        if not any(route.target_id == target for route in entry.routes):
            raise BusValidationError(f"Rule {rule} on EventBus {self.name} has no target {target}.")
        if not isinstance(event, Mapping) or not isinstance(event.get("id"), str):
            raise BusValidationError("A dead letter's event must be an event object with an id.")
        await self._put_replayed([LogRecord(dict(event), self._clock.now(), target_rule=rule, target_id=target)])

    async def _put_replayed(self, records: list[LogRecord]) -> None:
        # A replay's events: accepted as PutEvents would (counted, waiting for room), not validated
        # again (they were valid when archived) and never archived again (``replay-name``).
        # A distributed bus counts what its router consumes instead: any worker may route them.
        counted = 0 if self._distributed else len(records)
        self._outstanding.events += counted
        taken = 0
        try:
            taken = await self._eventlog.append(records, wait=True)
        finally:
            self._outstanding.routed(min(counted, len(records) - taken))
        self._metrics.count_bus("AcceptedEvents", taken)

    def _deliveries_ended(self, n: int) -> None:
        self._outstanding.ended(n)

    def _deliveries_leased(self, n: int) -> None:
        self._outstanding.deliveries += n

    def _deliveries_adopted(self, n: int) -> None:
        # A target put again took over deliveries an earlier run left for it: this run's work now.
        self._outstanding.deliveries += n

    # -- schedules -------------------------------------------------------------------------

    async def _fire_schedule(self, rule: str, when: datetime) -> None:
        entry = self._table.rules.get(rule)
        if entry is None or entry.rule.state != "ENABLED":
            return
        event_id = new_event_id()
        if self._distributed:
            # Every worker's scheduler wakes for each period: the one that claims it fires, and
            # its event has the same id in every worker, so a second copy would be stored once.
            claim = getattr(self._eventlog, "claim_schedule", None)
            if claim is not None and not await claim(rule, when):
                return
            same_id = getattr(self._eventlog, "schedule_event_id", None)
            if same_id is not None:
                event_id = same_id(rule, when)
        event = {
            "version": "0",
            "id": event_id,
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
        counted = 0 if self._distributed else 1
        self._outstanding.events += counted
        taken = 0
        try:
            taken = await self._eventlog.append([LogRecord(event, self._clock.now(), (), target_rule=rule)])
        except LogClosedError:
            return
        except Exception as exc:
            # Not stored (a full disk): this fire is lost, and a durable log that did not
            # remember it fires it again when the bus restarts.
            _log.error("scheduled event could not be stored", bus=self.name, rule=rule, error=str(exc)[:500])
        finally:
            self._outstanding.routed(min(counted, 1 - taken))
        self._metrics.count_bus("AcceptedEvents", taken)
