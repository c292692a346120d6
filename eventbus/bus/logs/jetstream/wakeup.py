"""``Wakeup``: an ``anyio.Event`` made only when someone waits on it, fired and forgotten.

A worker's pullers and ready lists wake their waiters on every message that arrives; making an
event for each message cost more than the rest of its handling. A ``Wakeup`` makes one only for
a waiter, and ``fire`` sets it and drops it, so the next waiter waits for the next change.
"""

from __future__ import annotations

import anyio

__all__ = ["Wakeup"]


class Wakeup:
    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    def event(self) -> anyio.Event:
        """The event the next ``fire`` sets (made now if nobody waits yet)."""
        if self._event is None:
            self._event = anyio.Event()
        return self._event

    def fire(self) -> None:
        """Wake whoever waits now; a later waiter waits for the next ``fire``."""
        event, self._event = self._event, None
        if event is not None:
            event.set()
