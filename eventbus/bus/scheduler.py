"""Scheduled rules: fire ``rate(...)``/``cron(...)``/``at(...)`` rules on an injectable clock.

One task serves every scheduled rule of a bus: it sleeps until the earliest fire time (or until
the set of schedules changes), then calls ``fire(rule_name, when)`` for each rule that is due. A
clock that jumped over several fire times fires once (stamped with the first missed time) and
goes on from now: missed invocations are not replayed one by one. A durable log remembers each
rule's last fire (``resume``), so that a restart goes on from there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

import anyio

from eventbus.bus.clock import Clock, wait_until
from eventbus.schedule import RateSchedule, Schedule

__all__ = ["Scheduler"]


class Scheduler:
    def __init__(self, clock: Clock, fire: Callable[[str, datetime], Awaitable[None]]) -> None:
        self._clock = clock
        self._fire = fire
        self._next: dict[str, tuple[Schedule, datetime | None]] = {}
        self._changed: anyio.Event | None = None

    def __len__(self) -> int:
        return len(self._next)

    def set(self, rule: str, schedule: Schedule) -> None:
        """Add or replace the schedule of ``rule``, counting from now."""
        self._next[rule] = (schedule, schedule.next_after(self._clock.now()))
        self._notify()

    def resume(self, fired: Mapping[str, datetime]) -> None:
        """Go on from each rule's last fire time, as a durable log remembers it: the next fire
        is the first one after it, so a restart neither fires a period twice nor skips one (a
        ``rate`` counts from its last fire, not from the restart)."""
        for rule, (schedule, _) in list(self._next.items()):
            last = fired.get(rule)
            if last is None:
                continue
            if isinstance(schedule, RateSchedule):
                schedule = RateSchedule(schedule.expression, schedule.period, last)
            self._next[rule] = (schedule, schedule.next_after(last))
        self._notify()

    def remove(self, rule: str) -> None:
        if self._next.pop(rule, None) is not None:
            self._notify()

    def next_fire(self, rule: str) -> datetime | None:
        entry = self._next.get(rule)
        return None if entry is None else entry[1]

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def run(self) -> None:
        while True:
            if self._changed is None:
                self._changed = anyio.Event()
            changed = self._changed
            times = [when for _, when in self._next.values() if when is not None]
            if not times:
                await changed.wait()
                continue
            earliest = min(times)
            if self._clock.now() < earliest:
                await wait_until(self._clock, earliest, changed)
                continue
            now = self._clock.now()
            due = [(rule, when) for rule, (_, when) in self._next.items() if when is not None and when <= now]
            for rule, when in due:
                schedule, _ = self._next[rule]
                self._next[rule] = (schedule, schedule.next_after(now))
                await self._fire(rule, when)
