"""What happened to each delivery, as a stream: ``bus.outcomes()``.

Every delivery (one event to one rule target) ends delivered, dead-lettered or dropped, and may
fail and be retried on the way; the dispatchers (and the router, for an input that cannot be
rendered) report each step as an ``Outcome``. A reader gets them through an ``OutcomeStream``: a
bounded buffer of its own that the bus appends to and never waits on, so a slow reader loses the
oldest outcomes (``lost`` counts them, and the next outcome it reads says how many were lost just
before it) and the bus runs at its own pace. With no reader, reporting costs one test per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from eventbus.bus.delivery.retry import Condition
from eventbus.bus.feed import Feed, FeedStream

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


class OutcomeStream(FeedStream[Outcome]):
    """One reader's outcomes: an async iterator over a buffer of at most ``buffer`` outcomes.

    It ends once the bus has stopped and the buffer is read; ``close()`` (or leaving ``async
    with``) stops reporting to it early.
    """

    what = "outcome"


class Outcomes(Feed[Outcome]):
    """The bus's side: hands each outcome to every open stream."""

    stream_class = OutcomeStream

    def subscribe(self, buffer: int) -> OutcomeStream:
        stream = super().subscribe(buffer)
        assert isinstance(stream, OutcomeStream)
        return stream
