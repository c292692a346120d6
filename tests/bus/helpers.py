"""Small real targets for the bus tests: they keep what they get and fail on purpose."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anyio

from eventbus.errors import DeliveryError
from eventbus.targets.base import DeliveryContext

FAST = {"backoff": {"base": 0.001, "cap": 0.004}}


def entry(
    source: str = "shop", detail_type: str = "order", detail: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail or {})}


class Collector:
    """Keeps every payload and its context."""

    def __init__(self, max_batch_size: int = 10) -> None:
        self.max_batch_size = max_batch_size
        self.payloads: list[Any] = []
        self.raw: list[str] = []
        self.contexts: list[DeliveryContext] = []
        self.closed = False

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> None:
        for p in payloads:
            self.raw.append(p)
            self.payloads.append(json.loads(p))
            self.contexts.append(context)

    async def aclose(self) -> None:
        self.closed = True


class Flaky(Collector):
    """Fails its first ``failures`` calls with ``error``, then behaves like a Collector."""

    def __init__(self, failures: int, error: Exception | None = None, max_batch_size: int = 1) -> None:
        super().__init__(max_batch_size)
        self.failures = failures
        self.error = error or RuntimeError("not yet")
        self.calls = 0
        self.attempts: list[int] = []

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> None:
        self.calls += 1
        self.attempts.append(context.attempt)
        if self.calls <= self.failures:
            raise self.error
        await super().deliver(payloads, context)


class AlwaysFails(Flaky):
    def __init__(self, error: DeliveryError | Exception | None = None) -> None:
        super().__init__(10**9, error)


class Slow(Collector):
    """Takes ``delay`` seconds a delivery."""

    def __init__(self, delay: float) -> None:
        super().__init__(1)
        self.delay = delay

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> None:
        await anyio.sleep(self.delay)
        await super().deliver(payloads, context)


class Gated(Collector):
    """Holds every delivery until ``gate`` is set; ``waiting`` counts the deliveries held."""

    def __init__(self, max_batch_size: int = 1) -> None:
        super().__init__(max_batch_size)
        self.gate = anyio.Event()
        self.waiting = 0

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> None:
        self.waiting += 1
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1
        await super().deliver(payloads, context)
