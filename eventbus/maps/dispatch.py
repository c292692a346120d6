"""Where a map's rows run: ``RowDispatcher``, and ``LocalDispatcher``, a pool of tasks here.

The map reads the rows, decides what a failure means (retry, dead letter, failing the map) and
writes the results; a dispatcher only takes rows from the feed, runs them and reports each
outcome. That line is the seam for running rows elsewhere: a dispatcher that publishes rows to a
work queue (a JetStream stream) and reads the outcomes back would spread a map over several
worker processes, with the reading, the retry decisions and the results staying in one place.

``LocalDispatcher`` starts ``concurrency`` long-lived workers, each taking the next row, awaiting
the target and reporting, in a loop: no task is created per row, and a worker that finds a row
ready takes it without a context switch. A worker only waits when the feed is empty.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio

from eventbus.maps.feed import RowFeed
from eventbus.maps.rows import Row

__all__ = ["Failed", "Invoke", "LocalDispatcher", "RowDispatcher", "Succeeded"]

#: Runs one row: the target's answer, or an exception.
Invoke = Callable[[Row], Awaitable[Any]]
#: A row's target answered: record it (may raise, when the answer cannot be kept: the row failed).
Succeeded = Callable[[Row, Any], None]
#: A row's attempt failed: decide its fate (retry it through the feed, or end it).
Failed = Callable[[Row, BaseException], Awaitable[None]]


class RowDispatcher(Protocol):
    """Runs rows from a feed until it has none left."""

    async def run(
        self, feed: RowFeed, invoke: Invoke, succeeded: Succeeded, failed: Failed, concurrency: int
    ) -> None:
        """Take rows from ``feed`` until ``feed.next()`` answers ``None``, at most
        ``concurrency`` at once; report each with ``succeeded`` or ``failed``. Cancelling the
        call abandons the rows running (the map counts them as aborted)."""
        ...


class LocalDispatcher:
    """``concurrency`` worker tasks in this process and event loop."""

    def __repr__(self) -> str:
        return "LocalDispatcher()"

    async def run(
        self, feed: RowFeed, invoke: Invoke, succeeded: Succeeded, failed: Failed, concurrency: int
    ) -> None:
        async def worker() -> None:
            take = feed.take
            while True:
                row = take()
                if row is None:
                    row = await feed.next()
                    if row is None:
                        return
                try:
                    succeeded(row, await invoke(row))
                except Exception as exc:
                    await failed(row, exc)

        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
