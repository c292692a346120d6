"""Pull requests to one durable consumer, shared by the tasks of a process that take from it.

A ``pull`` first asks for what is there now (``no_wait``: the server answers at once, with up to
a batch or "no messages"), and only when nothing is there waits with a lingering request that
expires after ``wait`` seconds. It returns as soon as the first message of a lingering request
arrives; messages that arrive for a request nobody waits on any more (its caller returned or was
cancelled) are kept for the next ``pull`` of this process, which takes them first, so nothing
is stranded: ``close`` hands back (naks) whatever is kept when the process stops.

Each request has its own reply subject on the puller's inbox, so concurrent pulls never take
each other's messages.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections import deque
from typing import Any

import anyio

__all__ = ["Puller", "delivery_info"]

#: Seconds past a lingering request's expiry before giving up on its answer (a lost connection).
_GRACE = 2.0


def delivery_info(reply: str) -> tuple[int, int]:
    """``(times delivered, stream sequence)`` of a JetStream message, from its reply subject:
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>...`` (or with a domain and account
    hash before the stream, on newer servers)."""
    parts = reply.split(".")
    if len(parts) >= 12:
        return int(parts[6]), int(parts[7])
    return int(parts[4]), int(parts[5])


class _Request:
    __slots__ = ("arrived", "batch", "ended", "msgs", "open")

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.msgs: list[Any] = []
        self.open = True
        self.ended = False
        self.arrived = anyio.Event()


class Puller:
    """Takes messages from consumer ``consumer`` of ``stream``."""

    def __init__(self, nc: Any, stream: str, consumer: str, *, api_prefix: str = "$JS.API") -> None:
        self._nc = nc
        self._next = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._prefix = ""
        self._sub: Any = None
        self._requests: dict[str, _Request] = {}
        self._tokens = itertools.count()
        #: Messages that arrived for a request nobody waits on any more: the next pull's.
        self._kept: deque[Any] = deque()
        self._closed = False
        #: Why the last request ended without messages (a 409 status), for logs.
        self.last_status: str | None = None

    async def start(self) -> None:
        self._prefix = self._nc.new_inbox() + "."
        self._sub = await self._nc.subscribe(self._prefix + "*", cb=self._on_msg)

    async def _on_msg(self, msg: Any) -> None:
        request = self._requests.get(msg.subject[len(self._prefix) :])
        headers = msg.headers
        status = headers.get("Status") if headers else None
        if status:
            if status != "100" and request is not None:  # 100: a heartbeat
                # 404 no messages, 408 expired, 409 (leadership change, consumer deleted...):
                # the request is over either way.
                if status == "409":
                    self.last_status = str(headers.get("Description", status))
                request.ended = True
                request.arrived.set()
            return
        if request is not None and request.open:
            request.msgs.append(msg)
            if len(request.msgs) >= request.batch:
                request.ended = True
            request.arrived.set()
        elif self._closed:
            with contextlib.suppress(Exception):
                await msg.nak()
        else:
            self._kept.append(msg)
            # Whoever waits may take it rather than wait on its own request.
            for waiting in self._requests.values():
                waiting.arrived.set()

    def _take_kept(self, batch: int) -> list[Any]:
        kept = self._kept
        return [kept.popleft() for _ in range(min(batch, len(kept)))]

    async def pull(self, batch: int, wait: float) -> list[Any]:
        """Up to ``batch`` messages: what is there now, else the first to arrive within ``wait``
        seconds; ``[]`` when none came (or the puller closed)."""
        if self._closed:
            return []
        kept = self._take_kept(batch)
        if kept:
            return kept
        got = await self._request(batch, None)
        if got or self._closed:
            return got
        return await self._request(batch, wait)

    async def _request(self, batch: int, wait: float | None) -> list[Any]:
        token = str(next(self._tokens))
        request = _Request(batch)
        self._requests[token] = request
        if wait is None:
            ask: dict[str, Any] = {"batch": batch, "no_wait": True}
            limit = 10.0
        else:
            ask = {"batch": batch, "expires": int(wait * 1e9)}
            limit = wait + _GRACE
        try:
            await self._nc.publish(self._next, json.dumps(ask).encode(), reply=self._prefix + token)
            with anyio.move_on_after(limit):
                while not request.ended and not self._closed:
                    if request.msgs and wait is not None:
                        break  # a lingering request: the first message is enough
                    if self._kept and not request.msgs:
                        # A message another request left behind: take it rather than wait on.
                        request.open = False
                        return self._take_kept(batch)
                    request.arrived = anyio.Event()
                    await request.arrived.wait()
        except Exception:
            # The connection closed or failed: nothing was taken that is not in request.msgs.
            pass
        except BaseException:
            # Cancelled: what had arrived is the next pull's (or ``close`` hands it back).
            self._kept.extendleft(reversed(request.msgs))
            request.msgs = []
            raise
        finally:
            # Messages still on their way for it go to the kept ones, for the next pull.
            request.open = False
            self._requests.pop(token, None)
        return request.msgs

    async def close(self) -> None:
        """Take no more; hand back what is kept (nak: due again at once, for another worker)."""
        self._closed = True
        for request in self._requests.values():
            request.arrived.set()
        kept, self._kept = list(self._kept), deque()
        for msg in kept:
            with contextlib.suppress(Exception):
                await msg.nak()
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

