"""Delivery to one rule target: worker tasks leasing deliveries from the delivery queue.

One ``Dispatcher`` serves one target of one rule. Its workers are long-lived tasks that lease
the route's due deliveries in batches (up to the target's ``max_batch_size``) from the
``DeliveryQueue``, so no task is created per event. A failed delivery is released back to the
queue with its backoff (``decide``), so a retry waiting on backoff lives in the queue with its due
time and attempt count, and occupies no worker; an exhausted one goes to the dead-letter target.
Every delivery counts against the route's ``Slots`` from routing until it ends (delivered,
dead-lettered or dropped), which is what bounds memory whatever the target does.
"""

from __future__ import annotations

import json
import random as _random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from eventbus import redact
from eventbus._logger import get_logger
from eventbus.bus.chain import bus_chain, delivering_for
from eventbus.bus.clock import Clock
from eventbus.bus.delivery.dead_letter import dead_letter_context
from eventbus.bus.delivery.retry import (
    Backoff,
    Condition,
    GiveUp,
    RetryPolicy,
    RetryRules,
    decide,
    error_code,
)
from eventbus.bus.logs.protocol import Delivery, DeliveryQueue
from eventbus.bus.metrics import Metrics
from eventbus.bus.outcomes import Outcome, OutcomeKind, Outcomes
from eventbus.targets.base import DeliveryContext, Target, batch_limit
from eventbus.targets.bus import BusTarget, PutEventsSink, bus_resolver

__all__ = ["Dispatcher", "Slots", "TargetRoute"]

_log = get_logger("eventbus.delivery")

#: Longest error text in a log line: enough to tell what failed, short enough to read.
_MAX_LOGGED_ERROR = 500
#: Seconds between two looks at a retired distributed route's deliveries left in the queue.
_RETIRED_CHECK = 2.0


class Slots:
    """The bound on one rule target's deliveries: ``count`` held (routed and not ended: queued,
    in flight or waiting to retry) out of ``capacity``. Shared by the router, which takes a slot
    per delivery it routes, and the target's dispatchers, which free it when the delivery ends.
    """

    __slots__ = ("_room", "capacity", "count")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("target queue capacity must be at least 1")
        self.capacity = capacity
        self.count = 0
        self._room: anyio.Event | None = None

    def take(self) -> bool:
        """Take a slot if one is free now."""
        if self.count >= self.capacity:
            return False
        self.count += 1
        return True

    async def take_waiting(self) -> None:
        """Take a slot, waiting for one to be freed."""
        while self.count >= self.capacity:
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()
        self.count += 1

    def free(self, n: int) -> None:
        self.count -= n
        if self._room is not None:
            self._room.set()
            self._room = None


@dataclass(slots=True)
class TargetRoute:
    """Everything a dispatcher knows about where it delivers."""

    bus_name: str
    rule_name: str
    rule_arn: str
    target_id: str
    target_arn: str
    target: Target
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    dead_letter: Target | None = None
    concurrency: int = 8
    capacity: int = 1_000
    #: Payloads a ``deliver`` call takes at most (never above the target's own ``max_batch_size``).
    max_batch_size: int = 10

    @property
    def key(self) -> str:
        """The route's name in the delivery queue (and in the metrics): ``<rule>/<target id>``."""
        return f"{self.rule_name}/{self.target_id}"


class Dispatcher:
    """Worker tasks delivering one ``TargetRoute``'s deliveries from the queue.

    ``on_done(n)`` is called when ``n`` deliveries ended; each step of each delivery is reported
    to ``outcomes``. ``run`` needs ``queue`` set.
    """

    def __init__(
        self,
        route: TargetRoute,
        *,
        slots: Slots,
        backoff: Backoff,
        clock: Clock,
        metrics: Metrics,
        on_done: Callable[[int], None],
        outcomes: Outcomes | None = None,
        rand: Callable[[], float] = _random.random,
        trace: bool = False,
        on_leased: Callable[[int], None] | None = None,
        distributed: bool = False,
        resolver: Callable[[str], Awaitable[PutEventsSink | None]] | None = None,
    ) -> None:
        if route.concurrency < 1:
            raise ValueError("target concurrency must be at least 1")
        self.route = route
        self.key = route.key
        self.slots = slots
        self.queue: DeliveryQueue | None = None
        self._rules = RetryRules.of(route.retry_policy, backoff)
        self._clock = clock
        self._metrics = metrics
        self._on_done = on_done
        #: Other processes share the queue: this dispatcher counts (in ``slots`` and through
        #: ``on_leased``) what it leases, not what this process routed, and a delivery it
        #: releases for a retry is no longer its own.
        self._distributed = distributed
        self._on_leased = on_leased
        #: How a bus target of this bus finds another bus by name (a shared backend's streams).
        self._resolver = resolver
        self._outcomes = outcomes if outcomes is not None else Outcomes()
        # This target's and its rule's counters, held to keep lookups off the per-batch path.
        self._counters = metrics.targets[self.key]
        self._rule_counters = metrics.rules[route.rule_name]
        self._rand = rand
        self._trace = trace
        # Only a delivery to another bus carries the chain: a function that publishes a new
        # event to its own bus is not a loop.
        self._sets_chain = isinstance(route.target, BusTarget)
        self._max_batch = batch_limit(route.target, route.max_batch_size)
        self._retiring = False
        self._stopping = False
        self._scope: anyio.CancelScope | None = None
        #: Workers between a lease and the end of its deliveries (``stop`` lets them finish).
        self._delivering = 0
        self._ended = False
        self._ended_event: anyio.Event | None = None
        #: Set when a distributed route is retired: the run checks the queue until it is empty.
        self._checking: anyio.Event | None = None

    @property
    def delivering(self) -> int:
        """Workers between a lease and the end of what they leased (deliveries under way)."""
        return self._delivering

    @property
    def outstanding(self) -> int:
        """Deliveries of this route routed and not ended yet (queued, in flight or waiting to retry)."""
        return self.slots.count

    def retire(self) -> None:
        """The target was removed: deliver what the route still holds, then stop."""
        self._retiring = True
        self._stop_if_drained()
        if self._checking is not None:
            self._checking.set()  # the run's watcher takes it from here

    def stop(self) -> None:
        """The target was replaced: take no more deliveries (its successor will), finish the
        ones in flight, then stop."""
        self._stopping = True
        self._stop_if_idle()

    def _stop_if_idle(self) -> None:
        # Only workers waiting for a lease are left: cancelling them loses nothing. (One scope
        # for all, not one per lease: entering a cancel scope costs more than a lease.)
        if self._stopping and self._delivering == 0 and self._scope is not None:
            self._scope.cancel()

    def _stop_if_drained(self) -> None:
        # A distributed route is drained when the queue holds none of it, whoever routed it
        # (``_watch_retired`` checks); here only what this process routed counts.
        if self._retiring and not self._distributed and self.slots.count == 0 and self._scope is not None:
            self._scope.cancel()

    async def _watch_retired(self, queue: DeliveryQueue) -> None:
        """A distributed route whose target was removed: every worker goes on delivering what the
        queue holds for it (retries included), then stops."""
        self._checking = anyio.Event()
        if not self._retiring:
            await self._checking.wait()
        while True:
            try:
                left = (await queue.routes()).get(self.key, 0)
            except Exception:
                left = 1  # not known: ask again
            if left == 0 and self.slots.count == 0:
                if self._scope is not None:
                    self._scope.cancel()
                return
            await anyio.sleep(_RETIRED_CHECK)

    # -- running ---------------------------------------------------------------------------

    async def finished(self) -> None:
        """Until ``run`` has ended (a retired or replaced dispatcher that delivered what it held)."""
        if self._ended:
            return
        if self._ended_event is None:
            self._ended_event = anyio.Event()
        await self._ended_event.wait()

    async def run(self) -> None:
        if self.queue is None:
            raise RuntimeError("a dispatcher needs its delivery queue before it runs")
        try:
            async with anyio.create_task_group() as tg:
                self._scope = tg.cancel_scope
                self._stop_if_idle()
                self._stop_if_drained()
                for _ in range(self.route.concurrency):
                    tg.start_soon(self._worker, self.queue)
                if self._distributed:
                    tg.start_soon(self._watch_retired, self.queue)
        finally:
            self._ended = True
            if self._ended_event is not None:
                self._ended_event.set()

    async def _worker(self, queue: DeliveryQueue) -> None:
        delivering_for.set(self.route.bus_name)  # this task's context only
        if self._resolver is not None:
            bus_resolver.set(self._resolver)
        key, limit = self.key, self._max_batch
        while not self._stopping:
            leased = await queue.lease(key, limit)
            if not leased:
                return  # the queue is closed
            if self._distributed:
                self.slots.count += len(leased)
                if self._on_leased is not None:
                    self._on_leased(len(leased))
            self._delivering += 1
            try:
                first = 0
                # A batch shares one bus chain, as the chain is set once per ``deliver`` call.
                for i in range(1, len(leased) + 1):
                    if i == len(leased) or leased[i].chain != leased[first].chain:
                        await self._deliver(leased[first:i], queue)
                        first = i
            finally:
                self._delivering -= 1
            self._stop_if_idle()

    # -- one attempt -----------------------------------------------------------------------

    async def _deliver(self, batch: list[Delivery], queue: DeliveryQueue) -> None:
        route = self.route
        context = DeliveryContext(
            kind="rule",
            name=route.rule_name,
            arn=route.rule_arn,
            target_id=route.target_id,
            target_arn=route.target_arn,
            attempt=max(d.attempts for d in batch),
            event_ids=tuple(d.event["id"] for d in batch),
        )
        self._counters["Invocations"] += len(batch)
        self._rule_counters["Invocations"] += len(batch)
        token = bus_chain.set((*batch[0].chain, route.bus_name)) if self._sets_chain else None
        try:
            await route.target.deliver([d.payload for d in batch], context)
        except Exception as exc:
            if token is not None:
                bus_chain.reset(token)
            for delivery in batch:
                await self._failed(delivery, exc, queue)
            return
        if token is not None:
            bus_chain.reset(token)
        if self._trace:
            for delivery in batch:
                _log.info(
                    "delivered",
                    bus=route.bus_name,
                    event_id=delivery.event["id"],
                    rule=route.rule_name,
                    target=route.target_id,
                    attempt=delivery.attempts,
                )
        if self._outcomes.active:
            for delivery in batch:
                self._report("delivered", delivery)
        await self._end(batch, queue)

    async def _failed(self, delivery: Delivery, exc: Exception, queue: DeliveryQueue) -> None:
        route = self.route
        age = (self._clock.now() - delivery.ingestion_time).total_seconds()
        decision = decide(self._rules, delivery.attempts, age, exc, jitter=self._rand())
        reporting = self._outcomes.active
        if reporting:
            self._report("failed", delivery, exc)
        if not isinstance(decision, GiveUp):
            self._metrics.count_target(route.rule_name, route.target_id, "RetriedInvocations")
            _log.warning(
                "retried",
                bus=route.bus_name,
                event_id=delivery.event["id"],
                rule=route.rule_name,
                target=route.target_id,
                attempt=delivery.attempts,
                error_code=error_code(exc),
                error=_logged_error(exc),
                delay=round(decision.delay, 3),
            )
            await queue.release([delivery], decision.delay)
            if reporting:
                self._report("retry-scheduled", delivery, exc, delay=decision.delay)
            if self._distributed:
                # Back on the server, for whichever worker leases it when it is due.
                self.slots.free(1)
                self._on_done(1)
            return
        self._metrics.count_target(route.rule_name, route.target_id, "FailedInvocations")
        await self._dead_letter(delivery, exc, decision.condition)
        await self._end([delivery], queue)

    async def _dead_letter(self, delivery: Delivery, exc: Exception, condition: Condition | None) -> None:
        route = self.route
        retries_done = delivery.attempts - 1
        fields = {
            "bus": route.bus_name,
            "event_id": delivery.event["id"],
            "rule": route.rule_name,
            "target": route.target_id,
            "attempt": delivery.attempts,
            "error_code": error_code(exc),
            "error": _logged_error(exc),
            "exhausted_retry_condition": condition,
        }
        if route.dead_letter is None:
            self._metrics.count_target(route.rule_name, route.target_id, "DroppedInvocations")
            self._metrics.count_bus("DroppedInvocations")
            _log.error("undeliverable, no dead-letter target", **fields)
            if self._outcomes.active:
                self._report("dropped", delivery, exc, condition=condition)
            return
        context = dead_letter_context(
            exc,
            retry_attempts=retries_done,
            condition=condition,
            origin={"RULE_ARN": route.rule_arn, "TARGET_ARN": route.target_arn},
            name=route.rule_name,
            arn=route.rule_arn,
            target_id=route.target_id,
            target_arn=route.target_arn,
            event_id=delivery.event["id"],
        )
        try:
            event_json = json.dumps(delivery.event, separators=(",", ":"), ensure_ascii=False)
            await route.dead_letter.deliver([event_json], context)
        except Exception as dlq_exc:
            self._metrics.count_target(route.rule_name, route.target_id, "InvocationsFailedToBeSentToDLQ")
            _log.error(
                "dead letter failed",
                dlq_error_code=error_code(dlq_exc),
                dlq_error=_logged_error(dlq_exc),
                **fields,
            )
            if self._outcomes.active:
                self._report("dropped", delivery, dlq_exc, condition=condition)
            return
        self._metrics.count_target(route.rule_name, route.target_id, "InvocationsSentToDLQ")
        _log.warning("dead-lettered", **fields)
        if self._outcomes.active:
            self._report("dead-lettered", delivery, exc, condition=condition)

    def _report(
        self,
        kind: OutcomeKind,
        delivery: Delivery,
        error: BaseException | None = None,
        *,
        delay: float | None = None,
        condition: Condition | None = None,
    ) -> None:
        route = self.route
        self._outcomes.emit(
            Outcome(
                kind,
                route.bus_name,
                route.rule_name,
                route.target_id,
                delivery.event["id"],
                delivery.attempts,
                self._clock.now(),
                error_code=None if error is None else error_code(error),
                error_type=None if error is None else type(error).__name__,
                reason=None if error is None else redact.mask(str(error))[:_MAX_LOGGED_ERROR],
                delay=delay,
                condition=condition,
            )
        )

    async def _end(self, deliveries: list[Delivery], queue: DeliveryQueue) -> None:
        await queue.ack(deliveries)
        self.slots.free(len(deliveries))
        self._on_done(len(deliveries))
        self._stop_if_drained()


def _logged_error(exc: BaseException) -> str:
    return redact.error_text(exc, _MAX_LOGGED_ERROR)
