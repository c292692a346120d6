"""The NATS target: publishes each payload to a JetStream subject and waits for the ack.

The event id goes in the ``Nats-Msg-Id`` header, so JetStream drops the copy a retry would
otherwise store (within the stream's duplicate window): at-least-once delivery, once stored.
nats-py runs on asyncio only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, ClassVar

import nats
import nats.errors
import nats.js.errors
from pydantic import Field, model_validator

from eventbus import redact
from eventbus.errors import (
    ConfigError,
    NonRetryableError,
    ResourceNotFoundError,
    RetryableError,
    TargetTimeoutError,
)
from eventbus.targets.base import DeliveryContext, TargetConfig

__all__ = ["NatsTarget", "NatsTargetConfig"]

#: nats-py's connection errors: all of them may pass on a later attempt.
_CONNECTION_ERRORS = (
    nats.errors.NoServersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.UnexpectedEOF,
    OSError,
)


class NatsTargetConfig(TargetConfig):
    kind: ClassVar[str] = "nats"

    servers: list[str] = Field(default_factory=lambda: ["nats://127.0.0.1:4222"], min_length=1)
    subject: str = Field(min_length=1, pattern=r"^[^\s*>]+$")
    #: When set, JetStream rejects the message unless this stream stores the subject.
    stream: str | None = None
    timeout: float = Field(default=5.0, gt=0)
    connect_timeout: float = Field(default=2.0, gt=0)
    user: str | None = None
    password: redact.Secret | None = None
    token: redact.Secret | None = None

    @model_validator(mode="after")
    def _mask_url_credentials(self) -> NatsTargetConfig:
        # nats://user:password@host: the password is a secret wherever the URL is shown.
        for server in self.servers:
            redact.register_url(server, self)
        return self

    def build(self) -> NatsTarget:
        return NatsTarget(self)


class NatsTarget:
    """One message a payload; returns the acks as ``{"stream", "seq", "duplicate"}`` dicts."""

    max_batch_size: int = 100

    def __init__(self, config: NatsTargetConfig) -> None:
        self.config = config
        self._nc: Any = None
        self._js: Any = None
        self._lock: asyncio.Lock | None = None
        self._last_error: BaseException | None = None

    @classmethod
    def create(cls, subject: str, **options: Any) -> NatsTarget:
        return cls(NatsTargetConfig(subject=subject, **options))

    def __repr__(self) -> str:
        return f"NatsTarget({self.config.subject!r})"

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> list[dict[str, Any]]:
        js = await self._jetstream()
        acks = []
        for index, payload in enumerate(payloads):
            headers = None
            if index < len(context.event_ids) and context.event_ids[index]:
                headers = {"Nats-Msg-Id": context.event_ids[index]}
            try:
                ack = await js.publish(
                    self.config.subject,
                    payload.encode(),
                    timeout=self.config.timeout,
                    stream=self.config.stream,
                    headers=headers,
                )
            except nats.js.errors.NoStreamResponseError:
                raise ResourceNotFoundError(
                    f"No JetStream stream stores subject {self.config.subject!r}"
                ) from None
            except nats.js.errors.ServiceUnavailableError as exc:
                raise RetryableError(f"JetStream unavailable: {exc.description or exc}") from None
            except nats.js.errors.APIError as exc:
                raise NonRetryableError(
                    f"JetStream refused the message on {self.config.subject!r}: {exc.description or exc}"
                ) from None
            except nats.errors.TimeoutError:
                raise TargetTimeoutError(
                    f"No JetStream ack for {self.config.subject!r} within {self.config.timeout:g} seconds"
                ) from None
            except _CONNECTION_ERRORS as exc:
                await self._reset()
                raise RetryableError(redact.mask(f"NATS connection failed: {type(exc).__name__}: {exc}")) from None
            acks.append({"stream": ack.stream, "seq": ack.seq, "duplicate": bool(ack.duplicate)})
        return acks

    async def aclose(self) -> None:
        await self._reset()

    async def _jetstream(self) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigError("The nats target needs the asyncio event loop (nats-py runs on asyncio only)") from None
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._nc is None or self._nc.is_closed:
                self._nc = await self._connect()
                self._js = self._nc.jetstream(timeout=self.config.timeout)
        return self._js

    async def _connect(self) -> Any:
        config = self.config

        async def on_error(exc: Exception) -> None:
            self._last_error = exc  # nats-py would print these otherwise

        options: dict[str, Any] = {
            "servers": config.servers,
            "connect_timeout": config.connect_timeout,
            "allow_reconnect": True,
            "max_reconnect_attempts": 3,
            "reconnect_time_wait": 0.5,
            "error_cb": on_error,
        }
        if config.user:
            options["user"] = config.user
        if config.password:
            options["password"] = config.password.get_secret_value()
        if config.token:
            options["token"] = config.token.get_secret_value()
        try:
            with_timeout = asyncio.wait_for(nats.connect(**options), timeout=config.connect_timeout * 3)
            return await with_timeout
        except (TimeoutError, *_CONNECTION_ERRORS, nats.errors.Error) as exc:
            servers = ", ".join(redact.redact_url(server) for server in config.servers)
            raise RetryableError(redact.mask(f"Cannot connect to NATS at {servers}: {type(exc).__name__}")) from None

    async def _reset(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            # Closing a broken connection may fail too; there is nothing left to do about it.
            with contextlib.suppress(Exception):
                await nc.close()
