"""Messages a worker holds (an event being routed, a delivery being delivered), kept alive.

JetStream gives a message to another worker when the one holding it stays silent for the
consumer's ack wait: that is how a killed worker's work moves on. A live worker that is merely
slow (a target taking its time) must not lose its messages that way, so ``Held`` tells the
server "still working" (``+WPI``) for every message held longer than a third of the ack wait.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from eventbus._logger import get_logger

__all__ = ["Held"]

_log = get_logger("eventbus.jetstream")


class Held:
    """Messages by key, renewed every ``ack_wait / 3`` seconds while held."""

    def __init__(self, ack_wait: float) -> None:
        self._every = ack_wait / 3
        self._msgs: dict[Any, tuple[Any, float]] = {}
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._msgs)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._renew())

    def hold(self, key: Any, msg: Any) -> None:
        self._msgs[key] = (msg, time.monotonic())

    def drop(self, key: Any) -> Any:
        """The message held under ``key`` (``None`` if none), no longer held."""
        entry = self._msgs.pop(key, None)
        return None if entry is None else entry[0]

    def take_all(self) -> list[Any]:
        msgs = [msg for msg, _ in self._msgs.values()]
        self._msgs.clear()
        return msgs

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            due = time.monotonic() - self._every
            for key, (msg, since) in list(self._msgs.items()):
                if since <= due and key in self._msgs:
                    try:
                        await msg.in_progress()
                    except Exception as exc:  # a lost connection: the server will redeliver
                        _log.debug("could not renew a lease", error=str(exc))
                        continue
                    self._msgs[key] = (msg, time.monotonic())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()  # it ends at its next await; nothing to wait for
