"""The rule table of one bus: its rules and what serves them.

``RuleTable`` holds the rules and their targets, the ``Matcher`` of the enabled rules, the
``Scheduler`` of the scheduled ones, a ``Dispatcher`` (delivery/) per rule target and the targets
the bus owns (closed when it stops). ``EventBus`` delegates its rule API here; the HTTP API and a
console drive the same object.

Deliveries are queued by route (``<rule>/<target id>``): a target replaced by id hands the
deliveries still queued or waiting to retry to its successor and finishes those in flight; a
removed target's dispatcher delivers what the route still holds, retries included, then stops.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio

from eventbus._logger import get_logger
from eventbus.bus.clock import Clock
from eventbus.bus.config import BusConfig
from eventbus.bus.delivery.dispatcher import Dispatcher, Slots, TargetRoute
from eventbus.bus.delivery.retry import RetryPolicy
from eventbus.bus.logs.protocol import DeliveryQueue
from eventbus.bus.metrics import Metrics
from eventbus.bus.outcomes import Outcomes
from eventbus.bus.rules import Rule, RuleState, RuleTarget, check_rule_name, rule_arn
from eventbus.bus.scheduler import Scheduler
from eventbus.errors import BusValidationError, LimitExceededError, RuleNotFoundError
from eventbus.patterns import Pattern
from eventbus.patterns.matcher import Matcher
from eventbus.schedule import Schedule
from eventbus.targets.base import Target, batch_limit
from eventbus.targets.bus import PutEventsSink
from eventbus.targets.function import FunctionTarget
from eventbus.transform import TargetInput

__all__ = ["Route", "RuleEntry", "RuleTable"]

F = TypeVar("F", bound=Callable[..., Any])

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_log = get_logger("eventbus.bus")

#: Starts a background task of the running bus; returns the scope that cancels it.
Starter = Callable[[Callable[[], Awaitable[None]]], anyio.CancelScope]


@dataclass(slots=True)
class Route:
    target_id: str
    target_input: TargetInput | None
    dispatcher: Dispatcher
    #: The route's name in the delivery queue: ``<rule>/<target id>``.
    key: str = ""


@dataclass(slots=True)
class RuleEntry:
    rule: Rule
    pattern: Pattern | None
    routes: list[Route] = field(default_factory=list)
    #: This rule's counters in ``Metrics`` (held here to skip two lookups per matched event).
    counters: dict[str, int] = field(default_factory=dict)


class RuleTable:
    """The rules of bus ``bus_name``, its matcher, scheduler, dispatchers and owned targets.

    ``fire(rule, when)`` is called when a scheduled rule is due; ``on_done(n)`` when ``n``
    deliveries ended. Dispatchers made before ``start`` run once it is called.
    """

    def __init__(
        self,
        bus_name: str,
        *,
        config: BusConfig,
        clock: Clock,
        metrics: Metrics,
        fire: Callable[[str, datetime], Awaitable[None]],
        on_done: Callable[[int], None],
        rand: Callable[[], float],
        outcomes: Outcomes | None = None,
        on_leased: Callable[[int], None] | None = None,
        distributed: bool = False,
        resolver: Callable[[str], Awaitable[PutEventsSink | None]] | None = None,
        on_adopt: Callable[[int], None] | None = None,
    ) -> None:
        self.name = bus_name
        self._on_adopt = on_adopt
        self.config = config
        self._clock = clock
        self._metrics = metrics
        self._on_done = on_done
        self._rand = rand
        self.outcomes = outcomes if outcomes is not None else Outcomes()
        #: Rules by name (read by the router on every event).
        self.rules: dict[str, RuleEntry] = {}
        #: The enabled rules with a pattern.
        self.matcher = Matcher()
        self.scheduler = Scheduler(clock, fire)
        self._owned_targets: dict[int, Target] = {}
        #: Rules ``@bus.rule`` made, by name: the function each one calls (``module.qualname``).
        self._decorated: dict[str, str] = {}
        #: Each route's bound, kept across the dispatchers that serve it (a target replaced by id).
        self._slots: dict[str, Slots] = {}
        #: The last dispatcher made for each route: a new one takes its route over.
        self._serving: dict[str, Dispatcher] = {}
        self._start: Starter | None = None
        self._queue: DeliveryQueue | None = None
        #: Whether other processes share the queue (each dispatcher counts what it leases).
        self.distributed = distributed
        self._on_leased = on_leased
        self._resolver = resolver
        #: Rate schedules fire at ``anchor + k * period``; ``None``: counted from when each is put.
        #: A distributed bus anchors them at the epoch, so every worker agrees on each period.
        self.schedule_anchor: datetime | None = _EPOCH if distributed else None
        #: Called with a rule's name after the rule API changed it (a distributed bus writes the
        #: change to its rule bucket); ``vet_targets`` may refuse targets before they are put.
        self.on_change: Callable[[str], None] | None = None
        self.vet_targets: Callable[[Sequence[RuleTarget]], None] | None = None
        #: Deliveries the queue holds for routes no rule target serves (yet), by route.
        self._parked: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.rules)

    # -- running ---------------------------------------------------------------------------

    def route_keys(self) -> set[str]:
        """The routes (``<rule>/<target id>``) the rules' targets serve now."""
        return {route.key for entry in self.rules.values() for route in entry.routes}

    def start(
        self,
        start: Starter,
        queue: DeliveryQueue,
        pending: Mapping[str, int],
        parked: Mapping[str, int] | None = None,
    ) -> None:
        """Run every dispatcher through ``start`` on ``queue``, and the dispatchers made from now
        on. ``pending`` is what the queue holds per route already (a durable queue, reopened);
        ``parked`` what it holds for routes no target serves: a target put under that rule and id
        later takes them over (``on_adopt`` counts them then)."""
        self._start = start
        self._queue = queue
        self._parked = dict(parked or {})
        for key, count in pending.items():
            self.slots(key).count = count
        for entry in self.rules.values():
            for route in entry.routes:
                route.dispatcher.queue = queue
                start(route.dispatcher.run)

    def stop(self) -> None:
        """Start no more dispatchers (the bus cancels the running ones)."""
        self._start = None

    def stop_dispatchers(self) -> None:
        """Every dispatcher finishes the deliveries in flight and takes no more (a distributed
        bus leaving: what it has not leased is another worker's)."""
        for dispatcher in self._serving.values():
            dispatcher.stop()

    def _changed(self, name: str) -> None:
        if self.on_change is not None:
            self.on_change(name)

    def slots(self, key: str, capacity: int | None = None) -> Slots:
        """The bound of route ``key`` (made on first use; ``capacity`` updates it)."""
        slots = self._slots.get(key)
        if slots is None:
            slots = self._slots[key] = Slots(capacity or self.config.target_queue_size)
        elif capacity is not None:
            slots.capacity = capacity
        return slots

    def delivering(self) -> int:
        """Workers delivering right now (leased and not ended), over every route."""
        return sum(d.delivering for d in self._serving.values())

    def outstanding(self) -> int:
        """Deliveries routed and not ended yet, over every route."""
        return sum(s.count for s in self._slots.values())

    async def aclose_targets(self) -> None:
        """Close every target the rules used, each once; a failing close is logged."""
        for target in self._owned_targets.values():
            try:
                await target.aclose()
            except Exception as close_exc:
                _log.error("target close failed", bus=self.name, error=str(close_exc))

    # -- the rule API ----------------------------------------------------------------------

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
        check_rule_name(name)
        if event_pattern is None and schedule_expression is None:
            raise BusValidationError("Parameter(s) EventPattern or ScheduleExpression must be specified.")
        if state not in ("ENABLED", "DISABLED"):
            raise BusValidationError(
                f"1 validation error detected: Value '{state}' at 'state' failed to satisfy constraint: "
                "Member must satisfy enum value set: [ENABLED, DISABLED]"
            )
        pattern = None
        if event_pattern is not None:
            pattern = event_pattern if isinstance(event_pattern, Pattern) else Pattern(event_pattern)
        anchor = self.schedule_anchor or self._clock.now()
        schedule = Schedule.parse(schedule_expression, start=anchor) if schedule_expression else None
        existing = self.rules.get(name)
        if existing is None and len(self.rules) >= self.config.max_rules:
            raise LimitExceededError(
                f"The requested resource exceeds the maximum number allowed: {self.config.max_rules} "
                f"rules on event bus {self.name}."
            )
        rule = Rule(
            name=name,
            arn=rule_arn(self.config.region, self.config.account, self.name, name),
            event_bus_name=self.name,
            event_pattern=_pattern_dict(event_pattern),
            schedule_expression=schedule_expression,
            state=state,
            description=description,
            targets=existing.rule.targets if existing else (),
        )
        entry = RuleEntry(rule, pattern, existing.routes if existing else [], self._metrics.rules[name])
        self.rules[name] = entry
        self._sync_matcher(entry)
        if schedule is None:
            self.scheduler.remove(name)
        else:
            self.scheduler.set(name, schedule)
        self._changed(name)
        return rule.arn

    def _sync_matcher(self, entry: RuleEntry) -> None:
        # Disabled rules stay out of the matcher so they cost nothing per event.
        name = entry.rule.name
        if name in self.matcher:
            self.matcher.remove(name)
        if entry.pattern is not None and entry.rule.state == "ENABLED":
            self.matcher.add(name, entry.pattern)

    def _entry(self, name: str) -> RuleEntry:
        entry = self.rules.get(name)
        if entry is None:
            raise RuleNotFoundError(f"Rule {name} does not exist on EventBus {self.name}.")
        return entry

    def delete_rule(self, name: str, *, force: bool = False) -> None:
        """Delete a rule. As on AWS, a rule with targets needs them removed first, or ``force``."""
        entry = self.rules.get(name)
        if entry is None:
            return
        if entry.routes and not force:
            raise BusValidationError("Rule can't be deleted since it has targets.")
        for route in entry.routes:
            route.dispatcher.retire()
        del self.rules[name]
        self._decorated.pop(name, None)
        if name in self.matcher:
            self.matcher.remove(name)
        self.scheduler.remove(name)
        self._changed(name)

    def describe_rule(self, name: str) -> Rule:
        return self._entry(name).rule

    def list_rules(self, name_prefix: str | None = None) -> list[Rule]:
        return [
            e.rule for n, e in sorted(self.rules.items()) if name_prefix is None or n.startswith(name_prefix)
        ]

    def list_targets_by_rule(self, name: str) -> list[RuleTarget]:
        return list(self._entry(name).rule.targets)

    def enable_rule(self, name: str) -> None:
        self._set_state(name, "ENABLED")

    def disable_rule(self, name: str) -> None:
        self._set_state(name, "DISABLED")

    def _set_state(self, name: str, state: RuleState) -> None:
        entry = self._entry(name)
        entry.rule = entry.rule.model_copy(update={"state": state})
        self._sync_matcher(entry)
        self._changed(name)

    def put_targets(
        self, rule: str, targets: Sequence[RuleTarget | Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Add or replace targets (by id), answering as PutTargets: a target that is not valid
        (an input transformer with a bad placeholder, two input forms...) is a ``FailedEntries``
        entry with its reason, and the others are put. A replaced target finishes the deliveries
        in flight; the ones still queued or waiting to retry go to its successor, and once it has
        nothing left it is closed (unless another target of the bus is the same object)."""
        entry = self._entry(rule)
        parsed: list[RuleTarget] = []
        failed: list[dict[str, Any]] = []
        ids: list[str] = []
        for target in targets:
            target_id = target.id if isinstance(target, RuleTarget) else _given_id(target)
            ids.append(target_id)
            if isinstance(target, RuleTarget):
                parsed.append(target)
                continue
            try:
                parsed.append(RuleTarget.model_validate(target))
            except ValueError as exc:
                failed.append(
                    {"TargetId": target_id, "ErrorCode": "ValidationException", "ErrorMessage": _reason(exc)}
                )
        if len(set(ids)) != len(ids):
            raise BusValidationError("Target ids must be unique within a PutTargets request.")
        if self.vet_targets is not None:
            self.vet_targets(parsed)
        current = {t.id: t for t in entry.rule.targets}
        if len(current.keys() | {t.id for t in parsed}) > self.config.max_targets_per_rule:
            raise LimitExceededError(
                f"The requested resource exceeds the maximum number allowed: "
                f"{self.config.max_targets_per_rule} targets on rule {rule}."
            )
        routes = {r.target_id: r for r in entry.routes}
        replaced: list[tuple[RuleTarget, Dispatcher]] = []
        for target in parsed:
            old, old_route = current.get(target.id), routes.get(target.id)
            current[target.id] = target
            dispatcher = self._dispatcher(entry.rule, target)
            routes[target.id] = Route(target.id, target.target_input, dispatcher, dispatcher.key)
            if old is not None and old_route is not None:
                replaced.append((old, old_route.dispatcher))
        entry.rule = entry.rule.model_copy(update={"targets": tuple(current.values())})
        entry.routes = [routes[t_id] for t_id in current]
        for old, dispatcher in replaced:
            self._close_when_unused(old, dispatcher)
        if parsed:
            self._changed(rule)
        return {"FailedEntryCount": len(failed), "FailedEntries": failed}

    def remove_targets(self, rule: str, ids: Iterable[str]) -> dict[str, Any]:
        """Remove targets by id; each delivers what it holds (retries too), then stops and is
        closed (unless another target of the bus is the same object). Unknown ids are ignored."""
        entry = self._entry(rule)
        drop = set(ids)
        retired = {}
        for route in entry.routes:
            if route.target_id in drop:
                route.dispatcher.retire()
                retired[route.target_id] = route.dispatcher
        removed = [t for t in entry.rule.targets if t.id in drop]
        entry.routes = [r for r in entry.routes if r.target_id not in drop]
        entry.rule = entry.rule.model_copy(
            update={"targets": tuple(t for t in entry.rule.targets if t.id not in drop)}
        )
        for target in removed:
            self._close_when_unused(target, retired.get(target.id))
        self._changed(rule)
        return {"FailedEntryCount": 0, "FailedEntries": []}

    def _in_use(self, target: Target) -> bool:
        return any(
            t.target is target or t.dead_letter is target for e in self.rules.values() for t in e.rule.targets
        )

    def _close_when_unused(self, old: RuleTarget, dispatcher: Dispatcher | None) -> None:
        """Close ``old``'s target and dead letter once ``dispatcher`` delivered what it holds,
        unless a rule target of this bus still uses the same object (the bus closes it at the end).
        A bus that is not running closes its targets when it stops, as before."""
        if self._start is None:
            return
        start = self._start
        candidates = [t for t in (old.target, old.dead_letter) if t is not None and not self._in_use(t)]
        for target in candidates:
            self._owned_targets.pop(id(target), None)
        if not candidates:
            return

        async def close() -> None:
            left = list(candidates)
            try:
                if dispatcher is not None:
                    await dispatcher.finished()
                while left:
                    target = left.pop(0)
                    if self._in_use(target):
                        self._owned_targets[id(target)] = target  # put again meanwhile: closed at the end
                        continue
                    try:
                        await target.aclose()
                    except Exception as close_exc:
                        _log.error("target close failed", bus=self.name, target=old.id, error=str(close_exc))
            finally:
                # Cut short by the bus stopping: the bus closes what is left, as it closes the rest.
                for target in left:
                    self._owned_targets.setdefault(id(target), target)

        start(close)

    def _dispatcher(self, rule: Rule, target: RuleTarget) -> Dispatcher:
        for t in (target.target, target.dead_letter):
            if t is not None:
                self._owned_targets[id(t)] = t
        batch = batch_limit(target.target, self.config.delivery_batch_size)
        if getattr(target.target, "per_payload_calls", False):
            # One call a payload anyway: batching would only tie each event's fate to the others'.
            batch = 1
        route = TargetRoute(
            bus_name=self.name,
            rule_name=rule.name,
            rule_arn=rule.arn,
            target_id=target.id,
            target_arn=target.arn or str(getattr(target.target, "arn", "") or f"{rule.arn}/target/{target.id}"),
            target=target.target,
            retry_policy=target.retry_policy,
            dead_letter=target.dead_letter,
            concurrency=target.max_concurrency or self.config.target_concurrency,
            capacity=target.queue_size or self.config.target_queue_size,
            max_batch_size=batch,
        )
        slots = self.slots(route.key, route.capacity)
        adopted = self._parked.pop(route.key, 0)
        if adopted:
            slots.count += adopted
            if self._on_adopt is not None:
                self._on_adopt(adopted)
        dispatcher = Dispatcher(
            route,
            slots=slots,
            backoff=self.config.backoff,
            clock=self._clock,
            metrics=self._metrics,
            on_done=self._on_done,
            on_leased=self._on_leased,
            distributed=self.distributed,
            resolver=self._resolver,
            outcomes=self.outcomes,
            rand=self._rand,
            trace=self.config.trace_events,
        )
        previous = self._serving.get(route.key)
        if previous is not None:
            # Replaced, or removed and still delivering its retries: the route is the new one's.
            previous.stop()
        self._serving[route.key] = dispatcher
        if self._start is not None:
            dispatcher.queue = self._queue
            self._start(dispatcher.run)
        return dispatcher

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
        The rule is named after the function (its ``__qualname__`` without ``<locals>``, e.g.
        ``on_order`` or ``make_handlers.on_order``) unless ``name`` is given. A name another
        ``@bus.rule`` already took on this bus is refused (``BusValidationError``), so two
        functions called alike never replace each other silently; ``put_rule`` keeps AWS's
        create-or-update semantics.
        """

        def register(func: F) -> F:
            rule_name = name or _name_for(func)
            taken = self._decorated.get(rule_name)
            if taken is not None:
                raise BusValidationError(
                    f"@bus.rule: rule {rule_name!r} on bus {self.name} already calls {taken}; "
                    f"give {_origin(func)} a rule of its own with @bus.rule(..., name=\"...\") "
                    "(or delete_rule the first one)"
                )
            self.put_rule(
                rule_name, event_pattern, schedule_expression=schedule_expression, description=description
            )
            policy = RetryPolicy.model_validate(retry_policy) if isinstance(retry_policy, Mapping) else retry_policy
            target = RuleTarget(
                id=_name_for(func)[:64],
                target=FunctionTarget(func),
                input=input,
                input_path=input_path,
                input_transformer=dict(input_transformer) if input_transformer is not None else None,
                retry_policy=policy or RetryPolicy(),
                dead_letter=dead_letter,
                max_concurrency=max_concurrency,
            )
            self.put_targets(rule_name, [target])
            self._decorated[rule_name] = _origin(func)
            return func

        return register


def _given_id(target: Mapping[str, Any]) -> str:
    value = target.get("Id", target.get("id"))
    return value if isinstance(value, str) else str(value)


def _reason(exc: ValueError) -> str:
    """A target's problem in its validator's own words (AWS's PutTargets message where it has one)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors(include_url=False, include_input=False):
            cause = error.get("ctx", {}).get("error")
            where = ".".join(str(p) for p in error["loc"])
            parts.append(str(cause) if cause is not None else f"{where}: {error['msg']}" if where else error["msg"])
        return "; ".join(parts)
    return str(exc)


def _name_for(func: Callable[..., Any]) -> str:
    raw = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or "function"
    return re.sub(r"[^\.\-_A-Za-z0-9]", "_", raw.replace("<locals>.", ""))[:64] or "function"


def _origin(func: Callable[..., Any]) -> str:
    """``module.qualname`` of a function, for messages."""
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    module = getattr(func, "__module__", None)
    return f"{module}.{qualname}" if module else str(qualname)


def _pattern_dict(pattern: Mapping[str, Any] | str | Pattern | None) -> dict[str, Any] | None:
    if pattern is None:
        return None
    if isinstance(pattern, Mapping):
        return dict(pattern)
    if isinstance(pattern, str):
        loaded = json.loads(pattern)
        return loaded if isinstance(loaded, dict) else None
    return pattern.to_dict()
