"""``settle``: wait until nothing can happen any more without the clock moving."""

from __future__ import annotations

from typing import Any

import anyio

__all__ = ["settle"]


async def settle(*buses: Any) -> None:
    """Return once every task is blocked and no bus's log is writing anything for one of them.

    With the in-memory backend this is ``anyio.wait_all_tasks_blocked()``; a durable log commits
    in a thread of its own, so a task waiting for a commit looks blocked while it is not: each
    bus's log that offers ``settle()`` is waited for too. Use it with a ``ManualClock`` before
    asserting that something happened, or that nothing did::

        clock.advance(600)
        await settle(bus)
        assert target.payloads == [...]
    """
    logs = [getattr(bus, "log", bus) for bus in buses]
    while True:
        await anyio.wait_all_tasks_blocked()
        busy = [log for log in logs if not _idle(log)]
        if not busy:
            return
        for log in busy:
            await log.settle()


def _idle(log: Any) -> bool:
    if getattr(log, "settle", None) is None:
        return True
    store = getattr(log, "store", None)
    return store is None or bool(getattr(store, "idle", True))
