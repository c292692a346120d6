"""Answers kept by a hash of the route and the request body, for a route's ``cache.ttl``.

Only successful answers are kept. The key is a SHA-256 of the route's name and the body's bytes,
so two requests share an answer exactly when they ask the same thing of the same route, whoever
asks (an answer is not private to an API key). Expiry is read from a ``Stopwatch``, so tests step
an injected clock instead of waiting.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from eventbus.bus.clock import Stopwatch
from eventbus.config.invoke import CacheSettings

__all__ = ["AnswerCache", "Cached", "cache_key"]


@dataclass(frozen=True, slots=True)
class Cached:
    """One kept answer: the target's value (what a job's ``result`` holds)."""

    value: Any
    expires: float


def cache_key(route: str, body: bytes) -> str:
    digest = hashlib.sha256(route.encode())
    digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


class AnswerCache:
    def __init__(self, settings: CacheSettings, stopwatch: Stopwatch) -> None:
        self.settings = settings
        self.stopwatch = stopwatch
        self._entries: OrderedDict[str, Cached] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Cached | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.stopwatch.now() >= entry.expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: str, value: Any) -> None:
        self._entries[key] = Cached(value, self.stopwatch.now() + self.settings.ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.settings.max_entries:
            self._entries.popitem(last=False)
