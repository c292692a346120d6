"""``RuleBucket``: the rules put while a bus runs, in a key-value bucket every worker follows.

One key per rule (its name as a token), whose value is the rule and its targets as JSON; a
deleted rule is a delete marker, so a worker that starts later learns of the deletion too.
``follow`` hands every current entry, then every change, to a callback, and sets ``ready`` once
the current ones are handed over (before a worker routes its first event).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio

from eventbus._logger import get_logger
from eventbus.bus.logs.jetstream.names import token, untoken

__all__ = ["RuleBucket"]

_log = get_logger("eventbus.jetstream")

_DELETED = ("DEL", "PURGE")


class RuleBucket:
    """The rules bucket of bus ``bus`` (``JetStreamEventLog.rule_bucket()`` makes it)."""

    def __init__(self, kv: Any, bus: str) -> None:
        self._kv = kv
        self.bus = bus
        self._watcher: Any = None
        self._stopped = False

    async def put(self, name: str, doc: dict[str, Any]) -> None:
        await self._kv.put(token(name), json.dumps(doc, separators=(",", ":"), sort_keys=True).encode())

    async def delete(self, name: str) -> None:
        await self._kv.delete(token(name))

    async def follow(self, apply: Callable[[str, dict[str, Any] | None], None], ready: anyio.Event) -> None:
        """Hand each rule in the bucket, then each change, to ``apply(name, doc or None)``;
        runs until ``stop`` (watching again after a lost connection)."""
        while not self._stopped:
            try:
                self._watcher = watcher = await self._kv.watchall()
                async for entry in watcher:
                    if entry is None:
                        ready.set()  # every current entry is handed over
                        continue
                    name = untoken(entry.key)
                    if entry.operation in _DELETED or not entry.value:
                        apply(name, None)
                        continue
                    try:
                        doc = json.loads(entry.value)
                    except ValueError:
                        _log.error("unreadable rule in the rules bucket; ignored", bus=self.bus, rule=name)
                        continue
                    apply(name, doc)
            except Exception as exc:
                if self._stopped:
                    return
                _log.warning("following the rules bucket failed; following again", bus=self.bus, error=str(exc))
                await anyio.sleep(1.0)

    async def stop(self) -> None:
        self._stopped = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            try:
                await watcher.stop()
            except Exception:  # the connection is gone: nothing left to stop
                return
