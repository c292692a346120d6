"""Pull requests to one durable consumer, shared by the tasks of a process that take from it.

The tasks that wait for messages (a route's dispatcher workers, a bus's router) share what the
process asks the server for: a ``pull`` that finds nothing at hand adds to the demand, and the
puller sends a lingering request (it expires after ``wait`` seconds) for the part of the demand
that no open request covers yet. Messages go to one place, whoever's request brought them, and
each waiting ``pull`` takes from there: one request serves many messages when they come in
bursts, and an idle consumer costs one request per ``wait`` seconds, not a stream of them.

Each request has its own reply subject on the puller's inbox, so the puller knows which request
a status answer ends (408 expired, 409 leadership change...); messages come with their own
subject and count against the oldest open request, as the server serves requests in order. ``close`` hands
back (naks) whatever arrived and was not taken, for another worker at once.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio

from eventbus.bus.logs.jetstream.wakeup import Wakeup

__all__ = ["Puller", "delivery_info"]

#: Seconds past a lingering request's expiry before giving up on its answer (a lost connection).
_GRACE = 2.0
#: Largest batch one request asks for.
_MAX_BATCH = 1024


def delivery_info(reply: str) -> tuple[int, int]:
    """``(times delivered, stream sequence)`` of a JetStream message, from its reply subject:
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>...`` (or with a domain and account
    hash before the stream, on newer servers)."""
    parts = reply.split(".")
    if len(parts) >= 12:
        return int(parts[6]), int(parts[7])
    return int(parts[4]), int(parts[5])


class Puller:
    """Takes messages from consumer ``consumer`` of ``stream``."""

    def __init__(
        self,
        nc: Any,
        stream: str,
        consumer: str,
        *,
        prefetch: int = 0,
        on_arrival: Callable[[Any], None] | None = None,
        api_prefix: str = "$JS.API",
    ) -> None:
        self._nc = nc
        #: Messages to have coming beyond what the waiting pulls want, so that a task coming back
        #: for more finds them at hand instead of waiting a round trip.
        self.prefetch = prefetch
        #: Told of each message as it arrives (to keep it leased while it waits to be taken).
        self._on_arrival = on_arrival
        self._next = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._prefix = ""
        self._sub: Any = None
        #: Open requests: token -> [messages still to come, when it surely expired].
        self._open: dict[str, list[float]] = {}
        self._tokens = itertools.count()
        #: Messages that arrived and were not taken yet.
        self._kept: deque[Any] = deque()
        #: Messages the waiting pulls want, and how many the open requests may still bring.
        self._wanted = 0
        self._coming = 0
        #: Set when something arrives or a request ends; made only when someone waits on it
        #: (one event a message would cost more than the message's other handling).
        self._changed = Wakeup()
        self._closed = False
        #: Why the last request ended early (a 409 status), for logs.
        self.last_status: str | None = None

    async def start(self) -> None:
        self._prefix = self._nc.new_inbox() + "."
        self._sub = await self._nc.subscribe(self._prefix + "*", cb=self._on_msg)

    def _notify(self) -> None:
        self._changed.fire()

    def _end(self, token: str) -> None:
        left = self._open.pop(token, None)
        if left is not None:
            self._coming -= int(left[0])

    async def _on_msg(self, msg: Any) -> None:
        headers = msg.headers
        status = headers.get("Status") if headers else None
        if status:
            token = msg.subject[len(self._prefix) :]
            if status == "100":  # a heartbeat
                return
            # 404 no messages, 408 expired, 409 (leadership change, consumer deleted...):
            # the request is over either way.
            if status == "409":
                self.last_status = str(headers.get("Description", status))
            self._end(token)
            self._notify()
            return
        # A message comes with its own subject, not its request's: the server answers open
        # requests in the order they came, so it counts against the oldest one.
        for key, request in self._open.items():
            request[0] -= 1
            self._coming -= 1
            if request[0] <= 0:
                del self._open[key]
            break
        if self._closed:
            with contextlib.suppress(Exception):
                await msg.nak()
            return
        self._kept.append(msg)
        if self._on_arrival is not None:
            self._on_arrival(msg)
        self._notify()

    def take(self, batch: int) -> list[Any]:
        """Up to ``batch`` messages that arrived and were not taken yet, without waiting."""
        return self._take(batch)

    def _take(self, batch: int) -> list[Any]:
        kept = self._kept
        return [kept.popleft() for _ in range(min(batch, len(kept)))]

    def _forget_lost(self) -> None:
        """Requests past their expiry with no answer (a lost connection) bring nothing more."""
        now = time.monotonic()
        for token, (_, until) in list(self._open.items()):
            if until < now:
                self._end(token)

    async def _ask(self, batch: int, wait: float) -> None:
        token = str(next(self._tokens))
        batch = min(batch, _MAX_BATCH)
        self._open[token] = [batch, time.monotonic() + wait + _GRACE]
        self._coming += batch
        ask = f'{{"batch":{batch},"expires":{int(wait * 1e9)}}}'.encode()
        try:
            await self._nc.publish(self._next, ask, reply=self._prefix + token)
        except Exception:
            self._end(token)
            raise

    async def pull(self, batch: int, wait: float) -> list[Any]:
        """Up to ``batch`` messages: what is at hand, else the first to arrive within ``wait``
        seconds; ``[]`` when none came (or the puller closed)."""
        if self._closed:
            return self._take(batch)
        if self._kept:
            taken = self._take(batch)
            await self._top_up(wait)
            return taken
        self._wanted += batch
        try:
            with anyio.move_on_after(wait + _GRACE):
                while not self._kept and not self._closed:
                    self._forget_lost()
                    missing = self._wanted + self.prefetch - self._coming - len(self._kept)
                    changed = self._changed.event()
                    if missing > 0:
                        try:
                            await self._ask(missing, wait)
                        except Exception:
                            return []  # the connection is closed or failing: the caller asks again
                        if self._kept or self._closed:
                            break
                    await changed.wait()
        finally:
            self._wanted -= batch
        return self._take(batch)

    async def _top_up(self, wait: float) -> None:
        """Ask for the prefetch again once most of it was taken, before the next ``pull`` finds
        nothing at hand (not for every message taken: one request serves many)."""
        missing = self.prefetch - self._coming - len(self._kept)
        if self.prefetch and missing >= max(1, self.prefetch // 4):
            self._forget_lost()
            with contextlib.suppress(Exception):  # the next ``pull`` that waits asks again
                await self._ask(missing, wait)

    async def close(self, *, hand_back: bool = True) -> None:
        """Take no more; hand back what arrived and was not taken (due again at once), unless
        ``hand_back`` is false (whoever ``on_arrival`` told does it)."""
        self._closed = True
        self._notify()
        kept, self._kept = list(self._kept), deque()
        for msg in kept if hand_back else ():
            with contextlib.suppress(Exception):
                await msg.nak()
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
