"""``InvokeFront``: the HTTP side of ``invoke:`` routes, mounted by the server.

| route | what |
| --- | --- |
| ``POST /invoke/{route}`` | run the route's target, answer what it returned (``Accept: text/event-stream``: as it streams) |
| ``POST /jobs/{route}`` | keep the request as a job, answer 202 with its id and ``Location`` |
| ``GET /jobs/{id}`` | the job: PENDING, RUNNING, SUCCEEDED with ``result``, FAILED with ``error`` and ``reason`` |
| ``GET /jobs/{id}/events`` | its states and chunks as server-sent events, or over a WebSocket |

A request passes, in order: the route exists, its API key (or the server's authentication on a
route without keys), its key's rate limit, the body's size, the cache, the concurrency limit.
Each refusal is a ``Refusal`` (``refusals.py``), answered as JSON.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from eventbus._logger import get_logger
from eventbus.bus.clock import Clock, Stopwatch, SystemClock
from eventbus.config.backends import SqliteBackend
from eventbus.config.invoke import InvokeSettings, JobStoreSettings
from eventbus.config.server import ServerSettings
from eventbus.server.errors import ApiError
from eventbus.server.invoke.answers import response_of, sse
from eventbus.server.invoke.jobs.hub import Chunk, Lagged, Stopped
from eventbus.server.invoke.jobs.memory import MemoryJobStore
from eventbus.server.invoke.jobs.runner import JobRunner, _cacheable
from eventbus.server.invoke.jobs.sqlite import SqliteJobStore
from eventbus.server.invoke.jobs.state import StateFileJobStore
from eventbus.server.invoke.jobs.store import Job, JobStore
from eventbus.server.invoke.limits import bucket_key
from eventbus.server.invoke.refusals import Refusal
from eventbus.server.invoke.routes import InvokeRoute, deadline, failure
from eventbus.targets.function import collected

if TYPE_CHECKING:
    from eventbus.config import LoadedConfig, Runtime
    from eventbus.server.auth import Authenticator

__all__ = ["InvokeFront", "job_store"]

_log = get_logger("eventbus.server.invoke")

#: Seconds between keep-alive comments on an idle event stream (proxies close silent ones).
KEEPALIVE = 15.0

Answered = Callable[[str, str, str], None]


def job_store(runtime: Runtime, config: LoadedConfig, settings: JobStoreSettings) -> JobStore:
    """The job store ``settings`` (``invoke.jobs`` of ``config``) describe.

    ``type: backend`` follows the backend the config's buses run on: its state file when that is
    SQLite, memory when it is memory. A file that names no backend gets the state file ``eventbus
    run`` would keep (``.eventbus/<config name>.db``) even where the buses are in memory (``eventbus
    serve`` runs them so): a job accepted with ``202`` must survive a restart.
    """
    if settings.type == "memory":
        return MemoryJobStore()
    if settings.type == "sqlite":
        return SqliteJobStore(settings.state_path(config.file), synchronous=settings.synchronous)
    named = runtime.backend is not None or config.model.runtime.backend is not None
    backend = runtime.backend_of(config) if named else runtime.default_backend
    if not backend.durable and not named:
        backend = SqliteBackend()
    if isinstance(backend, SqliteBackend):
        return StateFileJobStore(backend.state_path(config.file), synchronous=backend.synchronous)
    if backend.durable:
        # A durable backend without a job store of its own yet: a file of its own beside the config.
        return SqliteJobStore(settings.state_path(config.file), synchronous=settings.synchronous)
    return MemoryJobStore()


class InvokeFront:
    """The routes of every config's ``invoke:`` section, their job store and runner."""

    def __init__(
        self,
        runtime: Runtime,
        settings: ServerSettings,
        auth: Authenticator,
        *,
        clock: Clock | None = None,
        answered: Answered | None = None,
        store: JobStore | None = None,
    ) -> None:
        self.settings = settings
        self.auth = auth
        self.clock: Clock = clock or SystemClock()
        self.stopwatch = Stopwatch(clock)
        self.answered = answered or (lambda api, op, code: None)
        self.header = InvokeSettings().api_key_header
        self.routes: dict[str, InvokeRoute] = {}
        jobs: JobStoreSettings | None = None
        jobs_config: LoadedConfig | None = None
        for loaded in runtime.configs:
            invoke = loaded.model.invoke
            if not invoke.routes:
                continue
            if jobs is None:
                # The first config with routes says where jobs live, and which header has keys.
                jobs, jobs_config, self.header = invoke.jobs, loaded, invoke.api_key_header
            for name, spec in invoke.routes.items():
                target = runtime.build_target(loaded, f"invoke/{name}/target", spec.target)
                self.routes[name] = InvokeRoute(
                    name=name,
                    spec=spec,
                    target=target,
                    max_body_bytes=spec.max_body_bytes or settings.max_body_bytes,
                    stopwatch=self.stopwatch,
                )
        self.jobs_settings = jobs or JobStoreSettings(type="memory")
        if store is None:
            store = MemoryJobStore() if jobs_config is None else job_store(runtime, jobs_config, self.jobs_settings)
        self.store = store
        self.runner = JobRunner(store, self.routes, self.jobs_settings, self.clock)
        self.hub = self.runner.hub

    def __repr__(self) -> str:
        return f"InvokeFront(routes={sorted(self.routes)}, store={self.store!r})"

    def open_now(self) -> None:
        """Open the job store now, from synchronous code (``JobStoreError`` if it cannot be used):
        ``eventbus serve`` does before it listens."""
        if self.routes and isinstance(self.store, SqliteJobStore):
            self.store.open_now()

    def http_routes(self) -> list[BaseRoute]:
        return [
            Route("/invoke/{route}", self._invoke, methods=["POST"]),
            Route("/jobs/{route}", self._submit, methods=["POST"]),
            Route("/jobs/{job}", self._job, methods=["GET"]),
            Route("/jobs/{job}/events", self._events, methods=["GET"]),
            WebSocketRoute("/jobs/{job}/events", self._events_socket),
        ]

    # -- lifecycle -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[InvokeFront]:
        """Run the jobs (when there are routes) and close the routes' targets at the end."""
        self.hub.stopping = False
        try:
            if not self.routes:
                yield self
                return
            async with self.runner.running():
                yield self
                self.hub.stop_all()
        finally:
            self.hub.stop_all()
            with anyio.CancelScope(shield=True):
                for route in self.routes.values():
                    try:
                        await route.target.aclose()
                    except Exception as exc:
                        _log.error("a route's target did not close", route=route.name, error=str(exc))

    def stopping(self) -> None:
        """The server is about to stop: end the event streams now (their clients may come back)."""
        self.hub.stop_all()

    # -- admission -----------------------------------------------------------------------------

    def _route(self, name: str, *, jobs: bool = False) -> InvokeRoute:
        route = self.routes.get(name)
        if route is None:
            known = ", ".join(sorted(self.routes)) or "none"
            raise Refusal(404, "RouteNotFound", f"No route named {name!r} (routes: {known}).")
        if jobs and not route.spec.jobs:
            raise Refusal(404, "RouteNotFound", f"Route {name} takes no jobs (its jobs setting is false).")
        return route

    def _check_key(self, route: InvokeRoute, headers: Any) -> str | None:
        """The route's API key the request presents (``Refusal`` when missing or wrong)."""
        if not route.has_keys:
            return None
        presented = headers.get(self.header)
        if not presented:
            raise Refusal(401, "MissingApiKey", f"Route {route.name} needs an API key in the {self.header} header.")
        if not route.key_matches(presented):
            raise Refusal(403, "InvalidApiKey", f"The API key in {self.header} is not one of route {route.name}'s keys.")
        return str(presented)

    def _check_server_auth(self, method: str, scope: Any, query: str, body: bytes) -> None:
        try:
            self.auth.check(
                method,
                scope.get("raw_path", b"").decode("latin-1") or scope["path"],
                query,
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
                body,
            )
        except ApiError as exc:
            raise Refusal(exc.status, exc.code, exc.message) from None

    async def _admit(self, request: Request, route: InvokeRoute) -> tuple[bytes, str]:
        """The request's body and its text, once it passed the key, rate and size checks."""
        key = self._check_key(route, request.headers)
        if route.buckets is not None:
            client = request.client.host if request.client else "-"
            route.buckets.check(bucket_key(key, client))
        body = await self._body(request, route)
        if key is None:
            self._check_server_auth(request.method, request.scope, request.url.query, body)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Refusal(400, "InvalidBody", f"The request body is not UTF-8 (byte {exc.start}).") from None
        return body, text

    async def _body(self, request: Request, route: InvokeRoute) -> bytes:
        """The body, read straight off the ASGI channel (``Request.stream`` costs more per request
        than the route's whole admission)."""
        limit = route.max_body_bytes
        too_large = Refusal(
            413, "RequestTooLarge", f"Route {route.name} takes request bodies of at most {limit} bytes."
        )
        for name, value in request.scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise too_large
        body = b""
        chunks: list[bytes] = []
        size = 0
        receive = request.receive
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # Gone before it finished sending: nobody reads this answer.
                raise Refusal(400, "ClientDisconnected", "The client left before its request was read.")
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            if not message.get("more_body", False):
                if not chunks:
                    return chunk
                chunks.append(chunk)
                return body.join(chunks)
            chunks.append(chunk)

    def _refused(self, api: str, route: str, refusal: Refusal) -> Response:
        self.answered(api, route, refusal.code)
        return refusal.response()

    # -- POST /invoke/{route} ------------------------------------------------------------------

    async def _invoke(self, request: Request) -> Response:
        name = request.path_params["route"]
        try:
            route = self._route(name)
            body, text = await self._admit(request, route)
            streamed = "text/event-stream" in request.headers.get("accept", "")
            headers = {} if route.cache is None else {"X-Cache": "MISS"}
            cached = route.cached(body)
            if cached is not None:
                self.answered("invoke", name, "OK")
                if streamed:
                    return _sse_response([sse("result", {"result": cached.value})], {"X-Cache": "HIT"})
                return response_of(cached.value, {"X-Cache": "HIT"})
            owner = object()
            await route.gate.enter_request(owner)
            if streamed:
                return StreamingResponse(
                    self._stream(route, body, text, owner),
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache", **headers},
                )
            try:
                async with deadline(route.spec.timeout):
                    value = await route.call(text)
            except Exception as exc:
                raise failure(exc, name, route.spec.timeout) from None
            finally:
                route.gate.leave(owner)
            response = response_of(value, headers)
            if _cacheable(value):
                route.keep(body, value)
            self.answered("invoke", name, "OK")
            return response
        except Refusal as refusal:
            return self._refused("invoke", name, refusal)

    async def _stream(self, route: InvokeRoute, body: bytes, text: str, owner: object) -> AsyncGenerator[bytes, None]:
        """``chunk`` events as the target yields, then ``result`` (or ``error``)."""
        chunks: list[Any] = []
        deadline = anyio.current_time() + route.spec.timeout
        try:
            stream = route.stream(text)
            try:
                while True:
                    try:
                        # The deadline's scope spans each wait, never a yield to the client.
                        with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                            chunk = await stream.__anext__()
                    except StopAsyncIteration:
                        break
                    chunks.append(chunk)
                    yield sse("chunk", {"index": len(chunks) - 1, "chunk": chunk})
            finally:
                with anyio.CancelScope(shield=True):
                    await stream.aclose()
            value = collected(chunks) if route.streamer is not None else (chunks[0] if chunks else None)
            final = sse("result", {"result": value})
            if _cacheable(value):
                route.keep(body, value)
            self.answered("invoke", route.name, "OK")
        except Exception as exc:
            refusal = failure(exc, route.name, route.spec.timeout)
            self.answered("invoke", route.name, refusal.code)
            final = sse("error", {"error": refusal.code, "reason": refusal.reason})
        finally:
            route.gate.leave(owner)
        yield final

    # -- POST /jobs/{route} --------------------------------------------------------------------

    async def _submit(self, request: Request) -> Response:
        name = request.path_params["route"]
        try:
            route = self._route(name, jobs=True)
            body, text = await self._admit(request, route)
            cached = route.cached(body)
            if cached is not None:
                job = await self.runner.submit_cached(route, text, cached.value)
            else:
                job = await self.runner.submit(route, text)
        except Refusal as refusal:
            return self._refused("jobs", name, refusal)
        self.answered("jobs", name, "OK")
        headers = {"Location": f"/jobs/{job.id}"}
        if route.cache is not None:
            headers["X-Cache"] = "HIT" if job.cached else "MISS"
        return Response(
            json.dumps(job.document(cached.value if cached else None)), 202, headers, "application/json"
        )

    # -- GET /jobs/{id} ------------------------------------------------------------------------

    async def _find(self, job_id: str, method: str, scope: Any, headers: Any, query: str) -> Job:
        """The job, once the caller showed its route's key (``Refusal``: 404, 401, 403)."""
        job = await self.runner.get(job_id)
        if job is None:
            raise Refusal(404, "JobNotFound", f"No job {job_id} (finished jobs are kept for "
                          f"{self.jobs_settings.retention:g} seconds).")
        route = self.routes.get(job.route)
        if route is not None and route.has_keys:
            self._check_key(route, headers)
        else:
            self._check_server_auth(method, scope, query, b"")
        return job

    async def _job(self, request: Request) -> Response:
        job_id = request.path_params["job"]
        try:
            job = await self._find(job_id, "GET", request.scope, request.headers, request.url.query)
        except Refusal as refusal:
            return self._refused("jobs", "GET", refusal)
        return Response(json.dumps(_document(job), ensure_ascii=False), 200, None, "application/json")

    # -- GET /jobs/{id}/events -----------------------------------------------------------------

    async def _messages(self, job_id: str) -> AsyncGenerator[tuple[str, Any], None]:
        """``(event, data)`` for a job: its state now, the chunks so far, then each change, until
        it ends; ``("keepalive", None)`` when nothing happened for ``KEEPALIVE`` seconds."""
        follower = self.hub.follow(job_id)
        try:
            try:
                job = await self.runner.get(job_id)
            except Refusal as refusal:
                yield "error", {"error": refusal.code, "reason": refusal.reason}
                return
            if job is None:
                return
            yield "state", _document(job)
            if job.finished:
                return
            version, last_chunk = job.version, -1
            if job.status == "RUNNING":
                for chunk in self.hub.kept_chunks(job_id):
                    yield "chunk", {"index": chunk.index, "chunk": chunk.value}
                    last_chunk = chunk.index
            while True:
                message: Job | Chunk | None = None
                try:
                    with anyio.move_on_after(KEEPALIVE):
                        message = await follower.next()
                except Lagged:
                    yield "error", {"error": "Lagged", "reason": "The stream fell behind the job; connect again."}
                    return
                except Stopped:
                    yield "error", {"error": "ServerStopping", "reason": "The server is stopping; connect again."}
                    return
                if message is None:
                    yield "keepalive", None
                elif isinstance(message, Chunk):
                    if message.index > last_chunk:
                        last_chunk = message.index
                        yield "chunk", {"index": message.index, "chunk": message.value}
                elif message.version > version:
                    version = message.version
                    if message.status == "PENDING":
                        last_chunk = -1  # put back: its next run streams from the start
                    yield "state", _document(message)
                    if message.finished:
                        return
        finally:
            follower.close()

    async def _events(self, request: Request) -> Response:
        job_id = request.path_params["job"]
        try:
            await self._find(job_id, "GET", request.scope, request.headers, request.url.query)
        except Refusal as refusal:
            return self._refused("jobs", "events", refusal)

        async def frames() -> AsyncGenerator[bytes, None]:
            async with contextlib.aclosing(self._messages(job_id)) as messages:
                async for event, data in messages:
                    yield b": keep-alive\n\n" if event == "keepalive" else sse(event, data)

        return StreamingResponse(frames(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def _events_socket(self, websocket: WebSocket) -> None:
        job_id = websocket.path_params["job"]
        try:
            await self._find(job_id, "GET", websocket.scope, websocket.headers, websocket.url.query)
        except Refusal as refusal:
            self.answered("jobs", "events", refusal.code)
            await _deny(websocket, refusal)
            return
        await websocket.accept()
        async with anyio.create_task_group() as tg:

            async def watch_close() -> None:
                # The client's messages are not read otherwise: this notices it left.
                with contextlib.suppress(WebSocketDisconnect):
                    while True:
                        message = await websocket.receive()
                        if message["type"] == "websocket.disconnect":
                            break
                tg.cancel_scope.cancel()

            tg.start_soon(watch_close)
            try:
                async with contextlib.aclosing(self._messages(job_id)) as messages:
                    async for event, data in messages:
                        if event == "keepalive":
                            continue  # WebSocket pings keep the connection
                        await websocket.send_text(json.dumps({"event": event, "data": data}, ensure_ascii=False))
                await websocket.close(1000)
            except (WebSocketDisconnect, RuntimeError):
                pass  # the client left: the job goes on, and can be read again
            tg.cancel_scope.cancel()


def _document(job: Job) -> dict[str, Any]:
    return job.document(json.loads(job.result) if job.result is not None else None)


def _sse_response(frames: list[bytes], headers: dict[str, str]) -> Response:
    return Response(b"".join(frames), 200, {"Cache-Control": "no-cache", **headers}, "text/event-stream")


async def _deny(websocket: WebSocket, refusal: Refusal) -> None:
    """Refuse a WebSocket before it opens: the HTTP status and JSON when the server can send one."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(refusal.response())
    else:
        await websocket.close(1008, f"{refusal.code}: {refusal.reason}"[:120])

