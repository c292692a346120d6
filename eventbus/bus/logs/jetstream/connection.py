"""One NATS connection, shared by every bus of a process that uses the same settings.

Connecting is bounded: when no server answers, it tries again for ``connect_retry`` seconds, then
raises ``BackendError`` naming the servers and the last reason; credentials the server refuses
fail at once (trying again cannot help). Once connected, the client reconnects by itself for as
long as the process runs (a restarted node, a cluster failing over): requests made meanwhile
time out and are retried by their callers, publishes wait in the client's buffer.
"""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import nats
import nats.errors
import sniffio

from eventbus import redact
from eventbus._logger import get_logger
from eventbus.bus.logs.jetstream.settings import JetStreamSettings
from eventbus.errors import BackendError, ConfigError

__all__ = ["JetStreamConnection"]

_log = get_logger("eventbus.jetstream")

#: Errors that say the server refused who we are (no point in trying again).
_REFUSED = ("authorization violation", "authentication", "user authentication", "permissions violation")


def _refused(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, nats.errors.AuthorizationError) or any(word in text for word in _REFUSED)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror.lower()
    return redact.mask(text.removeprefix("nats: ").strip("'"))


class JetStreamConnection:
    """A NATS client for ``settings``: ``acquire`` connects (the first time), ``release`` closes
    it once every user has released it."""

    def __init__(self, settings: JetStreamSettings) -> None:
        self.settings = settings
        self._nc: Any = None
        self._users = 0
        self._lock: anyio.Lock | None = None

    def __repr__(self) -> str:
        return f"JetStreamConnection({self.settings.describe_servers()!r})"

    @property
    def nc(self) -> Any:
        """The nats-py client (``acquire`` first)."""
        if self._nc is None:
            raise RuntimeError("the JetStream connection is not open")
        return self._nc

    @property
    def js(self) -> Any:
        """Its JetStream context, with the publish timeout as request timeout."""
        return self.nc.jetstream(timeout=self.settings.publish_timeout)

    async def acquire(self) -> Any:
        if sniffio.current_async_library() != "asyncio":
            raise ConfigError(
                "The JetStream backend needs asyncio (nats-py runs on asyncio only): "
                "run the bus under asyncio.run() or anyio.run(..., backend='asyncio')"
            )
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._nc is None or self._nc.is_closed:
                self._nc = await self._connect()
            self._users += 1
            return self._nc

    async def release(self) -> None:
        if self._lock is None:
            return
        async with self._lock:
            self._users = max(0, self._users - 1)
            if self._users == 0 and self._nc is not None:
                nc, self._nc = self._nc, None
                with contextlib.suppress(Exception), anyio.move_on_after(10, shield=True):
                    # Flushes what is buffered (acknowledgements above all) before closing.
                    await nc.drain()
                if not nc.is_closed:
                    with contextlib.suppress(Exception):
                        await nc.close()

    async def _connect(self) -> Any:
        settings = self.settings
        errors: list[BaseException] = []
        refused = anyio.Event()

        async def on_error(exc: Exception) -> None:
            errors.append(exc)
            if _refused(exc):
                refused.set()
            elif self._nc is not None:
                _log.warning("NATS connection trouble", error=_reason(exc))

        async def on_disconnect() -> None:
            if self._users:  # not a close of ours
                _log.warning("NATS connection lost; reconnecting", servers=settings.describe_servers())

        async def on_reconnect() -> None:
            _log.info("NATS connection back", servers=settings.describe_servers())

        options: dict[str, Any] = {
            "servers": settings.servers,
            "name": "eventbus",
            "connect_timeout": settings.connect_timeout,
            "allow_reconnect": True,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.5,
            "error_cb": on_error,
            "disconnected_cb": on_disconnect,
            "reconnected_cb": on_reconnect,
            # Subjects are built from escaped names: checking each one again costs per message.
            "skip_subject_validation": True,
            # Acknowledgements and publishes of a busy worker: room before the client pushes back.
            "pending_size": 64 * 1024 * 1024,
        }
        if settings.user is not None:
            options["user"] = settings.user
        if settings.password is not None:
            options["password"] = settings.password.get_secret_value()
        if settings.token is not None:
            options["token"] = settings.token.get_secret_value()
        if settings.credentials is not None:
            options["user_credentials"] = settings.credentials
        if settings.nkey is not None:
            options["nkeys_seed"] = settings.nkey
        nc: Any = None
        failure: BaseException | None = None
        budget = max(settings.connect_retry, settings.connect_timeout)
        async with anyio.create_task_group() as tg:

            async def connect() -> None:
                nonlocal nc, failure
                try:
                    nc = await nats.connect(**options)
                except Exception as exc:
                    failure = exc
                tg.cancel_scope.cancel()

            async def watch_refusal() -> None:
                await refused.wait()
                tg.cancel_scope.cancel()

            async def deadline() -> None:
                await anyio.sleep(budget)
                tg.cancel_scope.cancel()

            tg.start_soon(connect)
            tg.start_soon(watch_refusal)
            tg.start_soon(deadline)
        servers = settings.describe_servers()
        if nc is None:
            last = failure if failure is not None else (errors[-1] if errors else None)
            if refused.is_set() or (last is not None and _refused(last)):
                reason = _reason(next((e for e in errors if _refused(e)), last or RuntimeError("refused")))
                raise BackendError(f"NATS at {servers} refused the credentials ({reason})")
            why = _reason(last) if last is not None else "no answer"
            raise BackendError(
                f"Cannot reach NATS at {servers}: {why} (tried for {budget:g} s; "
                "is nats-server running with JetStream, and are the servers right?)"
            )
        try:
            await nc.jetstream(timeout=settings.publish_timeout).account_info()
        except Exception as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            raise BackendError(
                f"NATS at {servers} has no JetStream for this account ({_reason(exc)}): "
                "start nats-server with -js (or enable jetstream in its config)"
            ) from None
        return nc
