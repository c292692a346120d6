"""The function target: a Python callable invoked like a Lambda function.

Sync callables run in a worker thread so a slow one never blocks the event loop; async ones are
awaited. A generator function (sync or async) streams: ``stream(event)`` gives its yields as they
come (the invocation front sends them as server-sent events), and a delivery's answer is what it
yielded, joined when every chunk is a string and listed otherwise (``collected``). ``REQUEST_RESPONSE`` waits for the result (an exception is a failed delivery);
``FIRE_AND_FORGET`` returns at once, like Lambda's ``Event`` invocation, and only logs errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, ClassVar, Literal

import anyio
from pydantic import ConfigDict, Field, field_validator

from eventbus._logger import get_logger
from eventbus.errors import DeliveryError, RetryableError, TargetTimeoutError
from eventbus.targets._common import check_callable_ref, invocation_bodies, parse_payload, resolve_callable
from eventbus.targets.base import DeliveryContext, TargetConfig

__all__ = ["FunctionTarget", "FunctionTargetConfig", "InvocationType", "collected"]

InvocationType = Literal["REQUEST_RESPONSE", "FIRE_AND_FORGET"]

_log = get_logger("eventbus.targets.function")


class FunctionTargetConfig(TargetConfig):
    """``function``: ``package.module:function`` (config files) or the callable itself (Python)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    kind: ClassVar[str] = "function"
    batches_in_pipes: ClassVar[bool] = True

    function: str | Callable[..., Any]
    invocation_type: InvocationType = "REQUEST_RESPONSE"
    timeout: float | None = Field(default=None, gt=0)
    max_concurrency: int | None = Field(default=None, ge=1)

    @field_validator("function")
    @classmethod
    def _check_ref(cls, value: str | Callable[..., Any]) -> str | Callable[..., Any]:
        return check_callable_ref(value) if isinstance(value, str) else value

    def build(self) -> FunctionTarget:
        return FunctionTarget(
            self.function,
            invocation_type=self.invocation_type,
            timeout=self.timeout,
            max_concurrency=self.max_concurrency,
        )


class FunctionTarget:
    """Invoke ``func`` with each parsed payload (rules) or the parsed batch (pipes)."""

    #: Pipes hand a function up to 10,000 records at once (their largest batch size).
    max_batch_size: int = 10_000
    #: A rule's events are separate calls: the bus hands them over one at a time.
    per_payload_calls: bool = True

    def __init__(
        self,
        func: Callable[..., Any] | str,
        *,
        invocation_type: InvocationType = "REQUEST_RESPONSE",
        timeout: float | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        if invocation_type not in ("REQUEST_RESPONSE", "FIRE_AND_FORGET"):
            raise ValueError(
                f"invocation_type must be REQUEST_RESPONSE or FIRE_AND_FORGET, not {invocation_type!r}"
            )
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be greater than 0")
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.func = resolve_callable(func)
        self.name = getattr(self.func, "__qualname__", repr(self.func))
        self.invocation_type = invocation_type
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self._is_async = inspect.iscoroutinefunction(self.func) or inspect.iscoroutinefunction(
            getattr(self.func, "__call__", None)  # noqa: B004 - async __call__ objects
        )
        call = getattr(self.func, "__call__", None)  # noqa: B004 - generator __call__ objects
        self._async_gen = inspect.isasyncgenfunction(self.func) or inspect.isasyncgenfunction(call)
        self._sync_gen = inspect.isgeneratorfunction(self.func) or inspect.isgeneratorfunction(call)
        # Created on first use: limiters belong to the event loop that uses them.
        self._limiter: anyio.CapacityLimiter | None = None
        self._background: set[object] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"FunctionTarget({self.name}, invocation_type={self.invocation_type!r})"

    @property
    def streams(self) -> bool:
        """Whether the function is a generator function: its yields are chunks of its answer."""
        return self._async_gen or self._sync_gen

    async def stream(self, event: Any) -> AsyncGenerator[Any, None]:
        """The function's yields for ``event`` as they come (one chunk for a plain function: its
        return value). Its failures are ``RetryableError``s, as ``deliver``'s are; the caller sets
        the deadline. Close it (``contextlib.aclosing``) when stopping early."""
        if not self.streams:
            yield await self.invoke(event)
            return
        limiter = self._get_limiter()
        try:
            async with limiter:
                if self._async_gen:
                    agen = self.func(event)
                    try:
                        async for chunk in agen:
                            yield chunk
                    finally:
                        await agen.aclose()
                    return
                gen = await anyio.to_thread.run_sync(self.func, event, abandon_on_cancel=True)
                done = object()
                try:
                    while True:
                        # Each step in a worker thread: a slow step never blocks the event loop.
                        chunk = await anyio.to_thread.run_sync(next, gen, done, abandon_on_cancel=True)
                        if chunk is done:
                            return
                        yield chunk
                finally:
                    with contextlib.suppress(Exception):
                        gen.close()
        except DeliveryError:
            raise
        except Exception as exc:
            raise RetryableError(f"Function {self.name} raised {type(exc).__name__}: {exc}") from exc

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> Any:
        batched, bodies = invocation_bodies(payloads, context)
        if self.invocation_type == "FIRE_AND_FORGET":
            for body in bodies:
                self._spawn(functools.partial(self._fire, parse_payload(body), context))
            return None
        results = [await self.invoke(parse_payload(body)) for body in bodies]
        return results[0] if batched else results

    async def aclose(self) -> None:
        """Wait (up to the timeout, or 5 s) for fire-and-forget invocations still running."""
        if not self._background or self._idle is None:
            return
        with anyio.move_on_after(self.timeout or 5.0):
            await self._idle.wait()

    def _get_limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            # Without a cap, sync functions still need their own limiter: anyio's default one
            # (40 threads) is shared by the whole process.
            self._limiter = anyio.CapacityLimiter(self.max_concurrency or 1_000)
        return self._limiter

    async def invoke(self, event: Any) -> Any:
        """Invoke the function once with ``event`` (already parsed) and return its answer.

        What ``deliver`` does for each payload, without the JSON text: a map hands each row over
        this way. The caller bounds how many run at once; ``max_concurrency`` and ``timeout``
        still apply when set. A function's exception is a ``RetryableError`` naming it (a
        ``DeliveryError`` it raises is passed on as it is).
        """
        if self.streams:
            return await self._collect(event)
        try:
            if self.timeout is None:
                if self._is_async and self.max_concurrency is None:
                    # The common case, inline: no limiter to pass (acquiring one costs a trip
                    # round the event loop) and no coroutine of ours in between.
                    return await self.func(event)
                return await self._call(event)
            with anyio.move_on_after(self.timeout):
                return await self._call(event)
        except DeliveryError:
            raise
        except Exception as exc:
            raise RetryableError(f"Function {self.name} raised {type(exc).__name__}: {exc}") from exc
        # Only our own deadline gets here; a TimeoutError the function raises is its failure.
        raise TargetTimeoutError(f"Function {self.name} did not return within {self.timeout:g} seconds")

    async def _call(self, event: Any) -> Any:
        if self._is_async:
            if self.max_concurrency is None:
                return await self.func(event)
            async with self._get_limiter():
                return await self.func(event)
        # The worker thread cannot be stopped: on timeout we stop waiting for it.
        return await anyio.to_thread.run_sync(self.func, event, abandon_on_cancel=True, limiter=self._get_limiter())

    async def _collect(self, event: Any) -> Any:
        chunks: list[Any] = []
        with anyio.move_on_after(self.timeout):
            async with contextlib.aclosing(self.stream(event)) as stream:
                async for chunk in stream:
                    chunks.append(chunk)
            return collected(chunks)
        raise TargetTimeoutError(f"Function {self.name} did not return within {self.timeout:g} seconds")

    async def _fire(self, event: Any, context: DeliveryContext) -> None:
        try:
            await self.invoke(event)
        except Exception as exc:
            _log.error(
                "fire-and-forget invocation failed",
                function=self.name,
                delivery=context.name,
                target_id=context.target_id,
                error=str(exc),
                error_code=getattr(exc, "error_code", None),
            )

    def _spawn(self, job: Callable[[], Awaitable[None]]) -> None:
        """Start ``job`` in the background on whichever event loop is running."""
        if self._idle is None or not self._background:
            self._idle = anyio.Event()
        token = object()
        self._background.add(token)

        async def run() -> None:
            try:
                await job()
            finally:
                self._background.discard(token)
                if not self._background and self._idle is not None:
                    self._idle.set()

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            task = loop.create_task(run())
            # asyncio keeps only weak references to tasks: hold one until it ends.
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        import trio  # the only other backend anyio runs on

        trio.lowlevel.spawn_system_task(run)


def collected(chunks: Sequence[Any]) -> Any:
    """A streamed answer as one value: the chunks joined when every one is a string (tokens of a
    text), the list of them otherwise."""
    if chunks and all(isinstance(c, str) for c in chunks):
        return "".join(chunks)
    return list(chunks)
