"""``direct_front``: the invocation front's own HTTP routes, called in the process, with no socket.

Config tests (``route:`` cases) send their requests through it, so a case gets exactly what
``eventbus serve`` would answer: the same ``InvokeFront`` (route lookup, API key, rate limit, body
size, cache, concurrency gate, the target's answer or failure as a response) mounted the same way,
reached over httpx's ASGI transport instead of a listening server. Jobs are kept in memory, and
the clock the limits and the cache read is the caller's (a ``ManualClock`` in a case, so a rate
limit or a cache entry never runs out half-way through it).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import httpx
from starlette.applications import Starlette

from eventbus.bus.clock import Clock
from eventbus.config.server import ServerSettings
from eventbus.server.auth import Authenticator
from eventbus.server.invoke.front import InvokeFront
from eventbus.server.invoke.jobs.memory import MemoryJobStore

if TYPE_CHECKING:
    from eventbus.config import Runtime

__all__ = ["DirectAnswer", "DirectFront", "direct_front"]


@dataclass(frozen=True, slots=True)
class DirectAnswer:
    """What the front answered: the status, the headers (names in lower case) and the body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class DirectFront:
    """A running front of a runtime's ``invoke:`` routes, to send requests to."""

    def __init__(self, front: InvokeFront, client: httpx.AsyncClient) -> None:
        self.front = front
        self._client = client

    @property
    def key_header(self) -> str:
        """The header a route's API key travels in (``invoke.api_key_header``)."""
        return self.front.header

    async def invoke(self, route: str, body: bytes, headers: Mapping[str, str]) -> DirectAnswer:
        """``POST /invoke/ROUTE`` with ``body``, as a client of ``eventbus serve`` sends it."""
        response = await self._client.post(f"/invoke/{route}", content=body, headers=dict(headers))
        content = await response.aread()
        return _answer(response, content)

    async def job(self, route: str, body: bytes, headers: Mapping[str, str], *, timeout: float) -> DirectAnswer:
        """``POST /jobs/ROUTE``, then ``GET /jobs/ID`` until the job has finished: that last
        answer (or ``POST``'s, when it refused the job); ``TimeoutError`` after ``timeout``."""
        response = await self._client.post(f"/jobs/{route}", content=body, headers=dict(headers))
        content = await response.aread()
        if response.status_code != 202:
            return _answer(response, content)
        location = response.headers["location"]
        with anyio.fail_after(timeout):
            while True:
                response = await self._client.get(location, headers=dict(headers))
                content = await response.aread()
                if response.status_code != 200 or json.loads(content).get("status") in _FINISHED:
                    return _answer(response, content)
                await anyio.sleep(_POLL)


#: A job in one of these states has ended; how often a job is looked at until it has (seconds).
_FINISHED = ("SUCCEEDED", "FAILED")
_POLL = 0.005


def _answer(response: httpx.Response, content: bytes) -> DirectAnswer:
    return DirectAnswer(
        response.status_code, {name.lower(): value for name, value in response.headers.items()}, content
    )


@contextlib.asynccontextmanager
async def direct_front(
    runtime: Runtime, settings: ServerSettings | None = None, *, clock: Clock | None = None
) -> AsyncIterator[DirectFront]:
    """The routes of ``runtime``'s configs, running until the block ends.

    ``settings`` are the server's (its authentication applies to routes without keys, its body
    limit to routes without one); by default those of the runtime's first config.
    """
    if settings is None:
        settings = runtime.configs[0].model.server if runtime.configs else ServerSettings()
    front = InvokeFront(runtime, settings, Authenticator(settings), clock=clock, store=MemoryJobStore())
    app = Starlette(routes=front.http_routes())
    async with front.running():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://invoke.local") as client:
            yield DirectFront(front, client)
