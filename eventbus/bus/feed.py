"""A bounded fan-out the bus writes to and never waits on: what ``bus.outcomes()`` and
``bus.routed()`` are made of.

The bus's side (``Feed``) hands each item to every open reader (``FeedStream``). A reader's buffer
keeps at most ``buffer`` items; when it is full the oldest is dropped, ``lost`` counts it, and the
next item the reader takes says how many were lost just before it (its ``lost_before``). So a slow
reader loses items and the bus runs at its own pace; with no reader, ``active`` is false and the
bus skips building the items at all.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

import anyio

__all__ = ["Feed", "FeedStream"]


class _Counted(Protocol):
    # A frozen dataclass with this field: ``replace`` sets it on the item handed out.
    @property
    def lost_before(self) -> int: ...


T = TypeVar("T", bound=_Counted)


class FeedStream(Generic[T]):
    """One reader's items: an async iterator over a buffer of at most ``buffer`` items.

    It ends once the feed has ended and the buffer is read; ``close()`` (or leaving ``async
    with``) stops feeding it early.
    """

    #: What it streams, for messages.
    what = "item"

    def __init__(self, feed: Feed[T], buffer: int) -> None:
        if buffer < 1:
            raise ValueError(f"a {self.what} stream's buffer holds at least 1 {self.what}")
        self._feed = feed
        self._buffer: deque[T] = deque(maxlen=buffer)
        self._lost_now = 0
        #: Items lost because the buffer was full when they came.
        self.lost = 0
        self._closed = False
        self._arrived: anyio.Event | None = None

    def _push(self, item: T) -> None:
        buffer = self._buffer
        if len(buffer) == buffer.maxlen:
            self.lost += 1
            self._lost_now += 1  # the deque drops its oldest
        buffer.append(item)
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = None

    def _end(self) -> None:
        self._closed = True
        if self._arrived is not None:
            self._arrived.set()
            self._arrived = None

    def ready(self) -> list[T]:
        """The items buffered now, without waiting (they are read: iteration goes on after)."""
        return [self._take() for _ in range(len(self._buffer))]

    def _take(self) -> T:
        item = self._buffer.popleft()
        if self._lost_now:
            changed: Any = replace(item, lost_before=self._lost_now)  # type: ignore[type-var]
            item = changed
            self._lost_now = 0
        return item

    def __aiter__(self) -> FeedStream[T]:
        return self

    async def __anext__(self) -> T:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            if self._arrived is None:
                self._arrived = anyio.Event()
            await self._arrived.wait()
        return self._take()

    def close(self) -> None:
        """Feed no more items here; what is buffered can still be read."""
        self._feed.unsubscribe(self)
        self._end()

    async def __aenter__(self) -> FeedStream[T]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Feed(Generic[T]):
    """The bus's side: hands each item to every open stream."""

    stream_class: type[FeedStream[Any]] = FeedStream

    def __init__(self) -> None:
        self._streams: list[FeedStream[T]] = []
        self._ended = False

    @property
    def active(self) -> bool:
        """Whether anyone reads: the bus skips building items when no one does."""
        return bool(self._streams)

    def subscribe(self, buffer: int) -> FeedStream[T]:
        stream: FeedStream[T] = self.stream_class(self, buffer)
        if self._ended:
            stream._end()
        else:
            self._streams.append(stream)
        return stream

    def unsubscribe(self, stream: FeedStream[T]) -> None:
        if stream in self._streams:
            self._streams.remove(stream)

    def emit(self, item: T) -> None:
        for stream in self._streams:
            stream._push(item)

    def end(self) -> None:
        """The bus stopped: every stream ends once read."""
        self._ended = True
        for stream in self._streams:
            stream._end()
        self._streams.clear()
