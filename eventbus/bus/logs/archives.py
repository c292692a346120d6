"""The archive seam: ``ArchiveStore`` keeps archives, their events and replays; ``Archive`` and
``Replay`` describe them as EventBridge does.

An archive belongs to a bus (its source), holds the events the bus received that matched its
pattern, as received (with their ingestion time), and forgets them ``retention_days`` after
(0: never). A replay puts the events of an archive whose ``time`` falls in a window back on
that bus, in time order. The store keeps the state; what archives events, expires them and runs
replays is the bus's (``eventbus.bus.archives``). Names are unique per store, as per account on
AWS. Descriptions (``archives``, ``replays``) are answered from memory, so the API over them can
be synchronous like the rule API; events are read and written asynchronously.

``InMemoryArchiveStore`` is here; the SQLite one keeps everything in the state file
(``eventbus.bus.logs.sqlite.archives``), and another backend implements the same protocol.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "Archive",
    "ArchiveState",
    "ArchiveStore",
    "ArchivedEvent",
    "InMemoryArchiveStore",
    "Replay",
    "ReplayState",
    "time_key",
]

ArchiveState = Literal["ENABLED", "DISABLED", "CREATING", "UPDATING", "CREATE_FAILED", "UPDATE_FAILED"]
ReplayState = Literal["STARTING", "RUNNING", "CANCELLING", "COMPLETED", "CANCELLED", "FAILED"]


@dataclass(frozen=True, slots=True)
class Archive:
    """An archive as DescribeArchive answers it."""

    name: str
    arn: str
    #: The bus it archives (its source): its name and ARN.
    bus: str
    bus_arn: str
    state: ArchiveState
    #: The pattern as JSON text, or ``None``: every event.
    event_pattern: str | None
    #: Days an event is kept after it was archived; 0 keeps it for ever.
    retention_days: int
    description: str | None
    created: datetime
    event_count: int = 0
    size_bytes: int = 0
    state_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Replay:
    """A replay as DescribeReplay answers it, plus its progress."""

    name: str
    arn: str
    archive: str
    archive_arn: str
    #: The bus the events go back to (the archive's own bus, as on AWS).
    bus: str
    destination_arn: str
    #: The rules the events are delivered to (their ARNs); empty: every rule of the bus.
    filter_arns: tuple[str, ...]
    event_start: datetime
    event_end: datetime
    state: ReplayState
    description: str | None = None
    state_reason: str | None = None
    #: The ``time`` of the last event replayed (``EventLastReplayedTime``).
    last_replayed: datetime | None = None
    #: When the replay started and ended (``ReplayStartTime``, ``ReplayEndTime``).
    started: datetime | None = None
    ended: datetime | None = None
    #: Events replayed so far, and how many the window held when the replay started.
    replayed: int = 0
    total: int | None = None
    #: Where reading stands: the ``(time, seq)`` of the last event replayed.
    cursor: tuple[int, int] | None = None

    @property
    def rules(self) -> tuple[str, ...]:
        """The rule names of ``filter_arns``."""
        return tuple(arn.rsplit("/", 1)[-1] for arn in self.filter_arns)

    @property
    def finished(self) -> bool:
        return self.state in ("COMPLETED", "CANCELLED", "FAILED")


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    """One archived event: as received, its ``time`` and ingestion time, its place (``seq``)."""

    event: dict[str, Any]
    time: datetime
    ingestion_time: datetime
    seq: int
    #: The event as the store keeps it (JSON text), when it keeps text.
    text: str | None = None


@runtime_checkable
class ArchiveStore(Protocol):
    """Archives, their events and replays, in some storage."""

    async def open(self) -> None:
        """Load what the storage holds; called once before anything else (idempotent)."""
        ...

    def archives(self) -> list[Archive]:
        """Every archive of the store (all buses), as it stands now."""
        ...

    def save_archive(self, archive: Archive) -> None:
        """Create or replace an archive's description (its events stay)."""
        ...

    def drop_archive(self, name: str) -> None:
        """Forget an archive and its events."""
        ...

    async def add(self, events: Mapping[str, Sequence[tuple[dict[str, Any], datetime, datetime]]]) -> None:
        """Archive ``(event, time, ingestion time)`` tuples, by archive name. An event already in
        an archive (by id: a restart may route an event twice) is not added again. Once this
        returns they survive what the store survives."""
        ...

    async def read(
        self, archive: str, start: datetime, end: datetime, after: tuple[int, int] | None, limit: int
    ) -> list[ArchivedEvent]:
        """Up to ``limit`` events of ``archive`` with ``start <= time <= end``, in time order (then
        archive order), after the ``(time in microseconds, seq)`` position ``after``."""
        ...

    async def count(self, archive: str, start: datetime, end: datetime) -> int:
        """How many events of ``archive`` have ``start <= time <= end``."""
        ...

    async def expire(self, archive: str, before: datetime) -> datetime | None:
        """Forget the events of ``archive`` archived at or before ``before``; return the ingestion time
        of the oldest one left (``None``: it is empty)."""
        ...

    def replays(self) -> list[Replay]:
        """Every replay of the store, as it stands now."""
        ...

    def save_replay(self, replay: Replay) -> None:
        """Create or replace a replay (its state and progress)."""
        ...

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when another process changed replays (started or cancelled one)."""
        ...

    async def refresh(self) -> None:
        """Read again what other processes may have changed (replays requested or cancelled)."""
        ...

    async def close(self) -> None:
        """Let go of the storage (what is saved stays); idempotent."""
        ...


class InMemoryArchiveStore:
    """Archives in the process: gone with it. Events of an archive are kept sorted by time."""

    def __init__(self) -> None:
        self._archives: dict[str, Archive] = {}
        self._events: dict[str, list[tuple[int, int, ArchivedEvent]]] = {}
        self._ids: dict[str, set[str]] = {}
        self._replays: dict[str, Replay] = {}
        self._seq = 0

    async def open(self) -> None:
        return None

    def archives(self) -> list[Archive]:
        return list(self._archives.values())

    def save_archive(self, archive: Archive) -> None:
        self._archives[archive.name] = archive
        self._events.setdefault(archive.name, [])
        self._ids.setdefault(archive.name, set())

    def drop_archive(self, name: str) -> None:
        self._archives.pop(name, None)
        self._events.pop(name, None)
        self._ids.pop(name, None)

    async def add(self, events: Mapping[str, Sequence[tuple[dict[str, Any], datetime, datetime]]]) -> None:
        for name, items in events.items():
            archive = self._archives.get(name)
            if archive is None:
                continue
            ids, kept = self._ids[name], self._events[name]
            count, size = 0, 0
            for event, when, ingested in items:
                if event["id"] in ids:
                    continue
                ids.add(event["id"])
                self._seq += 1
                stored = ArchivedEvent(copy.deepcopy(event), when, ingested, self._seq)
                bisect.insort(kept, (time_key(when), self._seq, stored), key=lambda t: (t[0], t[1]))
                count += 1
                size += len(repr(event))
            self._archives[name] = replace(
                archive, event_count=archive.event_count + count, size_bytes=archive.size_bytes + size
            )

    async def read(
        self, archive: str, start: datetime, end: datetime, after: tuple[int, int] | None, limit: int
    ) -> list[ArchivedEvent]:
        kept = self._events.get(archive, [])
        low = max((time_key(start), -1), after or (-1, -1))
        index = bisect.bisect_right(kept, low, key=lambda t: (t[0], t[1]))
        out: list[ArchivedEvent] = []
        high = time_key(end)
        while index < len(kept) and len(out) < limit and kept[index][0] <= high:
            out.append(kept[index][2])
            index += 1
        return out

    async def count(self, archive: str, start: datetime, end: datetime) -> int:
        low, high = time_key(start), time_key(end)
        return sum(1 for t, _, _ in self._events.get(archive, []) if low <= t <= high)

    async def expire(self, archive: str, before: datetime) -> datetime | None:
        kept = self._events.get(archive)
        if kept is None:
            return None
        gone = [t for t in kept if t[2].ingestion_time <= before]
        if gone:
            self._events[archive] = [t for t in kept if t[2].ingestion_time > before]
            for _, _, stored in gone:
                self._ids[archive].discard(stored.event["id"])
            current = self._archives.get(archive)
            if current is not None:
                self._archives[archive] = replace(
                    current,
                    event_count=max(0, current.event_count - len(gone)),
                    size_bytes=max(0, current.size_bytes - sum(len(repr(t[2].event)) for t in gone)),
                )
        left = self._events[archive]
        return min((t[2].ingestion_time for t in left), default=None)

    def replays(self) -> list[Replay]:
        return list(self._replays.values())

    def save_replay(self, replay: Replay) -> None:
        self._replays[replay.name] = replay

    def watch(self, callback: Callable[[], None]) -> None:
        return None  # no other process shares it

    async def refresh(self) -> None:
        return None

    async def close(self) -> None:
        return None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def time_key(moment: datetime) -> int:
    """Microseconds since the epoch: how archives order and compare times."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)
