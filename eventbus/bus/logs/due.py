"""``DueQueue``: items ready now, in order, and items due later on a clock.

The in-memory building block behind the in-memory delivery queue (one per rule target) and the
pipes' buffered sources: ``push`` adds an item ready at once, ``push_at`` one that becomes ready
at a time on the clock (a retry waiting on its backoff), ``take`` hands out what is due (the
waiting ones first: they are older) and ``wait`` sleeps until something may be due. A retry
waiting for minutes costs a heap entry, no task.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
from collections import deque
from datetime import datetime
from typing import Generic, TypeVar

import anyio

from eventbus.bus.clock import Clock, wait_until

__all__ = ["DueQueue"]

T = TypeVar("T")


class DueQueue(Generic[T]):
    """Ready items in FIFO order plus a heap of items due later on ``clock``."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._ready: deque[T] = deque()
        self._later: list[tuple[datetime, int, T]] = []
        self._seq = itertools.count()
        # One event per waiter, so a new item wakes one waiter rather than all of them.
        self._waiters: deque[anyio.Event] = deque()
        self._closed = False

    def __len__(self) -> int:
        return len(self._ready) + len(self._later)

    @property
    def ready(self) -> int:
        """Items ready now (those due later not counted)."""
        return len(self._ready)

    @property
    def later(self) -> int:
        """Items waiting for their time."""
        return len(self._later)

    def push(self, item: T) -> None:
        """Add ``item``, ready now; wakes one waiter."""
        self._ready.append(item)
        if self._waiters:
            self._waiters.popleft().set()

    def push_many(self, items: list[T]) -> None:
        """Add ``items`` in order, ready now; wakes as many waiters."""
        self._ready.extend(items)
        for _ in range(min(len(items), len(self._waiters))):
            self._waiters.popleft().set()

    def push_at(self, item: T, due: datetime) -> None:
        """Add ``item``, ready once the clock reaches ``due``."""
        earliest = self._later[0][0] if self._later else None
        heapq.heappush(self._later, (due, next(self._seq), item))
        if earliest is None or due < earliest:
            # Waiters sleep until the earliest due time: it moved, so they look again.
            self.wake_all()

    def take(self, limit: int) -> list[T]:
        """Up to ``limit`` items that are due: those that waited for their time first."""
        out: list[T] = []
        later = self._later
        if later:
            now = self.clock.now()
            while later and len(out) < limit and later[0][0] <= now:
                out.append(heapq.heappop(later)[2])
        ready = self._ready
        if len(out) < limit and ready:
            if not out and len(ready) <= limit:
                out = list(ready)
                ready.clear()
            else:
                while ready and len(out) < limit:
                    out.append(ready.popleft())
        if ready and self._waiters:
            # More is ready than this taker took: pass the wake-up on.
            self._waiters.popleft().set()
        return out

    def make_ready(self) -> None:
        """Move every waiting item to the front of the ready ones, in order of due time."""
        waiting = [heapq.heappop(self._later)[2] for _ in range(len(self._later))]
        self._ready.extendleft(reversed(waiting))

    async def wait(self) -> None:
        """Return once an item may be due: one was pushed, the earliest due time came, or the
        queue was woken or closed. It may return with nothing due: take, then wait again."""
        if self._closed:
            return
        event = anyio.Event()
        self._waiters.append(event)
        try:
            if self._later:
                await wait_until(self.clock, self._later[0][0], event)
            else:
                await event.wait()
        finally:
            if not event.is_set():
                with contextlib.suppress(ValueError):
                    self._waiters.remove(event)

    def wake_all(self) -> None:
        while self._waiters:
            self._waiters.popleft().set()

    def close(self) -> None:
        """Wake every waiter; ``wait`` returns at once from now on."""
        self._closed = True
        self.wake_all()

    @property
    def closed(self) -> bool:
        return self._closed
