"""``RowFeed``: the rows waiting to run, fresh from the reader or due again for a retry.

The reader task puts rows in as it reads them (a chunk at a time), workers take them one at a
time. Taking a row is a ``deque.popleft``: the feed is what every row passes through, so its
fast path allocates nothing and wakes nobody. A worker that finds the feed empty waits on an
event of its own, and a chunk put in wakes as many waiters as it brings rows.

Retries wait in a heap on the map's clock, not in a worker: a row retried in a minute costs a
heap entry. ``pump_retries`` (a task of the map) moves them to the front of the feed when they
are due: they are older than the rows behind them.

The feed also counts the rows that have not ended (``outstanding``: waiting, running or waiting
to retry), which is how workers know when to stop: the reader is done and nothing is left.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
from collections import deque
from datetime import datetime, timedelta

import anyio

from eventbus.bus.clock import Clock, wait_until
from eventbus.maps.rows import Row

__all__ = ["RowFeed"]


class RowFeed:
    """Rows ready to run, retries due later, and the count of rows not ended."""

    def __init__(self, clock: Clock, *, high_water: int) -> None:
        self.clock = clock
        #: The reader reads no more while this many rows wait (on top of those running).
        self.high_water = high_water
        self.ready: deque[Row] = deque()
        self._later: list[tuple[datetime, int, Row]] = []
        self._order = itertools.count()
        self._waiters: deque[anyio.Event] = deque()
        self._room: anyio.Event | None = None
        self._retry_added: anyio.Event | None = None
        #: Rows put in and not ended yet (waiting, running, or waiting for a retry).
        self.outstanding = 0
        #: The reader will put no more rows in.
        self.reading_done = False
        self.closed = False

    # -- the workers' side ---------------------------------------------------------------------

    def take(self) -> Row | None:
        """The next row if one is ready, without waiting."""
        ready = self.ready
        if not ready:
            return None
        row = ready.popleft()
        if self._room is not None and len(ready) < self.high_water:
            self._room.set()
            self._room = None
        return row

    async def next(self) -> Row | None:
        """The next row, waiting for one; ``None`` once no row can come any more (the reader is
        done and every row ended) or the feed is closed."""
        while True:
            row = self.take()
            if row is not None:
                return row
            if self.closed or (self.reading_done and self.outstanding == 0):
                return None
            event = anyio.Event()
            self._waiters.append(event)
            try:
                await event.wait()
            finally:
                if not event.is_set():
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(event)

    def ended(self, count: int = 1) -> None:
        """``count`` rows ended (succeeded or failed for good)."""
        self.outstanding -= count
        if self.outstanding == 0 and self.reading_done:
            self._wake_all()

    # -- the reader's side ---------------------------------------------------------------------

    def add(self, count: int) -> None:
        """``count`` rows were read (to be put in, or ended at once if malformed)."""
        self.outstanding += count

    def put(self, rows: list[Row]) -> None:
        """Rows ready to run, in order; wakes as many waiting workers."""
        self.ready.extend(rows)
        waiters = self._waiters
        for _ in range(min(len(rows), len(waiters))):
            waiters.popleft().set()

    async def wait_room(self) -> None:
        """Return once fewer than ``high_water`` rows wait (or the feed is closed)."""
        while len(self.ready) >= self.high_water and not self.closed:
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()

    def finish_reading(self) -> None:
        self.reading_done = True
        if self.outstanding == 0:
            self._wake_all()

    # -- retries -------------------------------------------------------------------------------

    def retry(self, row: Row, delay: float) -> None:
        """Run ``row`` again ``delay`` seconds from now (on the clock), one attempt later."""
        row.attempt += 1
        if delay <= 0:
            self.ready.appendleft(row)
            if self._waiters:
                self._waiters.popleft().set()
            return
        due = self.clock.now() + timedelta(seconds=delay)
        earliest = self._later[0][0] if self._later else None
        heapq.heappush(self._later, (due, next(self._order), row))
        if (earliest is None or due < earliest) and self._retry_added is not None:
            self._retry_added.set()

    @property
    def retrying(self) -> int:
        """Rows waiting for their retry's time."""
        return len(self._later)

    async def pump_retries(self) -> None:
        """Move retries to the front of the feed as they come due; runs until cancelled."""
        later = self._later
        while True:
            self._retry_added = anyio.Event()
            if later:
                await wait_until(self.clock, later[0][0], self._retry_added)
            else:
                await self._retry_added.wait()
            now = self.clock.now()
            due: list[Row] = []
            while later and later[0][0] <= now:
                due.append(heapq.heappop(later)[2])
            if due:
                self.ready.extendleft(reversed(due))
                for _ in range(min(len(due), len(self._waiters))):
                    self._waiters.popleft().set()

    # -- stopping ------------------------------------------------------------------------------

    def close(self) -> None:
        """No row is handed out any more: every waiting worker returns ``None``."""
        self.closed = True
        self.ready.clear()
        self._later.clear()
        self._wake_all()
        if self._room is not None:
            self._room.set()

    def _wake_all(self) -> None:
        while self._waiters:
            self._waiters.popleft().set()
