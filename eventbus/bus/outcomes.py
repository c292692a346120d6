"""What happened to each delivery, as a stream: ``bus.outcomes()``.

Every delivery (one event to one rule target) ends delivered, dead-lettered or dropped, and may
fail and be retried on the way; the dispatchers (and the router, for an input that cannot be
rendered) report each step as an ``Outcome``. A reader gets them through an ``OutcomeStream``: a
bounded buffer of its own that the bus appends to and never waits on, so a slow reader loses the
oldest outcomes (``lost`` counts them, and the next outcome it reads says how many were lost just
before it) and the bus runs at its own pace. With no reader, reporting costs one test per batch.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime
from types import TracebackType
from typing import Literal

import anyio

from eventbus.bus.delivery.retry import Condition

__all__ = ["Outcome", "OutcomeKind", "OutcomeStream", "Outcomes"]

#: ``delivered``: the target took it. ``failed``: an attempt failed (``error_code``, ``reason``);
#: a ``retry-scheduled`` (``delay``) or a ``dead-lettered`` / ``dropped`` outcome follows.
#: ``dead-lettered``: sent to the dead-letter target after the retries ran out (``condition``) or
#: at once for an error no retry fixes. ``dropped``: ended undelivered with nowhere to go (no
#: dead-letter target, a failing one, or a target input that could not be rendered).
OutcomeKind = Literal["delivered", "failed", "retry-scheduled", "dead-lettered", "dropped"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One step in the life of one delivery of event ``event_id`` to ``rule``'s target ``target_id``."""

    kind: OutcomeKind
    bus: str
    rule: str
    target_id: str
    event_id: str
    #: The attempt it concerns (1 for the first; 0 when nothing was attempted).
    attempt: int
    #: When it happened, on the bus's clock.
    time: datetime
    #: The error's ``error_code`` (``THROTTLING``, ``SDK_CLIENT_ERROR``...) and class name.
    error_code: str | None = None
    error_type: str | None = None
    #: The error's message (its first 500 characters).
    reason: str | None = None
    #: ``retry-scheduled``: seconds until the next attempt.
    delay: float | None = None
    #: ``dead-lettered`` / ``dropped``: the retry limit that ran out; ``None`` when the error was
    #: not retryable (or nothing was attempted).
    condition: Condition | None = None
    #: Outcomes this reader lost just before this one because it read too slowly.
    lost_before: int = 0

    @property
    def address(self) -> str:
        """``bus/rule/target id``: where the delivery was going."""
        return f"{self.bus}/{self.rule}/{self.target_id}"


class OutcomeStream:
    """One reader's outcomes: an async iterator over a buffer of at most ``buffer`` outcomes.

    It ends once the bus has stopped and the buffer is read; ``close()`` (or leaving ``async
    with``) stops reporting to it early.
    """

    def __init__(self, hub: Outcomes, buffer: int) -> None:
        if buffer < 1:
            raise ValueError("an outcome stream's buffer holds at least 1 outcome")
        self._hub = hub
        self._buffer: deque[Outcome] = deque(maxlen=buffer)
        self._lost_now = 0
        #: Outcomes lost because the buffer was full when they came.
        self.lost = 0
        self._closed = False
        self._arrived: anyio.Event | None = None

    def _push(self, outcome: Outcome) -> None:
        buffer = self._buffer
        if len(buffer) == buffer.maxlen:
            self.lost += 1
            self._lost_now += 1  # the deque drops its oldest
        buffer.append(outcome)
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = None

    def _end(self) -> None:
        self._closed = True
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = None

    def ready(self) -> list[Outcome]:
        """The outcomes buffered now, without waiting (they are read: iteration goes on after)."""
        return [self._take() for _ in range(len(self._buffer))]

    def _take(self) -> Outcome:
        outcome = self._buffer.popleft()
        if self._lost_now:
            outcome = replace(outcome, lost_before=self._lost_now)
            self._lost_now = 0
        return outcome

    def __aiter__(self) -> OutcomeStream:
        return self

    async def __anext__(self) -> Outcome:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            if self._arrived is None:
                self._arrived = anyio.Event()
            await self._arrived.wait()
        return self._take()

    def close(self) -> None:
        """Report no more outcomes here; what is buffered can still be read."""
        self._hub.unsubscribe(self)
        self._end()

    async def __aenter__(self) -> OutcomeStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Outcomes:
    """The bus's side: hands each outcome to every open stream."""

    def __init__(self) -> None:
        self._streams: list[OutcomeStream] = []
        self._ended = False

    @property
    def active(self) -> bool:
        """Whether anyone reads: the dispatchers skip building outcomes when no one does."""
        return bool(self._streams)

    def subscribe(self, buffer: int) -> OutcomeStream:
        stream = OutcomeStream(self, buffer)
        if self._ended:
            stream._end()
        else:
            self._streams.append(stream)
        return stream

    def unsubscribe(self, stream: OutcomeStream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)

    def emit(self, outcome: Outcome) -> None:
        for stream in self._streams:
            stream._push(outcome)

    def end(self) -> None:
        """The bus stopped: every stream ends once read."""
        self._ended = True
        for stream in self._streams:
            stream._end()
        self._streams.clear()
