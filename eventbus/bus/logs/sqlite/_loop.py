"""Calling back into an event loop from another thread, on asyncio and trio alike.

The SQLite writer thread finishes operations that coroutines on one or more event loops await;
it hands each loop one callable per batch (``LoopHandle.call_soon``) rather than blocking until
the loop ran it, which ``anyio.from_thread`` would do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sniffio

__all__ = ["LoopHandle"]


class LoopHandle:
    """The running event loop, callable from any thread (``call_soon``)."""

    __slots__ = ("_call", "key")

    def __init__(self, call: Callable[[Callable[[], Any]], Any], key: object) -> None:
        self._call = call
        #: Identifies the loop: two handles of one loop have the same key.
        self.key = key

    @staticmethod
    def current() -> LoopHandle:
        """The loop running the calling task."""
        library = sniffio.current_async_library()
        if library == "asyncio":
            import asyncio

            loop = asyncio.get_running_loop()
            return LoopHandle(loop.call_soon_threadsafe, loop)
        if library == "trio":
            import trio

            token = trio.lowlevel.current_trio_token()
            return LoopHandle(token.run_sync_soon, token)
        raise RuntimeError(f"unsupported async library: {library}")

    def call_soon(self, func: Callable[[], Any]) -> bool:
        """Run ``func`` on the loop soon; ``False`` if the loop is gone (nobody waits any more)."""
        try:
            self._call(func)
        except RuntimeError:
            return False
        return True
