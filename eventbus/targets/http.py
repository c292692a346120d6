"""The HTTP target: an API destination, with its connection, on ``httpx.AsyncClient``.

Statuses are classified as EventBridge does: timeouts, 429 and 5xx are retried (``Retry-After``
honoured), other 4xx are not; 401 and 407 first make an OAuth connection fetch a new token and
try once more. Calls beyond the invocation rate limit wait for their turn; none is dropped.
Secret values never reach messages or logs: every message is masked (``eventbus.redact``) of
each registered secret in each of its encodings (a query parameter as httpx URL-encodes it, a
Basic header in base64), including what a response echoes back; httpx's own request lines are
masked by the log filter ``redact`` installs.
"""

from __future__ import annotations

import email.utils
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import Field, model_validator

from eventbus import redact
from eventbus.bus.clock import Clock, Stopwatch
from eventbus.errors import (
    NonRetryableError,
    ResourceNotFoundError,
    RetryableError,
    TargetPermissionError,
    TargetTimeoutError,
    ThrottledError,
)
from eventbus.targets._common import invocation_bodies, maybe_json, tail
from eventbus.targets.base import DeliveryContext, TargetConfig
from eventbus.targets.connection import Connection, ConnectionAuth, plain

__all__ = ["HttpTarget", "HttpTargetConfig", "RateLimiter", "parse_retry_after"]

HttpMethod = Literal["POST", "GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"]

USER_AGENT = "Amazon/EventBridge/ApiDestinations"
CONTENT_TYPE = "application/json; charset=utf-8"

class HttpTargetConfig(TargetConfig):
    """An API destination (endpoint, method, rate limit, connection) plus the target's parameters."""

    kind: ClassVar[str] = "http"
    batches_in_pipes: ClassVar[bool] = True

    endpoint: str = Field(pattern=r"^https?://")
    http_method: HttpMethod = "POST"
    connection: Connection | None = None
    invocation_rate_limit_per_second: int | None = Field(default=300, ge=1)
    timeout: float = Field(default=5.0, gt=0)
    path_parameter_values: list[str] = Field(default_factory=list)
    header_parameters: dict[str, str] = Field(default_factory=dict)
    query_string_parameters: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _mask_url_credentials(self) -> HttpTargetConfig:
        redact.register_url(self.endpoint, self)
        return self

    @model_validator(mode="after")
    def _path_parameters_fill_the_stars(self) -> HttpTargetConfig:
        stars = httpx.URL(self.endpoint).path.count("*")
        if stars != len(self.path_parameter_values):
            raise ValueError(
                f"endpoint has {stars} path parameter(s) ('*') but {len(self.path_parameter_values)} "
                "path_parameter_values were given"
            )
        return self

    def build(self) -> HttpTarget:
        return HttpTarget(self)


class RateLimiter:
    """Spaces calls ``1/rate`` seconds apart; callers over the rate wait for their slot.

    Time is ``time.monotonic``, or ``clock``'s when given (a ``ManualClock`` in tests).
    """

    def __init__(self, rate: float, *, clock: Clock | None = None) -> None:
        self.interval = 1.0 / rate
        self._time = Stopwatch(clock)
        self._next = float("-inf")

    @property
    def rate(self) -> float:
        """Calls per second; set it to change the rate (slots already handed out stay)."""
        return 1.0 / self.interval

    @rate.setter
    def rate(self, value: float) -> None:
        self.interval = 1.0 / value

    async def acquire(self) -> None:
        # No await between reading and moving ``_next``: slots are handed out in call order.
        now = self._time.now()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await self._time.sleep_until(slot)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: either delta-seconds or an HTTP date (RFC 9110), which is
    counted from ``now`` (the current time unless given)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpTarget:
    """POSTs (or whichever method) each invocation's JSON to the endpoint.

    ``clock`` times the rate limit and the OAuth token's lifetime (``time.monotonic`` unless
    given; a ``ManualClock`` in tests).
    """

    max_batch_size: int = 10_000
    #: A rule's events are separate calls: the bus hands them over one at a time.
    per_payload_calls: bool = True

    def __init__(
        self, config: HttpTargetConfig, *, clock: Clock | None = None, rate_limiter: RateLimiter | None = None
    ) -> None:
        self.config = config
        self.url = _fill_path(config.endpoint, config.path_parameter_values)
        self.auth = ConnectionAuth(config.connection, clock=clock) if config.connection else None
        rate = config.invocation_rate_limit_per_second
        #: ``rate_limiter`` is one shared with other targets (every use of one API destination
        #: counts against its one rate, as on AWS); otherwise the target has its own.
        self.rate_limiter = rate_limiter if rate_limiter is not None else RateLimiter(rate, clock=clock) if rate else None
        self._client: httpx.AsyncClient | None = None
        parsed = httpx.URL(self.url)
        #: The endpoint as messages show it: no query string, no user info.
        self.where = f"{parsed.scheme}://{parsed.host}{':' + str(parsed.port) if parsed.port else ''}{parsed.path}"

    @classmethod
    def create(cls, endpoint: str, *, clock: Clock | None = None, **options: Any) -> HttpTarget:
        """``HttpTarget.create(url, http_method="PUT", connection=...)`` for Python callers."""
        return cls(HttpTargetConfig(endpoint=endpoint, **options), clock=clock)

    def __repr__(self) -> str:
        return f"HttpTarget({self.config.http_method} {self.where})"

    def secrets(self) -> list[str]:
        return self.auth.secrets() if self.auth else []

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> Any:
        batched, bodies = invocation_bodies(payloads, context)
        results = [await self._invoke(body) for body in bodies]
        return results[0] if batched else results

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.config.timeout, follow_redirects=False)
        return self._client

    async def _invoke(self, body: str) -> Any:
        client = self._get_client()
        if self.rate_limiter is not None:
            await self.rate_limiter.acquire()
        response, credential = await self._send(client, body)
        if response.status_code in (401, 407) and self.auth is not None and self.auth.refreshes_on_unauthorized:
            # The token may have expired early or been revoked: fetch another and try once more.
            # Only the token this request used is dropped, so concurrent 401s share one refresh.
            self.auth.invalidate(credential.removeprefix("Bearer "))
            response, _ = await self._send(client, body)
        return self._classify(response)

    async def _send(self, client: httpx.AsyncClient, body: str) -> tuple[httpx.Response, str]:
        config = self.config
        # httpx.Headers: header names clash case-insensitively, so the later source replaces.
        headers = httpx.Headers({"User-Agent": USER_AGENT, "Content-Type": CONTENT_TYPE})
        headers.update(config.header_parameters)
        query: dict[str, str] = dict(config.query_string_parameters)
        content: str | None = body
        if config.connection is not None:
            # On a clash the connection's value wins over the target's (as in EventBridge).
            params = config.connection.invocation_http_parameters
            headers.update({k: plain(v) for k, v in params.header_parameters.items()})
            query.update({k: plain(v) for k, v in params.query_string_parameters.items()})
            if params.body_parameters:
                content = _merge_body(body, {k: plain(v) for k, v in params.body_parameters.items()})
        credential = ""
        if self.auth is not None:
            name, credential = await self.auth.header(client)
            headers[name] = credential
        if config.http_method in ("GET", "HEAD"):
            content = None
        try:
            response = await client.request(
                config.http_method, self.url, params=query or None, headers=headers, content=content
            )
        except httpx.TimeoutException:
            raise TargetTimeoutError(
                f"{config.http_method} {self.where} timed out after {config.timeout:g} seconds"
            ) from None
        except httpx.TransportError as exc:
            raise RetryableError(
                redact.mask(f"{config.http_method} {self.where} failed: {type(exc).__name__}: {exc}")
            ) from None
        return response, credential

    def _classify(self, response: httpx.Response) -> Any:
        status = response.status_code
        if status < 400:
            return maybe_json(response.text)
        reason = response.reason_phrase or ""
        body = tail(response.text, 300)
        # Masked after the cut: a secret the cut splits in two is masked in neither half, but a
        # server that echoes the request puts its secrets at the end, whole.
        message = redact.mask(
            f"{self.config.http_method} {self.where} answered {status} {reason}".rstrip()
            + (f": {body}" if body else "")
        )
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429:
            raise ThrottledError(message, retry_after=retry_after)
        if status >= 500:
            raise RetryableError(message, retry_after=retry_after)
        if status in (401, 403, 407):
            raise TargetPermissionError(message)
        if status in (404, 410):
            raise ResourceNotFoundError(message)
        raise NonRetryableError(message)


def _fill_path(endpoint: str, values: Sequence[str]) -> str:
    url = httpx.URL(endpoint)
    path = url.raw_path.decode().split("?", 1)[0]
    for value in values:
        encoded = quote(value, safe="")
        if value and set(value) == {"."}:
            # "." and ".." would be taken as dot-segments and vanish from the path.
            encoded = value.replace(".", "%2E")
        path = path.replace("*", encoded, 1)
    return str(url.copy_with(raw_path=(path + (("?" + url.query.decode()) if url.query else "")).encode()))


def _merge_body(body: str, extra: dict[str, str]) -> str:
    """Body parameters join a JSON object payload (the connection's win); others are left alone."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict):
        return body
    data.update(extra)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _install_filter() -> None:
    # httpx logs each request line, query string included, at INFO. ``redact`` masks every log
    # record as it is made; this filter keeps httpx's lines masked even if an application
    # replaces the log-record factory afterwards.
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, redact.MaskSecretsFilter) for f in logger.filters):
        logger.addFilter(redact.MaskSecretsFilter())


_install_filter()
