"""What the console remembers of each bus while the server runs: its last routed events and its
delivery outcomes counted per target.

``Watch.follow(bus)`` runs for each bus from the server's start (``EventbusServer.bus_followers``)
and reads ``bus.routed()`` and ``bus.outcomes()``, both bounded streams the bus never waits on.
It keeps the last ``keep`` events per bus (the rules page explains them) and, per rule target,
how many deliveries ended delivered, dead-lettered or dropped, how many attempts failed, and how
many wait for a retry now (the topology's counters).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio

from eventbus.bus.outcomes import Outcome
from eventbus.bus.routed import RoutedEvent

__all__ = ["TargetCounts", "Watch"]

#: Deliveries remembered as waiting for a retry, per target (oldest forgotten past it).
_MAX_WAITING = 10_000


@dataclass(slots=True)
class TargetCounts:
    delivered: int = 0
    failed: int = 0
    dead_lettered: int = 0
    dropped: int = 0
    #: Event ids whose delivery to this target waits for a retry now.
    waiting: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def add(self, outcome: Outcome) -> None:
        kind = outcome.kind
        self.waiting.pop(outcome.event_id, None)
        if kind == "delivered":
            self.delivered += 1
        elif kind == "failed":
            self.failed += 1
        elif kind == "dead-lettered":
            self.dead_lettered += 1
        elif kind == "dropped":
            self.dropped += 1
        elif kind == "retry-scheduled":
            self.waiting[outcome.event_id] = None
            if len(self.waiting) > _MAX_WAITING:
                self.waiting.popitem(last=False)

    def as_dict(self) -> dict[str, int]:
        return {
            "delivered": self.delivered,
            "failed": self.failed,
            "dead-lettered": self.dead_lettered,
            "retrying": len(self.waiting),
            "dropped": self.dropped,
        }


class Watch:
    def __init__(self, keep: int = 100) -> None:
        self.keep = keep
        self._recent: dict[str, deque[RoutedEvent]] = {}
        #: bus -> "rule/target id" -> counts.
        self._targets: dict[str, dict[str, TargetCounts]] = {}
        self.lost: dict[str, int] = {}

    async def follow(self, bus: Any) -> None:
        """Read ``bus``'s routed events and outcomes until it stops."""
        recent = self._recent.setdefault(bus.name, deque(maxlen=self.keep))
        counts = self._targets.setdefault(bus.name, {})
        # Subscribed here, before the first await: nothing routed from now on is missed.
        routed, outcomes = bus.routed(buffer=self.keep), bus.outcomes(buffer=10_000)

        async def read_routed() -> None:
            async with routed:
                async for event in routed:
                    recent.append(event)

        async def read_outcomes() -> None:
            async with outcomes:
                async for outcome in outcomes:
                    key = f"{outcome.rule}/{outcome.target_id}"
                    found = counts.get(key)
                    if found is None:
                        found = counts[key] = TargetCounts()
                    found.add(outcome)
                    if outcome.lost_before:
                        self.lost[bus.name] = self.lost.get(bus.name, 0) + outcome.lost_before

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_routed)
            tg.start_soon(read_outcomes)

    def recent(self, bus: str, limit: int | None = None) -> list[RoutedEvent]:
        """The bus's last routed events, newest first."""
        events = list(reversed(self._recent.get(bus, ())))
        return events if limit is None else events[:limit]

    def target_counts(self, bus: str, address: str) -> dict[str, int]:
        found = self._targets.get(bus, {}).get(address)
        return (found or TargetCounts()).as_dict()

    def rule_counts(self, bus: str, rule: str) -> dict[str, int]:
        return _sum(c.as_dict() for key, c in self._targets.get(bus, {}).items() if key.split("/", 1)[0] == rule)


def _sum(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total = TargetCounts().as_dict()
    for one in counts:
        for key, value in one.items():
            total[key] += value
    return total
