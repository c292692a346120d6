"""The two seams of a bus's state: the ``EventLog`` (accepted events) and the ``DeliveryQueue``
(the deliveries they caused).

An event's journey through them: ``put_events`` appends it to the log; the router consumes it,
matches the rules and puts its fan-out, one ``Delivery`` per (event, rule, target), in the
delivery queue, then acknowledges it in the log: the log only holds events not routed yet. Each
rule target's dispatcher leases its deliveries from the queue, and acknowledges each once it
ended (delivered, dead-lettered or dropped) or releases it to come back after a delay (a retry
waiting on its backoff lives in the queue, with its due time and attempt count).

A backend implements both, over the same storage, so that committing a fan-out and
acknowledging its event can be one transaction: ``EventLog.open`` returns the backend's queue.
The in-memory backend is in ``memory.py``; a durable one (SQLite) or a distributed one (NATS
JetStream) is one more module beside it. ``eventbus.testing.contracts`` holds the suites every
implementation passes. Calls that may cross a network (acknowledgements, counts) are async.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from eventbus.bus.clock import Clock
from eventbus.errors import LogClosedError

__all__ = ["Delivery", "DeliveryQueue", "EventLog", "KeepsSchedules", "LogClosedError", "LogRecord"]


@dataclass(slots=True)
class LogRecord:
    """One accepted event as the log keeps it.

    ``chain`` is the tuple of bus names the event has passed through before reaching this bus
    (loop protection); ``target_rule`` names the one rule a scheduled event is for (it is not
    matched against patterns), and with ``target_id`` the one rule target a redriven dead
    letter goes back to; ``only_rules`` restricts matching to those rules (a replay's rule
    filter); ``offset`` is assigned by the log and is what ``ack`` takes.

    A durable log keeps every field. A record with ``target_rule`` and no ``target_id`` is a
    scheduled event: a log that keeps schedules (``last_fires``) remembers its ``time`` as the
    rule's last fire, in the same transaction.
    """

    event: dict[str, Any]
    ingestion_time: datetime
    chain: tuple[str, ...] = ()
    target_rule: str | None = None
    offset: int = field(default=-1)
    target_id: str | None = None
    only_rules: tuple[str, ...] | None = None
    #: The event as JSON text, when the caller has it already (a replay reading an archive): a
    #: log that stores text need not encode the event again. Must decode to ``event``.
    text: str | None = field(default=None, repr=False, compare=False)


@dataclass(slots=True)
class Delivery:
    """One event on its way to one rule target: the unit of delivery work.

    ``route`` names the rule target (``"<rule>/<target id>"``), ``payload`` is the rendered target
    input and ``event`` the event itself (what a dead letter carries); ``offset`` is the log
    offset of the event it came from. ``attempts`` counts the times it was leased (so the
    attempt under way during a lease), kept by the queue across releases and restarts.
    ``handle`` is the queue's own (a row id, a lease token, a message); opaque to the bus.
    ``event_text`` is the event as compact JSON when the router wrote it already (a target that
    takes the whole event): a queue that stores text need not encode the event again.
    """

    route: str
    event: dict[str, Any]
    payload: str
    ingestion_time: datetime
    chain: tuple[str, ...] = ()
    offset: int = -1
    attempts: int = 0
    handle: Any = field(default=None, repr=False)
    event_text: str | None = field(default=None, repr=False, compare=False)


@runtime_checkable
class DeliveryQueue(Protocol):
    """Deliveries from routing until they end, partitioned by route, on the bus's clock."""

    async def put(self, deliveries: Sequence[Delivery]) -> None:
        """Store ``deliveries``, due at once; once this returns they survive what the store
        survives. The router puts every delivery of one event in the same call."""
        ...

    async def lease(self, route: str, max_items: int) -> list[Delivery]:
        """Wait until deliveries of ``route`` are due and lease up to ``max_items`` of them, the
        longest waiting first, each one attempt further (``attempts + 1``).

        A leased delivery is handed to no one else until it is acknowledged or released (or,
        for a durable store, until the process holding the lease is gone: what it leased comes
        back, attempts kept). Returns ``[]`` once the queue is closed.
        """
        ...

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """These leased deliveries ended (delivered, dead-lettered or dropped): forget them."""
        ...

    async def release(self, deliveries: Sequence[Delivery], delay: float) -> None:
        """These leased deliveries are due again ``delay`` seconds from now on the queue's clock,
        with their attempt counts (a retry waiting on its backoff)."""
        ...

    async def pending(self) -> int:
        """Deliveries put and not acknowledged: due, leased or waiting for their time."""
        ...

    async def routes(self) -> Mapping[str, int]:
        """The routes that have pending deliveries, with how many (what a restart resumes)."""
        ...

    def pending_events(self) -> list[dict[str, Any]]:
        """The events of the pending deliveries that would be lost if the process ended now,
        each once, oldest first: all of them for a queue in memory, none for a durable one
        (a shutdown names them so they can be put again)."""
        ...

    async def close(self) -> None:
        """Wake every ``lease`` (they return ``[]``); idempotent. What is stored stays stored."""
        ...


@runtime_checkable
class EventLog(Protocol):
    """Accepted events until they are routed. Every method is cheap except the waiting ones."""

    async def open(self, bus: str, clock: Clock) -> DeliveryQueue:
        """Get ready to serve the bus named ``bus`` and return the delivery queue stored with
        this log, whose due times are on ``clock``. Called once, before the bus uses either."""
        ...

    async def append(self, records: Sequence[LogRecord], *, wait: bool = True) -> int:
        """Append records in order and return how many were taken; once this returns they
        survive what the store survives.

        With ``wait`` the call waits for room and takes them all; without it, it takes the
        longest prefix that fits at once (the rest is the caller's to refuse).
        Raises ``LogClosedError`` once closed.
        """
        ...

    async def consume(self, max_records: int) -> list[LogRecord]:
        """Wait for and return up to ``max_records`` records not handed out yet, in order.

        Returns an empty list once the log is closed and nothing is left to hand out.
        """
        ...

    async def ack(self, offsets: Sequence[int]) -> None:
        """These records are routed (their fan-out is in the delivery queue): forget them."""
        ...

    async def pending(self) -> int:
        """Records appended and not acknowledged yet (not routed yet)."""
        ...

    def pending_events(self) -> list[dict[str, Any]]:
        """The events of the records ``pending`` counts that would be lost if the process ended
        now, oldest first: all of them for a log in memory, none for a durable one."""
        ...

    async def close(self) -> None:
        """Refuse further appends and wake consumers; idempotent. What is stored stays stored."""
        ...


@runtime_checkable
class KeepsSchedules(Protocol):
    """An ``EventLog`` that remembers when each scheduled rule last fired (a durable one): it
    stores the ``time`` of each scheduled event it appends (a record with ``target_rule`` and no
    ``target_id``) in the same transaction, and the bus's scheduler resumes from it."""

    async def last_fires(self) -> Mapping[str, datetime]:
        """Each scheduled rule's last fire time on this bus, by rule name."""
        ...
