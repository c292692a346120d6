"""``Election``: one worker of a deployment does what only one may (read a pipe's file).

The leader holds a key in a key-value bucket whose entries expire ``ttl`` seconds after their
last write. A candidate creates the key (a create succeeds only while the key does not exist);
the leader writes it again every third of ``ttl`` naming the revision it last wrote (a revision
check: it fails if anyone else wrote meanwhile). A leader that dies stops writing, the key
expires, and the next candidate to try creates it. A leader that cannot renew in time stops
leading before the key can expire, so two leaders never overlap by more than a renewal's delay.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import nats.js.errors

from eventbus._logger import get_logger

__all__ = ["Election"]

_log = get_logger("eventbus.jetstream")


class Election:
    """Candidacy for key ``key`` of bucket ``kv`` (its entries expire after ``ttl`` seconds)."""

    def __init__(self, kv: Any, key: str, ttl: float, *, name: str = "") -> None:
        self._kv = kv
        self.key = key
        self.ttl = ttl
        self.me = f"{name or 'worker'}-{uuid.uuid4().hex[:12]}"
        self.leading = False

    async def _take(self) -> int | None:
        """The revision of our new lease, or ``None`` if another worker holds the key."""
        try:
            return int(await self._kv.create(self.key, self.me.encode()))
        except nats.js.errors.KeyWrongLastSequenceError:
            return None

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Campaign until cancelled: while this worker leads, ``lead()`` runs; it is cancelled
        when the lead is lost (and run again if it comes back)."""
        every = self.ttl / 3
        while True:
            try:
                revision = await self._take()
            except Exception as exc:
                _log.warning("election: the bucket did not answer", key=self.key, error=str(exc))
                revision = None
            if revision is not None:
                await self._lead(lead, [revision])
            await anyio.sleep(every)

    async def _lead(self, lead: Callable[[], Awaitable[None]], held: list[int]) -> None:
        """Run ``lead()`` while renewing the lease ``held`` (its revision, emptied once lost)."""
        self.leading = True
        try:
            async with anyio.create_task_group() as tg:

                async def leading() -> None:
                    await lead()
                    tg.cancel_scope.cancel()

                tg.start_soon(self._renew, held, tg.cancel_scope)
                tg.start_soon(leading)
        finally:
            self.leading = False
            if held:
                # Stepping down (a worker stopping): the next candidate need not wait for the
                # key to expire.
                with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                    try:
                        await self._kv.delete(self.key, last=held[0])
                    except Exception as exc:
                        _log.debug("election: lease not given back", key=self.key, error=str(exc))

    async def _renew(self, held: list[int], scope: anyio.CancelScope) -> None:
        every = self.ttl / 3
        since = anyio.current_time()
        while True:
            await anyio.sleep(every)
            try:
                held[0] = int(await self._kv.update(self.key, self.me.encode(), last=held[0]))
                since = anyio.current_time()
            except nats.js.errors.KeyWrongLastSequenceError:
                break  # someone else leads now
            except Exception as exc:
                _log.warning("election: lease not renewed", key=self.key, error=str(exc))
                if anyio.current_time() - since > self.ttl - every:
                    break  # it may expire any moment: stop leading first
        _log.warning("election: lead lost", key=self.key, worker=self.me)
        held.clear()
        scope.cancel()
