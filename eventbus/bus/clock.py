"""The clock behind schedules and event ages, injectable so tests never sleep for minutes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "ManualClock", "Stopwatch", "SystemClock", "wait_until"]


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return at or after ``when``."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await anyio.sleep(delay)


class ManualClock:
    """A clock that only moves when told to: ``advance`` wakes every sleeper whose time came."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        # Created on first use: an anyio event needs a running event loop.
        self._changed: anyio.Event | None = None

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        while self._now < when:
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()

    def advance(self, delta: timedelta | float) -> None:
        self._now += delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if self._changed is not None:
            self._changed.set()
            self._changed = None


class Stopwatch:
    """Seconds, as floats, for timers that space or expire things (rate limits, token lifetimes,
    files settling): ``time.monotonic`` by default, which no wall-clock jump disturbs, or the
    time of ``clock`` when one is given, counted from when the stopwatch was made (so a
    ``ManualClock`` drives them in tests, to the microsecond)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock
        self._origin = clock.now() if clock is not None else None

    def now(self) -> float:
        if self.clock is None or self._origin is None:
            return time.monotonic()
        return (self.clock.now() - self._origin).total_seconds()

    async def sleep_until(self, moment: float) -> None:
        """Return at or after ``moment`` (a value of ``now()``)."""
        if self.clock is None or self._origin is None:
            delay = moment - time.monotonic()
            if delay > 0:
                await anyio.sleep(delay)
            return
        await self.clock.sleep_until(self._origin + timedelta(seconds=moment))


async def wait_until(clock: Clock, when: datetime, event: anyio.Event) -> None:
    """Return once ``clock`` reaches ``when`` or ``event`` is set, whichever comes first."""
    if type(clock) is SystemClock:
        # The common case needs no second task: a timeout on the event is the same race.
        with anyio.move_on_after(max(0.0, (when - clock.now()).total_seconds())):
            await event.wait()
        return
    async with anyio.create_task_group() as tg:

        async def sleep() -> None:
            await clock.sleep_until(when)
            tg.cancel_scope.cancel()

        async def watch() -> None:
            await event.wait()
            tg.cancel_scope.cancel()

        tg.start_soon(sleep)
        tg.start_soon(watch)
