"""The limits a route puts on its callers: a token bucket for each key, and a cap on invocations
running at once.

Buckets are timed by a ``Stopwatch`` (``time.monotonic``, or an injected ``Clock`` in tests), so
a test steps time instead of sleeping. A route keeps at most ``MAX_BUCKETS`` buckets: past that,
the buckets of keys not seen for longest go first (a key that comes back starts full again,
which only ever errs on the caller's side).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import anyio

from eventbus.bus.clock import Stopwatch
from eventbus.config.invoke import RateLimit
from eventbus.server.invoke.refusals import Refusal

__all__ = ["Gate", "KeyedBuckets", "TokenBucket", "bucket_key"]

MAX_BUCKETS = 100_000


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` a second; ``take`` spends one if there is one."""

    __slots__ = ("capacity", "last", "rate", "tokens")

    def __init__(self, rate: float, capacity: int, now: float) -> None:
        self.rate = rate
        self.capacity = float(capacity)
        self.tokens = float(capacity)
        self.last = now

    def take(self, now: float) -> float:
        """0 when a token was spent; otherwise the seconds until one will be there."""
        if now > self.last:
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
            self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class KeyedBuckets:
    """A ``TokenBucket`` for each caller of one route."""

    def __init__(self, route: str, limit: RateLimit, stopwatch: Stopwatch) -> None:
        self.route = route
        self.limit = limit
        self.stopwatch = stopwatch
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def check(self, key: str) -> None:
        """Spend one of ``key``'s tokens, or raise a 429 ``Refusal`` saying when to come back."""
        now = self.stopwatch.now()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.limit.per_second, self.limit.capacity, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        wait = bucket.take(now)
        if wait > 0:
            raise Refusal(
                429,
                "RateLimited",
                f"Route {self.route} allows {self.limit.per_second:g} requests a second "
                f"(bursts of {self.limit.capacity}) for each key; retry in {wait:.1f} seconds.",
                retry_after=wait,
            )


def bucket_key(api_key: str | None, client: str) -> str:
    """What a bucket is kept under: a digest of the API key (never the key itself), else the
    client's address."""
    if api_key:
        return "key:" + hashlib.sha256(api_key.encode()).hexdigest()
    return "client:" + client


class Gate:
    """At most ``limit`` invocations of a route at once. A request waits up to ``max_wait``
    seconds for a slot, then is refused (503); a job waits as long as it takes."""

    def __init__(self, route: str, limit: int, max_wait: float) -> None:
        self.route = route
        self.limit = limit
        self.max_wait = max_wait
        # Made on first use: a limiter belongs to the event loop that uses it.
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.limit)
        return self._limiter

    @property
    def running(self) -> int:
        return 0 if self._limiter is None else int(self._limiter.borrowed_tokens)

    async def enter_request(self, owner: object) -> None:
        """Take a slot for a request, or raise a 503 ``Refusal`` after ``max_wait``."""
        limiter = self.limiter
        try:
            limiter.acquire_on_behalf_of_nowait(owner)
            return
        except anyio.WouldBlock:
            pass
        if self.max_wait > 0:
            with anyio.move_on_after(self.max_wait):
                await limiter.acquire_on_behalf_of(owner)
                return
        raise Refusal(
            503,
            "TooManyInvocations",
            f"Route {self.route} runs at most {self.limit} invocations at once and none ended within "
            f"{self.max_wait:g} seconds; retry shortly.",
            retry_after=1.0,
        )

    def try_enter(self, owner: object) -> bool:
        """Take a slot if one is free now."""
        try:
            self.limiter.acquire_on_behalf_of_nowait(owner)
        except anyio.WouldBlock:
            return False
        return True

    async def enter_job(self, owner: object) -> None:
        if not self.try_enter(owner):
            await self.limiter.acquire_on_behalf_of(owner)

    def leave(self, owner: object) -> None:
        self.limiter.release_on_behalf_of(owner)
