"""Archives and replay on one bus: which events an archive takes, when they expire, and the
replays that put them back.

``ArchiveKeeper`` serves one bus over an ``ArchiveStore`` (logs/archives.py): the router asks it
which archives each event goes to (``matches``) and stores them before the event leaves the log
(``keep``), as EventBridge's archive rule would; a background task forgets events past their
retention, sleeping until the next one is due on the bus's clock; another runs replays,
re-putting an archive's events whose ``time`` falls in the window, in time order, each with
``replay-name`` (never archived again), with ``EventLastReplayedTime`` kept as it goes. A replay
requested or cancelled by another process (``eventbus replay start`` beside ``eventbus run``)
reaches the process serving the bus through the store (``watch``).

``Archives`` is the same API for several buses, by name: what an HTTP API (CreateArchive ...
CancelReplay) sits on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import anyio

from eventbus._logger import get_logger
from eventbus.bus.clock import Clock, wait_until
from eventbus.bus.logs.archives import Archive, ArchivedEvent, ArchiveStore, Replay, time_key
from eventbus.bus.logs.protocol import LogRecord
from eventbus.envelope import parse_time
from eventbus.errors import (
    BusClosedError,
    BusValidationError,
    IllegalStatusError,
    ResourceAlreadyExistsError,
    ResourceMissingError,
)
from eventbus.patterns import Pattern
from eventbus.patterns.matcher import Matcher

__all__ = ["ArchiveKeeper", "Archives"]

_log = get_logger("eventbus.bus")

_NAME_RE = re.compile(r"[\.\-_A-Za-z0-9]+")
#: Archived events read (and put back) at a time by a replay.
REPLAY_PAGE = 1000
_FINAL = ("COMPLETED", "CANCELLED", "FAILED")


def _check_name(kind: str, name: str, limit: int) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= limit or not _NAME_RE.fullmatch(name):
        raise BusValidationError(
            f"1 validation error detected: Value '{name}' at '{kind}' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+ and have length between 1 and {limit}"
        )


def _pattern_text(pattern: Mapping[str, Any] | str | Pattern | None) -> str | None:
    if pattern is None:
        return None
    parsed = pattern if isinstance(pattern, Pattern) else Pattern(pattern)  # PatternError, AWS's words
    return json.dumps(parsed.to_dict(), separators=(",", ":"))


class ArchiveKeeper:
    """The archives of bus ``bus`` and the replays into it."""

    def __init__(
        self,
        bus: str,
        *,
        bus_arn: str,
        region: str,
        account: str,
        clock: Clock,
        put: Callable[[list[LogRecord]], Awaitable[None]],
        rule_names: Callable[[], Iterable[str]],
        rule_arn: Callable[[str], str],
    ) -> None:
        self.bus = bus
        self.bus_arn = bus_arn
        self._region = region
        self._account = account
        self._clock = clock
        self._put = put
        self._rule_names = rule_names
        self._rule_arn = rule_arn
        self.store: ArchiveStore | None = None
        self._matcher = Matcher()
        self._all: set[str] = set()
        #: This bus's archives with a retention, by name: days.
        self._retention: dict[str, int] = {}
        self._next_expiry: datetime | None = None
        self._archives_changed: anyio.Event | None = None
        self._replays_changed: anyio.Event | None = None
        self._running: dict[str, anyio.CancelScope] = {}
        self._cancelled: set[str] = set()
        self._ended: dict[str, anyio.Event] = {}
        self._built: tuple[tuple[str, str, str | None, int], ...] = ()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether any archive takes this bus's events (the router skips matching otherwise)."""
        return bool(self._all) or len(self._matcher) > 0

    async def open(self, store: ArchiveStore) -> None:
        await store.open()
        self.store = store
        store.watch(self._nudged)
        self._rebuild()

    def _nudged(self) -> None:
        # Another process wrote a replay request or a cancellation for this bus, or (a store
        # shared live by several workers) made, changed or deleted an archive.
        if self._signature() != self._built:
            self._rebuild()
        # A replay another worker runs may have ended: whoever waits for it here learns of it.
        for name in list(self._ended):
            if any(r.name == name and r.finished for r in self._store().replays()):
                self._ended.pop(name).set()
        self._notify_replays()

    def _signature(self) -> tuple[tuple[str, str, str | None, int], ...]:
        return tuple(sorted((a.name, a.state, a.event_pattern, a.retention_days) for a in self._mine()))

    def _mine(self) -> list[Archive]:
        assert self.store is not None
        return [a for a in self.store.archives() if a.bus == self.bus]

    def _rebuild(self) -> None:
        matcher, everything, retention = Matcher(), set(), {}
        for archive in self._mine():
            if archive.state != "ENABLED":
                continue
            if archive.event_pattern is None:
                everything.add(archive.name)
            else:
                matcher.add(archive.name, archive.event_pattern)
            if archive.retention_days > 0:
                retention[archive.name] = archive.retention_days
        self._matcher, self._all, self._retention = matcher, everything, retention
        self._built = self._signature()
        self._notify_archives()

    def _notify_archives(self) -> None:
        if self._archives_changed is not None:
            self._archives_changed.set()
            self._archives_changed = None

    def _notify_replays(self) -> None:
        if self._replays_changed is not None:
            self._replays_changed.set()
            self._replays_changed = None

    def _store(self) -> ArchiveStore:
        if self.store is None:
            raise BusClosedError(f"EventBus {self.bus} is not running: archives and replays live in its storage")
        return self.store

    # -- the router's side --------------------------------------------------------------------

    def matches(self, records: Sequence[LogRecord]) -> dict[str, list[tuple[dict[str, Any], datetime, datetime]]]:
        """The archives each of ``records`` goes to: events the bus received, not a replay's, not
        a scheduled event or a redriven dead letter (those are for one rule)."""
        out: dict[str, list[tuple[dict[str, Any], datetime, datetime]]] = {}
        matcher, everything = self._matcher, self._all
        for record in records:
            event = record.event
            if record.target_rule is not None or "replay-name" in event:
                continue
            names = set(everything)
            if len(matcher):
                try:
                    names |= matcher.match(event)
                except Exception:
                    continue
            if not names:
                continue
            try:
                when = parse_time(event["time"])
            except (KeyError, TypeError, ValueError):
                when = record.ingestion_time
            for name in names:
                out.setdefault(name, []).append((event, when, record.ingestion_time))
        return out

    async def keep(self, matched: Mapping[str, Sequence[tuple[dict[str, Any], datetime, datetime]]]) -> None:
        """Store ``matched`` (from ``matches``) in the archives."""
        if not matched or self.store is None:
            return
        await self.store.add(matched)
        if self._retention:
            # The first event of an archive with a retention sets the next expiry.
            for name, items in matched.items():
                days = self._retention.get(name)
                if days is None or not items:
                    continue
                due = items[0][2] + timedelta(days=days)
                if self._next_expiry is None or due < self._next_expiry:
                    self._next_expiry = due
                    self._notify_archives()

    # -- archives -----------------------------------------------------------------------------

    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:events:{self._region}:{self._account}:{kind}/{name}"

    def create_archive(
        self,
        name: str,
        *,
        event_pattern: Mapping[str, Any] | str | Pattern | None = None,
        retention_days: int = 0,
        description: str | None = None,
    ) -> Archive:
        _check_name("archiveName", name, 48)
        store = self._store()
        if any(a.name == name for a in store.archives()):
            raise ResourceAlreadyExistsError(f"Archive {name} already exists.")
        if not isinstance(retention_days, int) or retention_days < 0:
            raise BusValidationError("Parameter RetentionDays is not valid. Reason: it must be 0 (forever) or more.")
        archive = Archive(
            name=name,
            arn=self._arn("archive", name),
            bus=self.bus,
            bus_arn=self.bus_arn,
            state="ENABLED",
            event_pattern=_pattern_text(event_pattern),
            retention_days=retention_days,
            description=description,
            created=self._clock.now(),
        )
        store.save_archive(archive)
        self._rebuild()
        return archive

    def update_archive(
        self,
        name: str,
        *,
        event_pattern: Mapping[str, Any] | str | Pattern | None = None,
        retention_days: int | None = None,
        description: str | None = None,
    ) -> Archive:
        current = self.describe_archive(name)
        if retention_days is not None and (not isinstance(retention_days, int) or retention_days < 0):
            raise BusValidationError("Parameter RetentionDays is not valid. Reason: it must be 0 (forever) or more.")
        changed = replace(
            current,
            event_pattern=_pattern_text(event_pattern) if event_pattern is not None else current.event_pattern,
            retention_days=current.retention_days if retention_days is None else retention_days,
            description=current.description if description is None else description,
        )
        self._store().save_archive(changed)
        self._rebuild()
        return changed

    def describe_archive(self, name: str) -> Archive:
        for archive in self._store().archives():
            if archive.name == name:
                return archive
        raise ResourceMissingError(f"Archive {name} does not exist.")

    def list_archives(self, name_prefix: str | None = None, state: str | None = None) -> list[Archive]:
        """This bus's archives (the names of the prefix, in the state)."""
        return [
            a
            for a in self._mine()
            if (name_prefix is None or a.name.startswith(name_prefix)) and (state is None or a.state == state)
        ]

    def delete_archive(self, name: str) -> None:
        archive = self.describe_archive(name)
        if archive.bus != self.bus:
            raise ResourceMissingError(f"Archive {name} does not exist on event bus {self.bus}.")
        self._store().drop_archive(name)
        self._rebuild()

    # -- expiry -------------------------------------------------------------------------------

    async def run_expiry(self) -> None:
        """Forget events past their archive's retention; sleep until the next is due."""
        while True:
            changed = self._archives_changed = anyio.Event()
            store = self._store()
            now = self._clock.now()
            upcoming: datetime | None = None
            for name, days in list(self._retention.items()):
                oldest = await store.expire(name, now - timedelta(days=days))
                if oldest is not None:
                    due = oldest + timedelta(days=days)
                    upcoming = due if upcoming is None or due < upcoming else upcoming
            self._next_expiry = upcoming
            if upcoming is None:
                await changed.wait()
            else:
                await wait_until(self._clock, upcoming, changed)

    # -- replays ------------------------------------------------------------------------------

    async def start_replay(
        self,
        name: str,
        archive: str,
        start_time: datetime,
        end_time: datetime,
        *,
        rules: Sequence[str] | None = None,
        description: str | None = None,
    ) -> Replay:
        """Start replaying ``archive``'s events whose ``time`` is in ``[start_time, end_time]``
        into this bus (only to ``rules``, names or ARNs, when given); returns at once (STARTING)."""
        _check_name("replayName", name, 64)
        store = self._store()
        if any(r.name == name for r in store.replays()):
            raise ResourceAlreadyExistsError(f"Replay {name} already exists.")
        source = self.describe_archive(archive)
        if source.bus != self.bus:
            raise BusValidationError(
                "Parameter Destination.Arn is not valid. Reason: Cross event bus replay is not permitted."
            )
        if end_time <= start_time:
            raise BusValidationError(
                "Parameter EventEndTime is not valid. Reason: EventEndTime must be after EventStartTime."
            )
        known = set(self._rule_names())
        arns = []
        for rule in rules or ():
            rule_name = rule.rsplit("/", 1)[-1]
            if rule_name not in known:
                raise BusValidationError(
                    f"Parameter Destination.FilterArns is not valid. Reason: Rule {rule_name} does not exist "
                    f"on EventBus {self.bus}."
                )
            arns.append(self._rule_arn(rule_name))
        replay = Replay(
            name=name,
            arn=self._arn("replay", name),
            archive=source.name,
            archive_arn=source.arn,
            bus=self.bus,
            destination_arn=self.bus_arn,
            filter_arns=tuple(arns),
            event_start=start_time,
            event_end=end_time,
            state="STARTING",
            description=description,
            total=await store.count(source.name, start_time, end_time),
        )
        store.save_replay(replay)
        self._notify_replays()
        return replay

    def describe_replay(self, name: str) -> Replay:
        for replay in self._store().replays():
            if replay.name == name:
                return replay
        raise ResourceMissingError(f"Replay {name} does not exist.")

    def list_replays(self, name_prefix: str | None = None, state: str | None = None) -> list[Replay]:
        """The replays into this bus (the names of the prefix, in the state)."""
        return [
            r
            for r in self._store().replays()
            if r.bus == self.bus
            and (name_prefix is None or r.name.startswith(name_prefix))
            and (state is None or r.state == state)
        ]

    def cancel_replay(self, name: str) -> Replay:
        replay = self.describe_replay(name)
        if replay.state in _FINAL or replay.state == "CANCELLING":
            raise IllegalStatusError(f"Replay {name} is not in a state that can be cancelled ({replay.state}).")
        cancelling = replace(replay, state="CANCELLING")
        self._store().save_replay(cancelling)
        self._cancelled.add(name)
        scope = self._running.get(name)
        if scope is not None:
            scope.cancel()
        self._notify_replays()
        return cancelling

    async def wait_replay(self, name: str, timeout: float | None = None) -> Replay:
        """Wait until the replay has ended (COMPLETED, CANCELLED or FAILED) and return it;
        ``TimeoutError`` if ``timeout`` passes first."""
        with anyio.fail_after(timeout):
            while not self.describe_replay(name).finished:
                ended = self._ended.setdefault(name, anyio.Event())
                await ended.wait()
        return self.describe_replay(name)

    async def run_replays(self) -> None:
        """Run the replays requested for this bus (here or by another process), resuming the ones
        an earlier process left running; ends when cancelled (the bus stops taking events)."""
        async with anyio.create_task_group() as tg:
            while True:
                changed = self._replays_changed = anyio.Event()
                store = self._store()
                await store.refresh()
                # A store shared by several workers names the one that runs each replay.
                claim: Callable[[Replay], Awaitable[bool]] | None = getattr(store, "claim_replay", None)
                for replay in store.replays():
                    if replay.bus != self.bus:
                        continue
                    if replay.name in self._running:
                        if replay.state == "CANCELLING" and replay.name not in self._cancelled:
                            # Cancelled by another process (eventbus replay cancel).
                            self._cancelled.add(replay.name)
                            self._running[replay.name].cancel()
                        continue
                    if replay.state not in ("CANCELLING", "STARTING", "RUNNING"):
                        continue
                    if claim is not None and not await claim(replay):
                        continue  # another worker runs it (and ends it when cancelled)
                    if replay.state == "CANCELLING":
                        self._finish(replace(replay, state="CANCELLED", ended=self._clock.now()))
                    else:
                        scope = anyio.CancelScope()
                        self._running[replay.name] = scope
                        tg.start_soon(self._replay, replay, scope)
                await changed.wait()

    async def _read_pages(self, replay: Replay, pages: Any) -> None:
        store = self._store()
        cursor = replay.cursor
        async with pages:
            while True:
                page = await store.read(replay.archive, replay.event_start, replay.event_end, cursor, REPLAY_PAGE)
                if not page:
                    return
                await pages.send(page)
                cursor = (time_key(page[-1].time), page[-1].seq)

    def _finish(self, replay: Replay) -> None:
        self._store().save_replay(replay)
        ended = self._ended.pop(replay.name, None)
        if ended is not None:
            ended.set()

    async def _replay(self, replay: Replay, scope: anyio.CancelScope) -> None:
        store = self._store()
        name = replay.name
        only = replay.rules or None
        try:
            with scope:
                replay = replace(replay, state="RUNNING", started=replay.started or self._clock.now())
                store.save_replay(replay)
                # The next page is read while this one is put: the two overlap.
                pages, taken = anyio.create_memory_object_stream[list[ArchivedEvent]](1)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._read_pages, replay, pages)
                    async with taken:
                        async for page in taken:
                            now = self._clock.now()
                            await self._put([_replayed(e, name, now, only) for e in page])
                            last = page[-1]
                            replay = replace(
                                replay,
                                last_replayed=last.time,
                                cursor=(time_key(last.time), last.seq),
                                replayed=replay.replayed + len(page),
                            )
                            store.save_replay(replay)
                self._finish(replace(replay, state="COMPLETED", ended=self._clock.now()))
                return
            # Cancelled: by cancel_replay, or because the bus stops (then it resumes next time).
            if name in self._cancelled:
                self._finish(replace(replay, state="CANCELLED", ended=self._clock.now()))
        except Exception as exc:
            _log.error("replay failed", bus=self.bus, replay=name, error=f"{type(exc).__name__}: {exc}")
            self._finish(
                replace(replay, state="FAILED", state_reason=f"{type(exc).__name__}: {exc}"[:500], ended=self._clock.now())
            )
        finally:
            self._running.pop(name, None)
            self._cancelled.discard(name)


def _replayed(archived: ArchivedEvent, name: str, now: datetime, only: tuple[str, ...] | None) -> LogRecord:
    event = {**archived.event, "replay-name": name}
    text = None
    if archived.text is not None and archived.text.startswith("{") and archived.text != "{}":
        # The stored text with the field added: the log need not encode the event again.
        text = archived.text[:-1] + ',"replay-name":' + json.dumps(name) + "}"
    return LogRecord(event, now, (), None, -1, None, only, text)


class Archives:
    """The archive and replay API over several buses, by name: what an HTTP API sits on.

    ``buses()`` gives the running buses; an archive is found on the bus it belongs to, a replay
    on the bus it replays into. The methods and their answers follow EventBridge's operations
    (CreateArchive, DescribeArchive, ListArchives, UpdateArchive, DeleteArchive, StartReplay,
    DescribeReplay, ListReplays, CancelReplay).
    """

    def __init__(self, buses: Callable[[], Iterable[Any]]) -> None:
        self._buses = buses

    def _bus(self, name: str) -> Any:
        for bus in self._buses():
            if bus.name == name:
                return bus
        raise ResourceMissingError(f"Event bus {name} does not exist.")

    def _keepers(self) -> list[ArchiveKeeper]:
        return [bus.archive_keeper for bus in self._buses() if bus.archive_keeper.store is not None]

    def create_archive(
        self,
        name: str,
        *,
        bus: str,
        event_pattern: Mapping[str, Any] | str | None = None,
        retention_days: int = 0,
        description: str | None = None,
    ) -> Archive:
        if any(a.name == name for a in self.list_archives()):
            raise ResourceAlreadyExistsError(f"Archive {name} already exists.")
        keeper: ArchiveKeeper = self._bus(bus).archive_keeper
        return keeper.create_archive(
            name, event_pattern=event_pattern, retention_days=retention_days, description=description
        )

    def _owner(self, name: str) -> ArchiveKeeper:
        for keeper in self._keepers():
            if any(a.name == name for a in keeper.list_archives()):
                return keeper
        raise ResourceMissingError(f"Archive {name} does not exist.")

    def describe_archive(self, name: str) -> Archive:
        return self._owner(name).describe_archive(name)

    def update_archive(self, name: str, **changes: Any) -> Archive:
        return self._owner(name).update_archive(name, **changes)

    def list_archives(self) -> list[Archive]:
        return sorted((a for k in self._keepers() for a in k.list_archives()), key=lambda a: a.name)

    def delete_archive(self, name: str) -> None:
        self._owner(name).delete_archive(name)

    async def start_replay(
        self,
        name: str,
        *,
        archive: str,
        start: datetime,
        end: datetime,
        destination_bus: str,
        rules: Sequence[str] = (),
        description: str | None = None,
    ) -> Replay:
        if any(r.name == name for r in self.list_replays()):
            raise ResourceAlreadyExistsError(f"Replay {name} already exists.")
        keeper: ArchiveKeeper = self._bus(destination_bus).archive_keeper
        if not any(a.name == archive for a in keeper.list_archives()):
            self.describe_archive(archive)  # ResourceNotFoundException when it does not exist at all
            raise BusValidationError(
                "Parameter Destination.Arn is not valid. Reason: Cross event bus replay is not permitted."
            )
        return await keeper.start_replay(name, archive, start, end, rules=list(rules), description=description)

    def _replay_owner(self, name: str) -> ArchiveKeeper:
        for keeper in self._keepers():
            if any(r.name == name for r in keeper.list_replays()):
                return keeper
        raise ResourceMissingError(f"Replay {name} does not exist.")

    def describe_replay(self, name: str) -> Replay:
        return self._replay_owner(name).describe_replay(name)

    def list_replays(self) -> list[Replay]:
        return sorted((r for k in self._keepers() for r in k.list_replays()), key=lambda r: r.name)

    def cancel_replay(self, name: str) -> Replay:
        return self._replay_owner(name).cancel_replay(name)
