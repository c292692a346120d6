"""Delivery to one target: a bounded queue, worker tasks, retries with backoff, dead letters.

One ``Dispatcher`` serves one target of one rule. Its workers are long-lived tasks that take
ready items in batches (up to the target's ``max_batch_size``), so no task is created per event.
A failed batch is put on a retry heap with its due time; a single pump task moves due items back
to the ready queue, so a retry waiting on backoff occupies memory but no worker. Every item counts
against ``capacity`` from ``submit`` until it ends (delivered, dead-lettered or dropped), which is
what bounds memory whatever the target does.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random as _random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
from eventbus.bus.metrics import Metrics
from eventbus.targets.base import DeliveryContext, Target, batch_limit
from eventbus.targets.bus import BusTarget

__all__ = ["DeliveryItem", "Dispatcher", "TargetRoute"]

_log = get_logger("eventbus.delivery")

#: Longest error text in a log line: enough to tell what failed, short enough to read.
_MAX_LOGGED_ERROR = 500


@dataclass(slots=True)
class DeliveryItem:
    """One event on its way to one target: ``payload`` is the target input, ``event`` the event
    (what a dead letter carries)."""

    payload: str
    event: dict[str, Any]
    ingestion_time: datetime
    chain: tuple[str, ...]
    token: Any = None  # the caller's handle, given back to ``on_done`` (the log offset)
    attempts: int = 0


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


class Dispatcher:
    """Workers, a retry pump and a bounded count of outstanding items for one ``TargetRoute``."""

    def __init__(
        self,
        route: TargetRoute,
        *,
        backoff: Backoff,
        clock: Clock,
        metrics: Metrics,
        on_done: Callable[[list[DeliveryItem]], None],
        rand: Callable[[], float] = _random.random,
        trace: bool = False,
    ) -> None:
        if route.concurrency < 1 or route.capacity < 1:
            raise ValueError("target concurrency and queue capacity must be at least 1")
        self.route = route
        self._rules = RetryRules.of(route.retry_policy, backoff)
        self._clock = clock
        self._metrics = metrics
        self._on_done = on_done
        # This target's and its rule's counters, held to keep lookups off the per-batch path.
        self._counters = metrics.targets[f"{route.rule_name}/{route.target_id}"]
        self._rule_counters = metrics.rules[route.rule_name]
        self._rand = rand
        self._trace = trace
        # Only a delivery to another bus carries the chain: a function that publishes a new
        # event to its own bus is not a loop.
        self._sets_chain = isinstance(route.target, BusTarget)
        self._max_batch = batch_limit(route.target, route.max_batch_size)
        self._ready: deque[DeliveryItem] = deque()
        self._retries: list[tuple[float, int, DeliveryItem]] = []
        self._seq = itertools.count()
        self._outstanding = 0
        self._retiring = False
        self._scope: anyio.CancelScope | None = None
        # Lazily made anyio events (they need a running loop); set and forgotten on change.
        # Idle workers, each waiting on its own event: a new item wakes one worker, not all.
        self._idle: deque[anyio.Event] = deque()
        self._retry_event: anyio.Event | None = None
        self._room_event: anyio.Event | None = None

    # -- feeding ---------------------------------------------------------------------------

    @property
    def outstanding(self) -> int:
        """Items submitted and not ended yet (queued, in delivery or waiting to retry)."""
        return self._outstanding

    def offer(self, item: DeliveryItem) -> bool:
        """Queue ``item`` if there is room now; ``False`` (not queued) if not."""
        if self._outstanding >= self.route.capacity:
            return False
        self._outstanding += 1
        self._push_ready(item)
        return True

    async def submit(self, item: DeliveryItem) -> bool:
        """Queue ``item``, waiting for room; return whether it had to wait (a throttle)."""
        waited = False
        while self._outstanding >= self.route.capacity:
            waited = True
            if self._room_event is None:
                self._room_event = anyio.Event()
            await self._room_event.wait()
        self._outstanding += 1
        self._push_ready(item)
        return waited

    def _push_ready(self, item: DeliveryItem) -> None:
        self._ready.append(item)
        if self._idle:
            self._idle.popleft().set()

    def retire(self) -> None:
        """Take no more items; stop once the outstanding ones have ended."""
        self._retiring = True
        if self._outstanding == 0 and self._scope is not None:
            self._scope.cancel()

    # -- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            self._scope = tg.cancel_scope
            if self._retiring and self._outstanding == 0:
                tg.cancel_scope.cancel()
            for _ in range(self.route.concurrency):
                tg.start_soon(self._worker)
            tg.start_soon(self._pump)

    async def _worker(self) -> None:
        delivering_for.set(self.route.bus_name)  # this task's context only
        ready = self._ready
        while True:
            while not ready:
                wakeup = anyio.Event()
                self._idle.append(wakeup)
                await wakeup.wait()
            first = ready.popleft()
            batch = [first]
            # A batch shares one bus chain, as the chain is set once per ``deliver`` call.
            while ready and len(batch) < self._max_batch and ready[0].chain == first.chain:
                batch.append(ready.popleft())
            await self._deliver(batch)

    async def _pump(self) -> None:
        heap = self._retries
        while True:
            if self._retry_event is None:
                self._retry_event = anyio.Event()
            if not heap:
                await self._retry_event.wait()
                continue
            delay = heap[0][0] - anyio.current_time()
            if delay <= 0:
                self._push_ready(heapq.heappop(heap)[2])
                continue
            with anyio.move_on_after(delay):
                await self._retry_event.wait()

    # -- one attempt -----------------------------------------------------------------------

    async def _deliver(self, batch: list[DeliveryItem]) -> None:
        route = self.route
        for item in batch:
            item.attempts += 1
        context = DeliveryContext(
            kind="rule",
            name=route.rule_name,
            arn=route.rule_arn,
            target_id=route.target_id,
            target_arn=route.target_arn,
            attempt=max(item.attempts for item in batch),
            event_ids=tuple(item.event["id"] for item in batch),
        )
        self._counters["Invocations"] += len(batch)
        self._rule_counters["Invocations"] += len(batch)
        token = bus_chain.set((*batch[0].chain, route.bus_name)) if self._sets_chain else None
        try:
            await route.target.deliver([item.payload for item in batch], context)
        except Exception as exc:
            if token is not None:
                bus_chain.reset(token)
            for item in batch:
                await self._failed(item, exc)
            return
        if token is not None:
            bus_chain.reset(token)
        if self._trace:
            for item in batch:
                _log.info(
                    "delivered",
                    bus=route.bus_name,
                    event_id=item.event["id"],
                    rule=route.rule_name,
                    target=route.target_id,
                    attempt=item.attempts,
                )
        self._finish(batch)

    async def _failed(self, item: DeliveryItem, exc: Exception) -> None:
        route = self.route
        age = (self._clock.now() - item.ingestion_time).total_seconds()
        decision = decide(self._rules, item.attempts, age, exc, jitter=self._rand())
        if not isinstance(decision, GiveUp):
            delay = decision.delay
            self._metrics.count_target(route.rule_name, route.target_id, "RetriedInvocations")
            _log.warning(
                "retried",
                bus=route.bus_name,
                event_id=item.event["id"],
                rule=route.rule_name,
                target=route.target_id,
                attempt=item.attempts,
                error_code=error_code(exc),
                error=_logged_error(exc),
                delay=round(delay, 3),
            )
            heapq.heappush(self._retries, (anyio.current_time() + delay, next(self._seq), item))
            if self._retry_event is not None:
                self._retry_event.set()
                self._retry_event = None
            return
        self._metrics.count_target(route.rule_name, route.target_id, "FailedInvocations")
        await self._dead_letter(item, exc, decision.condition, item.attempts - 1)
        self._finish([item])

    async def _dead_letter(
        self, item: DeliveryItem, exc: Exception, condition: Condition | None, retries_done: int
    ) -> None:
        route = self.route
        fields = {
            "bus": route.bus_name,
            "event_id": item.event["id"],
            "rule": route.rule_name,
            "target": route.target_id,
            "attempt": item.attempts,
            "error_code": error_code(exc),
            "error": _logged_error(exc),
            "exhausted_retry_condition": condition,
        }
        if route.dead_letter is None:
            self._metrics.count_target(route.rule_name, route.target_id, "DroppedInvocations")
            self._metrics.count_bus("DroppedInvocations")
            _log.error("undeliverable, no dead-letter target", **fields)
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
            event_id=item.event["id"],
        )
        try:
            event_json = json.dumps(item.event, separators=(",", ":"), ensure_ascii=False)
            await route.dead_letter.deliver([event_json], context)
        except Exception as dlq_exc:
            self._metrics.count_target(route.rule_name, route.target_id, "InvocationsFailedToBeSentToDLQ")
            _log.error(
                "dead letter failed",
                dlq_error_code=error_code(dlq_exc),
                dlq_error=_logged_error(dlq_exc),
                **fields,
            )
            return
        self._metrics.count_target(route.rule_name, route.target_id, "InvocationsSentToDLQ")
        _log.warning("dead-lettered", **fields)

    def _finish(self, items: list[DeliveryItem]) -> None:
        self._outstanding -= len(items)
        if self._room_event is not None:
            self._room_event.set()
            self._room_event = None
        self._on_done(items)
        if self._retiring and self._outstanding == 0 and self._scope is not None:
            self._scope.cancel()



def _logged_error(exc: BaseException) -> str:
    return redact.error_text(exc, _MAX_LOGGED_ERROR)
