"""A small ASGI app standing in for an API destination and its OAuth authorization endpoint."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

Scope = dict[str, Any]


def free_port() -> int:
    """A loopback port nothing listens on (for 'connection refused' tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw_headers: list[tuple[str, str]]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ApiApp:
    client_id: str = "client-1"
    client_secret: str = "oauth-client-secret-value"
    token_lifetime: float | None = 3600
    requests: list[Seen] = field(default_factory=list)
    token_requests: list[Seen] = field(default_factory=list)
    valid_tokens: dict[str, float] = field(default_factory=dict)
    #: Statuses (with headers) to answer on /api before behaving normally.
    scripted: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    #: Seconds, for arrival times and token lifetimes: the wall clock, or a test's manual clock.
    now: Callable[[], float] = time.monotonic

    @property
    def token_fetches(self) -> int:
        return len(self.token_requests)

    def revoke_tokens(self) -> None:
        self.valid_tokens.clear()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen = Seen(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(scope["query_string"].decode())),
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            raw_headers=[(k.decode().lower(), v.decode()) for k, v in scope["headers"]],
            body=body,
            at=self.now(),
        )
        if seen.path == "/token":
            status, headers, text = self._token(seen)
        else:
            status, headers, text = await self._api(seen)
        raw_headers = [(b"content-type", b"application/json")]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": text.encode()})

    def _token(self, seen: Seen) -> tuple[int, dict[str, str], str]:
        self.token_requests.append(seen)
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if seen.headers.get("authorization") != f"Basic {expected}":
            return 401, {}, '{"error":"invalid_client"}'
        token = f"token-{len(self.token_requests)}"
        self.valid_tokens[token] = self.now() + (self.token_lifetime or 1e9)
        answer: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
        if self.token_lifetime is not None:
            answer["expires_in"] = self.token_lifetime
        return 200, {}, json.dumps(answer)

    async def _api(self, seen: Seen) -> tuple[int, dict[str, str], str]:
        self.requests.append(seen)
        auth = seen.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            expiry = self.valid_tokens.get(auth[7:])
            if expiry is None or expiry < self.now():
                return 401, {}, '{"message":"token expired"}'
        if self.scripted:
            return self.scripted.pop(0)
        if seen.path.startswith("/slow"):
            await asyncio.sleep(float(seen.query.get("seconds", "1")))
        if seen.path.startswith("/text"):
            return 200, {}, "plain text"
        echo = {"path": seen.path, "query": seen.query, "method": seen.method}
        if seen.body:
            echo["body"] = json.loads(seen.body)
        return 200, {}, json.dumps(echo)
