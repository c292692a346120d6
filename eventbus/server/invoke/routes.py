"""``InvokeRoute``: one ``invoke.routes`` entry, ready to run: its target, keys and limits.

A request's body is the payload the target gets, as a rule's event would be (a function gets it
parsed when it is JSON, the text otherwise; an empty body is ``null``). The target runs with a
``DeliveryContext`` of kind ``invoke`` named after the route. Its failures become refusals: past
the route's timeout (or the target's own) 504 ``TimedOut``, any other failure 502
``TargetFailed`` with the target's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import anyio

from eventbus import redact
from eventbus.bus.clock import Stopwatch
from eventbus.config.invoke import RouteSpec
from eventbus.errors import DeliveryError
from eventbus.server.invoke.cache import AnswerCache, Cached, cache_key
from eventbus.server.invoke.limits import Gate, KeyedBuckets
from eventbus.server.invoke.refusals import Refusal
from eventbus.targets._common import parse_payload
from eventbus.targets.base import DeliveryContext, Target
from eventbus.targets.function import FunctionTarget, collected

__all__ = ["InvokeRoute", "deadline", "failure", "innermost"]


def deadline(seconds: float) -> AbstractAsyncContextManager[Any]:
    """``TimeoutError`` once ``seconds`` pass: ``asyncio.timeout`` on asyncio (what ``eventbus
    serve`` runs on; about a third of the cost of an anyio cancel scope, which counts on a path
    taken thousands of times a second), ``anyio.fail_after`` elsewhere."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _anyio_deadline(seconds)
    return asyncio.timeout(seconds)


@contextlib.asynccontextmanager
async def _anyio_deadline(seconds: float) -> AsyncIterator[None]:
    with anyio.fail_after(seconds):
        yield


def innermost(target: Any) -> Any:
    """The target under the wrappers a runtime puts around it (metrics, observers, sharing)."""
    for _ in range(10):
        inner = getattr(target, "target", None)
        if inner is None:
            shared = getattr(target, "shared", None)
            inner = getattr(shared, "target", None)
        if inner is None:
            return target
        target = inner
    return target


def failure(exc: BaseException, route: str, timeout: float) -> Refusal:
    """A target's failure (or our deadline), as the front answers it."""
    if isinstance(exc, Refusal):
        return exc
    if isinstance(exc, TimeoutError) or getattr(exc, "error_code", None) == "TIMEOUT":
        reason = (
            f"Route {route} did not answer within {timeout:g} seconds."
            if isinstance(exc, TimeoutError)
            else redact.error_text(exc)
        )
        return Refusal(504, "TimedOut", reason)
    if isinstance(exc, DeliveryError):
        return Refusal(502, "TargetFailed", redact.error_text(exc))
    return Refusal(502, "TargetFailed", redact.error_text(exc))


@dataclass(eq=False)
class InvokeRoute:
    name: str
    spec: RouteSpec
    target: Target
    max_body_bytes: int
    stopwatch: Stopwatch
    keys: list[bytes] = field(default_factory=list)
    buckets: KeyedBuckets | None = None
    cache: AnswerCache | None = None
    gate: Gate = field(init=False)
    context: DeliveryContext = field(init=False)
    streamer: FunctionTarget | None = field(init=False)

    def __post_init__(self) -> None:
        self.keys = [k.get_secret_value().encode() for k in self.spec.api_keys]
        if self.spec.rate_limit is not None:
            self.buckets = KeyedBuckets(self.name, self.spec.rate_limit, self.stopwatch)
        if self.spec.cache is not None:
            self.cache = AnswerCache(self.spec.cache, self.stopwatch)
        self.gate = Gate(self.name, self.spec.max_concurrency, self.spec.max_wait)
        self.context = DeliveryContext(kind="invoke", name=self.name, target_id=self.name)
        inner = innermost(self.target)
        self.streamer = inner if isinstance(inner, FunctionTarget) and inner.streams else None
        self._unwrap = bool(getattr(self.target, "per_payload_calls", False))

    def __repr__(self) -> str:
        return f"InvokeRoute({self.name!r}, {self.target!r})"

    @property
    def has_keys(self) -> bool:
        return bool(self.keys)

    def key_matches(self, presented: str) -> bool:
        given = presented.encode()
        # Every key compared, in constant time each: how many keys matched tells nothing.
        found = False
        for key in self.keys:
            found |= hmac.compare_digest(given, key)
        return found

    # -- running -----------------------------------------------------------------------------

    async def call(self, request: str) -> Any:
        """Run the target once for ``request`` (the body's text) and return its answer."""
        payload = request if request.strip() else "null"
        if self.streamer is not None:
            return await self.collect(request)
        answer = await self.target.deliver([payload], self.context)
        if self._unwrap and isinstance(answer, list) and len(answer) == 1:
            # Targets that call once a payload answer a list of one answer a call.
            return answer[0]
        return answer

    async def stream(self, request: str) -> AsyncGenerator[Any, None]:
        """The target's answer in chunks: a generator function's yields, or one chunk."""
        if self.streamer is None:
            yield await self.call(request)
            return
        event = parse_payload(request if request.strip() else "null")
        async with contextlib.aclosing(self.streamer.stream(event)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def collect(self, request: str, on_chunk: Callable[[int, Any], None] | None = None) -> Any:
        """Run it, telling ``on_chunk`` of each chunk; the whole answer (``collected``)."""
        if self.streamer is None:
            return await self.call(request)
        chunks: list[Any] = []
        async with contextlib.aclosing(self.stream(request)) as stream:
            async for chunk in stream:
                if on_chunk is not None:
                    on_chunk(len(chunks), chunk)
                chunks.append(chunk)
        return collected(chunks)

    # -- cache -------------------------------------------------------------------------------

    def cached(self, request: bytes) -> Cached | None:
        return None if self.cache is None else self.cache.get(cache_key(self.name, request))

    def keep(self, request: bytes, value: Any) -> None:
        if self.cache is not None:
            self.cache.put(cache_key(self.name, request), value)
