"""What the router did with each event, as a stream: ``bus.routed()``.

Once an accepted event is matched, the router reports a ``RoutedEvent``: the event, the enabled
rules it matched and, for each of their targets, the input it rendered (or why it could not). The
delivery outcomes that follow come through ``bus.outcomes()``, keyed by the same event id. Like
outcomes, a reader's buffer is bounded and the bus never waits for it (a slow reader loses the
oldest, counted); with no reader the router builds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventbus.bus.feed import Feed, FeedStream

__all__ = ["RenderedInput", "RoutedEvent", "RoutedFeed", "RoutedStream"]


@dataclass(frozen=True, slots=True)
class RenderedInput:
    """What rule ``rule``'s target ``target_id`` is sent for the event: ``payload``, or ``error``
    when its input transformation failed (nothing is sent then)."""

    rule: str
    target_id: str
    payload: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RoutedEvent:
    """One event, routed on bus ``bus``."""

    bus: str
    event: dict[str, Any]
    #: When the bus accepted it, on the bus's clock.
    ingestion_time: datetime
    #: The enabled rules it matched, in the matcher's order (a scheduled event: its rule).
    rules: tuple[str, ...]
    #: One per target of those rules (a rule without targets matches and sends nothing).
    inputs: tuple[RenderedInput, ...] = ()
    #: Routed events this reader lost just before this one because it read too slowly.
    lost_before: int = 0

    @property
    def event_id(self) -> str:
        return str(self.event.get("id", ""))


class RoutedStream(FeedStream[RoutedEvent]):
    """One reader's routed events (see ``EventBus.routed``)."""

    what = "routed event"


class RoutedFeed(Feed[RoutedEvent]):
    stream_class = RoutedStream

    def subscribe(self, buffer: int) -> RoutedStream:
        stream = super().subscribe(buffer)
        assert isinstance(stream, RoutedStream)
        return stream
