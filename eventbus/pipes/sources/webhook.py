"""The webhook source: an ASGI app that turns each HTTP POST into a record.

Mount ``source.app`` in any ASGI application, or give the config a ``port`` and the source
serves itself with uvicorn while the pipe runs. Answers:

- ``202`` ``{"messageId": ...}``: accepted; the record is in the pipe's hands from here on.
- ``400`` empty body, body not UTF-8, or a body sent as ``application/json`` that is not JSON;
  ``401`` a wrong or missing bearer token (when one is configured); ``404`` another path;
  ``405`` another method; ``413`` a body over ``max_body_bytes``.
- ``429`` (``Retry-After: 1``) the buffer is full: the pipe is behind, try again shortly.
- ``503`` (``Retry-After: 5``) the pipe is not running.

Records look like SQS messages (``messageId``, ``body``, ``attributes``), so filters and
templates written for a queue work on a webhook unchanged. Request headers are not copied into
records: they carry credentials more often than data.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.abc import TaskGroup
from pydantic import Field, SecretStr

from eventbus import json_strict, redact
from eventbus.errors import ConfigError
from eventbus.pipes.records import SourceRecord
from eventbus.pipes.sources.base import DEFAULT_ACCOUNT, DEFAULT_REGION, BufferedSource, SourceConfig

__all__ = ["WebhookSource", "WebhookSourceConfig", "webhook_arn", "webhook_record"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class WebhookSource(BufferedSource):
    """Accepts POSTs on ``path``; ``app`` is the ASGI application."""

    def __init__(
        self,
        *,
        name: str = "webhook",
        path: str = "/",
        capacity: int = 1000,
        max_body_bytes: int = 262_144,
        token: str | SecretStr | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        region: str = DEFAULT_REGION,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        if not path.startswith("/"):
            raise ConfigError(f"a webhook path starts with '/': {path!r}")
        super().__init__(arn=webhook_arn(name, region, account), capacity=capacity)
        self.name = name
        self.path = path
        self.max_body_bytes = max_body_bytes
        self._token = token if isinstance(token, SecretStr) or token is None else SecretStr(token)
        if self._token is not None:
            redact.register(self._token.get_secret_value(), self._token)
        self.host = host
        self.port = port
        self.region = region
        self._loop_token: Any = None
        self._app = _WebhookApp(self)
        self._loop_thread: int | None = None

    def __repr__(self) -> str:
        where = f" on {self.host}:{self.port}" if self.port is not None else ""
        return f"WebhookSource({self.path!r}{where})"

    @property
    def url(self) -> str | None:
        """Where the self-served app listens (``None`` when it is mounted elsewhere)."""
        return None if self.port is None else f"http://{self.host}:{self.port}{self.path}"

    async def open(self, task_group: TaskGroup) -> None:
        self._loop_token = anyio.lowlevel.current_token()
        self._loop_thread = threading.get_ident()
        await super().open(task_group)
        if self.port is not None:
            await task_group.start(self._serve)

    async def _serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        try:
            import uvicorn
        except ImportError:
            raise ConfigError("Serving a webhook source needs uvicorn: pip install uvicorn") from None
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port or 0, log_level="warning", lifespan="off"
        )
        server = uvicorn.Server(config)
        done = anyio.Event()

        async def serve() -> None:
            # Shielded: on a stop the server is asked to exit and closes its sockets itself,
            # rather than being cancelled half-way with its port still bound.
            try:
                with anyio.CancelScope(shield=True):
                    await server.serve()
            finally:
                done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            try:
                with anyio.fail_after(10):
                    while not server.started:
                        if done.is_set():
                            raise ConfigError(
                                f"The webhook server could not listen on {self.host}:{self.port}"
                            )
                        await anyio.sleep(0.01)
                if self.port == 0:
                    self.port = int(server.servers[0].sockets[0].getsockname()[1])
                task_status.started()
                await anyio.sleep_forever()
            finally:
                server.should_exit = True
                with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                    await done.wait()

    # -- the ASGI app ----------------------------------------------------------------------

    @property
    def app(self) -> _WebhookApp:
        """The ASGI application: mount it, or let the source serve it (``port``)."""
        return self._app

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI request (what ``app`` calls)."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if not self._path_matches(scope):
            await _answer(send, 404, {"message": f"Not found: POST to {self.path}"})
            return
        if scope.get("method") != "POST":
            await _answer(send, 405, {"message": "Method not allowed: use POST"}, [(b"allow", b"POST")])
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if not self.is_open:
            await _answer(send, 503, {"message": "The pipe is not running"}, [(b"retry-after", b"5")])
            return
        if self._token is not None and not _authorised(headers.get("authorization", ""), self._token):
            await _answer(
                send, 401, {"message": "Missing or wrong bearer token"}, [(b"www-authenticate", b"Bearer")]
            )
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await _answer(send, 413, {"message": f"Body larger than {self.max_body_bytes} bytes"})
            return
        raw = await _read_body(receive, self.max_body_bytes)
        if raw is None:
            await _answer(send, 413, {"message": f"Body larger than {self.max_body_bytes} bytes"})
            return
        problem = _bad_body(raw, headers.get("content-type", ""))
        if problem is not None:
            await _answer(send, 400, {"message": problem})
            return
        record = self._record(raw.decode("utf-8"), headers.get("content-type", ""), scope)
        try:
            taken = await self._hand_over(record)
        except _NotRunning:
            await _answer(send, 503, {"message": "The pipe is not running"}, [(b"retry-after", b"5")])
            return
        if not taken:
            await _answer(
                send, 429, {"message": "The pipe is behind: try again shortly"}, [(b"retry-after", b"1")]
            )
            return
        await _answer(send, 202, {"messageId": record.record_id})

    def _path_matches(self, scope: Scope) -> bool:
        # Mounted under a prefix, a framework passes the full path, or the path below the mount
        # with the prefix in ``root_path`` (older Starlette): any of the readings may match.
        path = str(scope.get("path", "")) or "/"
        root = str(scope.get("root_path", "")).rstrip("/")
        readings = {path, root + path}
        if root and path.startswith(root):
            readings.add(path[len(root) :])
        wanted = self.path.rstrip("/") or "/"
        return any((reading.rstrip("/") or "/") == wanted for reading in readings)

    async def _hand_over(self, record: SourceRecord) -> bool:
        """``offer`` on the pipe's event loop, wherever this request is being served."""
        if self._loop_thread == threading.get_ident() or self._loop_token is None:
            return self.offer(record)
        token = self._loop_token
        # Another thread's event loop (a server of its own): hop over from a worker thread.
        try:
            result: bool = await anyio.to_thread.run_sync(
                lambda: anyio.from_thread.run_sync(self.offer, record, token=token)
            )
        except RuntimeError:
            raise _NotRunning from None  # the pipe's event loop has gone
        return result

    def _record(self, body: str, content_type: str, scope: Scope) -> SourceRecord:
        return webhook_record(
            body,
            content_type=content_type,
            path=str(scope.get("path", "")),
            query_string=scope.get("query_string", b"").decode("latin-1"),
            arn=self.arn,
            region=self.region,
            received=time.time(),
        )


def webhook_arn(name: str, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT) -> str:
    return f"arn:eventbus:webhook:{region}:{account}:{name}"


def webhook_record(
    body: str,
    *,
    content_type: str,
    path: str,
    query_string: str,
    arn: str,
    received: float,
    region: str = DEFAULT_REGION,
) -> SourceRecord:
    """One POST as a record: an SQS-like message; ``received`` is a POSIX timestamp."""
    message_id = str(uuid.uuid4())
    record = {
        "messageId": message_id,
        "body": body,
        "attributes": {
            "SentTimestamp": str(int(received * 1000)),
            "ContentType": content_type,
            "Path": path,
            "QueryString": query_string,
        },
        "eventSource": "eventbus:webhook",
        "eventSourceARN": arn,
        "awsRegion": region,
    }
    return SourceRecord(
        record=record, record_id=message_id, ingestion_time=datetime.fromtimestamp(received, UTC)
    )


class _NotRunning(Exception):
    """The event loop the pipe ran on is gone."""


class _WebhookApp:
    """An ASGI 3 application object (servers recognise it by its async ``__call__``)."""

    __slots__ = ("source",)

    def __init__(self, source: WebhookSource) -> None:
        self.source = source

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.source.handle(scope, receive, send)


def _authorised(header: str, token: SecretStr) -> bool:
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.get_secret_value().encode()
    )


def _bad_body(raw: bytes, content_type: str) -> str | None:
    if not raw.strip():
        return "Empty body: send the record as the request body"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "Body is not UTF-8 text"
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            # Strict: NaN, 1e999 and lone surrogates are refused here, not at every target.
            json_strict.loads(text)
        except ValueError as exc:
            return f"Body is not valid JSON: {exc}"
    return None


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _answer(
    send: Send, status: int, body: dict[str, Any], headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class WebhookSourceConfig(SourceConfig):
    """``port`` set: the source serves itself on ``host:port``; unset: mount ``source.app`` yourself."""

    kind: ClassVar[str] = "webhook"

    name: str = Field(default="webhook", min_length=1, max_length=64)
    path: str = Field(default="/", pattern=r"^/")
    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=0, le=65_535)
    capacity: int = Field(default=1000, ge=1)
    max_body_bytes: int = Field(default=262_144, ge=1, le=10_485_760)
    #: A bearer token callers must send (``Authorization: Bearer <token>``); never logged.
    token: redact.Secret | None = None

    def build(self) -> WebhookSource:
        return WebhookSource(
            name=self.name,
            path=self.path,
            host=self.host,
            port=self.port,
            capacity=self.capacity,
            max_body_bytes=self.max_body_bytes,
            token=self.token,
        )
