"""The ASGI app: the EventBridge and Pipes APIs, CloudEvents, health and metrics on one port.

``create_app(runtime)`` gives a Starlette app whose lifespan runs the runtime (its buses, rules
and pipes) and the buses, rules and pipes the API creates; ``eventbus serve`` runs it on uvicorn.

| route | what |
| --- | --- |
| ``POST /`` with ``X-Amz-Target: AWSEvents.*`` | the EventBridge API (AWS JSON 1.1) |
| ``/v1/pipes...`` | the Pipes API (REST-JSON) |
| ``POST /cloudevents/{bus}`` | CloudEvents 1.0 in: binary, structured and batched |
| ``GET /healthz`` | the process answers |
| ``GET /readyz`` | every bus is running (503 otherwise) |
| ``GET /metrics`` | Prometheus text exposition |
| ``POST /invoke/{route}``, ``/jobs/...`` | the invocation front (``eventbus.server.invoke``) |

Every body is read up to ``server.max_body_bytes`` (larger: 413 unread), every request but the
health checks must pass ``Authenticator`` when the config declares credentials, and no error is
ever answered with a traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from eventbus import EventBus
from eventbus._logger import get_logger
from eventbus.bus.clock import Clock
from eventbus.config import Runtime
from eventbus.config.server import ServerSettings
from eventbus.server import awsjson
from eventbus.server.auth import Authenticator
from eventbus.server.destinations_api import DestinationsApi
from eventbus.server.errors import ApiError
from eventbus.server.events_api import EventsApi
from eventbus.server.metrics import CONTENT_TYPE as METRICS_TYPE
from eventbus.server.metrics import ServerMetrics
from eventbus.server.model import service_model
from eventbus.server.state import ServerState
from eventbus.server.store import ResourceStore

__all__ = ["EventbusServer", "create_app"]

_log = get_logger("eventbus.server")


class BodyTooLarge(Exception):
    pass


class EventbusServer:
    """The server's parts: state, APIs, auth, metrics; ``app`` is the ASGI app."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        settings: ServerSettings | None = None,
        store: ResourceStore | None = None,
        metrics: ServerMetrics | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.metrics = metrics or ServerMetrics()
        self.state = ServerState(runtime, settings, store, instrument=self.metrics.instrument)
        self.settings = self.state.settings
        self.auth = Authenticator(self.settings)
        from eventbus.server.tags_api import TagsApi

        self.tags = TagsApi(self.state)
        self.events = EventsApi(self.state, self.tags)
        self.destinations = DestinationsApi(self.state)
        from eventbus.server.pipes_api import PipesApi

        self.pipes = PipesApi(self.state, lambda op, code: self.metrics.answered("pipes", op, code))

        async def destinations_changed(arns: Collection[str]) -> None:
            # An updated API destination or connection reaches every rule target and pipe using it.
            await self.events.rebuild_targets(arns)
            await self.pipes.rebuild_using(arns)

        self.destinations.on_change = destinations_changed
        self._event_handlers = {**self.events.handlers(), **self.destinations.handlers(), **self.tags.handlers()}
        from eventbus.server.archives_api import ArchivesApi
        from eventbus.server.archives_service import BusArchives

        self.archives = ArchivesApi(self.state, BusArchives(self.state))
        self._event_handlers.update(self.archives.handlers())
        self._events_model = service_model("events")
        self.metrics.watch(self._all_buses, self.pipes.all_pipes)
        #: Run for each bus while it runs, from the server's start (the metrics count its
        #: outcomes; a console mounted on the server keeps its recent events).
        self.bus_followers: list[Callable[[EventBus], Awaitable[None]]] = [self.metrics.follow]
        from eventbus.server.invoke import InvokeFront

        #: ``invoke:`` routes; ``clock`` times their rate limits, caches and jobs (tests step one).
        self.invoke = InvokeFront(runtime, self.settings, self.auth, clock=clock, answered=self.metrics.answered)
        self.ready = False
        self.app = Starlette(
            routes=[
                # The invocation front first: its routes are the ones called thousands of times a second.
                *self.invoke.http_routes(),
                Route("/", self._events_endpoint, methods=["POST"]),
                Route("/healthz", self._healthz, methods=["GET"]),
                Route("/readyz", self._readyz, methods=["GET"]),
                Route("/metrics", self._metrics, methods=["GET"]),
                Route("/cloudevents/{bus}", self._cloudevents, methods=["POST"]),
                *self.pipes.routes(self._guarded_body),
            ],
            lifespan=self._lifespan,
        )
        self.app.state.eventbus = self

    def _all_buses(self) -> dict[str, Any]:
        return {entry.bus.name: entry.bus for entry in self.state.buses.entries()}

    # -- lifecycle ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with self.running():
            yield

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[EventbusServer]:
        """Run the runtime (unless its owner already runs it) and what the API creates."""
        runtime = self.state.runtime
        async with contextlib.AsyncExitStack() as stack:
            if not runtime.running:
                await stack.enter_async_context(runtime)
            tg = await stack.enter_async_context(anyio.create_task_group())
            self.state.buses.bind(tg)
            self.pipes.bind(tg)
            followers: list[anyio.CancelScope] = []

            def follow(bus: EventBus) -> None:
                for follower in self.bus_followers:
                    scope = anyio.CancelScope()
                    followers.append(scope)

                    async def run(
                        follower: Callable[[EventBus], Awaitable[None]] = follower,
                        scope: anyio.CancelScope = scope,
                    ) -> None:
                        with scope:
                            await follower(bus)

                    tg.start_soon(run)

            self.state.buses.on_started = follow
            for bus in runtime.buses.values():
                follow(bus)
            try:
                if "default" not in self.state.buses:
                    await self.state.buses.create("default", owner="server")
                await self.restore()
                async with self.invoke.running():
                    self.ready = True
                    yield self
                    self.ready = False
            finally:
                self.ready = False
                with anyio.CancelScope(shield=True):
                    await self.pipes.stop_all()
                    await self.state.buses.stop_all()
                    self.state.buses.bind(None)
                    self.pipes.bind(None)
                    # The config's buses stop after this task group: their followers stop here.
                    for scope in followers:
                        scope.cancel()

    def stopping(self) -> None:
        """A stop begins (SIGTERM): event streams of jobs end now rather than hold the stop up
        (their clients connect again after the restart). Safe to call from a signal handler."""
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.invoke.stopping()
            return
        loop.call_soon_threadsafe(self.invoke.stopping)

    async def restore(self) -> None:
        """Put back what the store kept, through the API's own handlers."""
        store = self.state.store
        for name, doc in store.load("bus").items():
            if name not in self.state.buses:
                await self.events.create_event_bus({"Name": name, **doc})
        for doc in store.load("connection").values():
            self.destinations.restore_connection(doc)
        for doc in store.load("api-destination").values():
            self.destinations.restore_destination(doc)
        for doc in store.load("rule").values():
            targets = doc.pop("Targets", [])
            try:
                await self.events.put_rule(doc)
                if targets:
                    await self.events.put_targets(
                        {"Rule": doc["Name"], "EventBusName": doc["EventBusName"], "Targets": targets}
                    )
            except ApiError as exc:
                _log.error("a stored rule could not be restored", rule=doc.get("Name"), error=exc.message)
        await self.pipes.restore(store.load("pipe"))
        self.state.tags.update(store.load("tags"))

    # -- plumbing ----------------------------------------------------------------------------

    async def _body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(int(declared))
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(size)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _guarded_body(self, request: Request) -> bytes:
        """The body, after the size limit and authentication (``ApiError`` otherwise)."""
        try:
            body = await self._body(request)
        except BodyTooLarge as exc:
            raise ApiError(
                "RequestEntityTooLargeException",
                f"The request body ({exc.args[0]} bytes or more) exceeds the limit of "
                f"{self.settings.max_body_bytes} bytes.",
                413,
            ) from None
        self.auth.check(
            request.method,
            request.scope.get("raw_path", b"").decode("latin-1") or request.url.path,
            request.url.query,
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
            body,
        )
        return body

    async def _events_endpoint(self, request: Request) -> Response:
        try:
            body = await self._guarded_body(request)
        except ApiError as exc:
            self.metrics.answered("events", "-", exc.code)
            return awsjson.error_response(exc)
        return await awsjson.dispatch(
            request,
            body,
            self._events_model,
            self._event_handlers,
            on_answer=lambda op, code: self.metrics.answered("events", op, code),
        )

    async def _healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def _readyz(self, request: Request) -> Response:
        stopped = sorted(e.bus.name for e in self.state.buses.entries() if not e.bus.running)
        if not self.ready or stopped:
            return JSONResponse({"status": "not ready", "stopped_buses": stopped}, status_code=503)
        return JSONResponse({"status": "ready", "buses": sorted(self._all_buses())})

    async def _metrics(self, request: Request) -> Response:
        try:
            await self._guarded_body(request)
        except ApiError as exc:
            return JSONResponse({"__type": exc.code, "message": exc.message}, status_code=exc.status)
        return Response(self.metrics.exposition(), media_type=METRICS_TYPE)

    async def _cloudevents(self, request: Request) -> Response:
        from eventbus.server.cloudevents import receive

        try:
            body = await self._guarded_body(request)
            bus = self.state.buses.get(request.path_params["bus"])
            answer = await receive(bus, request.headers, body)
        except ApiError as exc:
            self.metrics.answered("cloudevents", "POST", exc.code)
            return JSONResponse({"__type": exc.code, "message": exc.message}, status_code=exc.status)
        self.metrics.answered("cloudevents", "POST", "OK")
        return JSONResponse(answer, status_code=202)


def create_app(
    runtime: Runtime,
    *,
    settings: ServerSettings | None = None,
    store: ResourceStore | None = None,
    metrics: ServerMetrics | None = None,
    clock: Clock | None = None,
) -> Starlette:
    """The ASGI app serving ``runtime``: mount it, or run it with any ASGI server.

    Its lifespan starts the runtime (unless already running) and stops it, draining. Pass the
    ``metrics`` whose ``instrument`` built the runtime (``Runtime(configs,
    instrument=metrics.instrument)``) to have the config's targets timed too.
    """
    return EventbusServer(runtime, settings=settings, store=store, metrics=metrics, clock=clock).app
