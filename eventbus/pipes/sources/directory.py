"""The directory source: files landing in a folder become S3 "Object Created" events.

The folder plays an S3 bucket (the bucket is the folder's name, the key the file's path relative
to it, with ``/`` separators), so the classic "a file arrives, a function runs" flow works on a
laptop with the same event a function would get from EventBridge. A file is announced once it
is *stable*: its size and modification time unchanged for ``stable_seconds``, so a file still
being written is not picked up half-way. Hidden files (``.name``, the usual temporary names of
editors and downloads) are ignored unless asked for.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus
from pydantic import Field
from watchfiles import Change, awatch
from watchfiles._rust_notify import WatchfilesRustInternalError

from eventbus import json_strict
from eventbus.bus.clock import Clock, Stopwatch
from eventbus.bus.logs.places import Places
from eventbus.errors import ConfigError
from eventbus.pipes.records import SourceRecord, aws_time
from eventbus.pipes.sources.base import DEFAULT_ACCOUNT, DEFAULT_REGION, BufferedSource, SourceConfig

__all__ = [
    "DirectorySource",
    "DirectorySourceConfig",
    "bucket_arn",
    "bucket_name",
    "object_created_event",
    "object_key",
]

_log = structlog.get_logger("eventbus.pipes")

#: How often the watcher wakes, with or without changes, to look at files waiting to settle.
_TICK_MS = 100


@dataclass(slots=True)
class _Seen:
    size: int
    mtime_ns: int
    since: float  # the source's time (its stopwatch) at which this size and mtime were first seen


class DirectorySource(BufferedSource):
    """Watches ``folder`` (recursively) with watchfiles and emits one record a stable file."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        existing: bool = False,
        stable_seconds: float = 0.5,
        include_hidden: bool = False,
        rescan_seconds: float = 2.0,
        capacity: int = 1000,
        region: str = DEFAULT_REGION,
        account: str = DEFAULT_ACCOUNT,
        clock: Clock | None = None,
    ) -> None:
        self.folder = Path(folder).resolve()
        self.bucket = bucket_name(self.folder)
        super().__init__(arn=bucket_arn(self.bucket), capacity=capacity)
        self.existing = existing
        self.stable_seconds = stable_seconds
        self.include_hidden = include_hidden
        self.rescan_seconds = rescan_seconds
        self.region = region
        self.account = account
        self._pending: dict[Path, _Seen] = {}
        # What was last announced for each path, so that a file is announced again only when
        # it is rewritten (S3 sends an event for every PUT), never for a mere touch of a watcher.
        self._announced: dict[Path, tuple[int, int]] = {}
        self._first_open = True
        # How long a file has been still, and when to list the folder again: time.monotonic, or
        # ``clock`` (a ManualClock in tests, so a slow machine never makes a file look settled).
        self._time = Stopwatch(clock)
        # Listings asked for by ``caught_up`` and made: a round lists the folder when asked.
        self._listings_asked = 0
        self._listings_made = 0
        self._round_done: anyio.Event | None = None
        # Saved announcements (``keep_place``): a file counts as announced for a restart once
        # its record is settled; ``_announcing`` maps a record in the pipe to its file.
        self._places: Places | None = None
        self._announcing: dict[str, tuple[Path, int, int]] = {}

    def __repr__(self) -> str:
        return f"DirectorySource({str(self.folder)!r})"

    async def caught_up(self) -> None:
        """Return once the watcher has listed the folder, as a rescan does, in a round begun after
        the call: every file on disk before it has been seen, and every file stable by then is
        announced. Tests wait on this instead of sleeping (events from the file system may come
        late on a busy machine; a listing does not)."""
        self._listings_asked += 1
        ticket = self._listings_asked
        while self._listings_made < ticket:
            if self._round_done is None:
                self._round_done = anyio.Event()
            await self._round_done.wait()

    def keep_place(self, places: Places) -> None:
        """Keep the files announced in ``places``: a new process announces what landed or changed
        while it was down, and nothing whose record was settled before."""
        self._places = places

    async def open(self, task_group: TaskGroup) -> None:
        if not self.folder.is_dir():
            raise ConfigError(f"The folder {str(self.folder)!r} does not exist or is not a directory")
        await super().open(task_group)
        if self._places is not None and self._first_open:
            await self._resume(await self._places.load())
        await task_group.start(self._watch)

    async def _resume(self, saved: dict[str, str]) -> None:
        assert self._places is not None
        if saved.get("started") is None:
            # The very first start: files already there count as announced (unless ``existing``),
            # and are saved as such, so that a restart tells them from newcomers.
            if not self.existing:
                here = await anyio.to_thread.run_sync(self._scan_stats)
                self._announced.update(here)
                await self._places.save({self._key(p): json.dumps(list(s)) for p, s in here.items()})
            await self._places.save({"started": "1"})
        else:
            for key, value in saved.items():
                if key.startswith("file:"):
                    size, mtime = json.loads(value)
                    self._announced[self.folder / key[5:]] = (int(size), int(mtime))
        # Not the first open any more: every file not announced is a candidate.
        self._first_open = False

    def _key(self, path: Path) -> str:
        return "file:" + path.relative_to(self.folder).as_posix()

    async def ack(self, records: Sequence[SourceRecord]) -> None:
        await super().ack(records)
        if self._places is None:
            return
        changes: dict[str, str | None] = {}
        for record in records:
            found = self._announcing.pop(record.record_id, None)
            if found is not None:
                path, size, mtime = found
                changes[self._key(path)] = json.dumps([size, mtime])
        await self._places.save(changes)

    async def _watch(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        if self._first_open and not self.existing:
            # Files already there at the first start count as announced: only newcomers are news.
            # On a restart every file is a candidate, so what landed while stopped is not missed.
            self._announced.update(await anyio.to_thread.run_sync(self._scan_stats))
        self._first_open = False
        started = False
        while True:
            try:
                await self._watch_changes(task_status, started)
                return
            except Exception as exc:
                # The watcher cannot report a name that is not UTF-8 ("Unable to decode path"),
                # and stops. Start it again: its first answer brings a scan, which reads any name.
                if not _undecodable_name(exc):
                    raise
                started = True
                _log.warning("directory watcher restarted", folder=str(self.folder), error=str(exc))

    async def _watch_changes(self, task_status: TaskStatus[None], started: bool) -> None:
        scanned = False
        last_scan = 0.0
        async for changes in awatch(
            self.folder,
            debounce=_TICK_MS,
            step=20,
            rust_timeout=_TICK_MS,
            yield_on_timeout=True,
            recursive=True,
        ):
            now = self._time.now()
            if not scanned:
                # The watcher is live from its first answer on; a scan now catches whatever
                # landed before that (what was already announced is skipped later).
                scanned = True
                last_scan = now
                for path in await anyio.to_thread.run_sync(self._scan):
                    self._note(path, now)
                if not started:
                    task_status.started()
            asked = self._listings_asked
            if asked > self._listings_made or (self.rescan_seconds and now - last_scan >= self.rescan_seconds):
                # A safety net under the events: a busy machine can drop some (inotify queue
                # overflows), and a file that changed without us hearing is caught here.
                last_scan = now
                for path, stat in (await anyio.to_thread.run_sync(self._scan_stats)).items():
                    if path not in self._pending and self._announced.get(path) != stat:
                        self._note(path, now)
            for change, name in changes:
                path = Path(name)
                if change == Change.deleted:
                    self._pending.pop(path, None)
                    self._announced.pop(path, None)
                elif self._wanted(path):
                    self._note(path, now)
            await self._announce_stable(now)
            self._listings_made = asked
            if self._round_done is not None:
                self._round_done.set()
                self._round_done = None

    def _scan_stats(self) -> dict[Path, tuple[int, int]]:
        out: dict[Path, tuple[int, int]] = {}
        for path in self._scan():
            try:
                stat = path.stat()
            except OSError:
                continue
            out[path] = (stat.st_size, stat.st_mtime_ns)
        return out

    def _scan(self) -> list[Path]:
        return [p for p in self.folder.rglob("*") if self._wanted(p) and p.is_file()]

    def _wanted(self, path: Path) -> bool:
        try:
            relative = path.relative_to(self.folder)
        except ValueError:
            return False
        return self.include_hidden or not any(part.startswith(".") for part in relative.parts)

    def _note(self, path: Path, now: float) -> None:
        try:
            stat = path.stat()
        except OSError:
            self._pending.pop(path, None)
            return
        if not path.is_file():
            return
        seen = self._pending.get(path)
        if seen is None or (seen.size, seen.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            self._pending[path] = _Seen(stat.st_size, stat.st_mtime_ns, now)

    async def _announce_stable(self, now: float) -> None:
        for path in list(self._pending):
            seen = self._pending[path]
            try:
                stat = path.stat()
            except OSError:
                del self._pending[path]  # gone before it settled
                continue
            if (stat.st_size, stat.st_mtime_ns) != (seen.size, seen.mtime_ns):
                self._pending[path] = _Seen(stat.st_size, stat.st_mtime_ns, now)
                continue
            if now - seen.since < self.stable_seconds:
                continue
            del self._pending[path]
            if self._announced.get(path) == (seen.size, seen.mtime_ns):
                continue
            try:
                etag = await anyio.to_thread.run_sync(_md5, path)
            except OSError:
                continue
            # Marked announced only once it is in the buffer: a stop while waiting for room
            # leaves the file to be found again by the next start's scan.
            record = self._record(path, seen, etag)
            await self.put(record)
            self._announced[path] = (seen.size, seen.mtime_ns)
            if self._places is not None:
                self._announcing[record.record_id] = (path, seen.size, seen.mtime_ns)

    def _record(self, path: Path, seen: _Seen, etag: str) -> SourceRecord:
        detail = {
            "object": {
                "key": object_key(path.relative_to(self.folder).as_posix()),
                "size": seen.size,
                "etag": etag,
                "sequencer": f"{seen.mtime_ns:016X}",
            },
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": self.account,
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        }
        moment = datetime.fromtimestamp(seen.mtime_ns / 1e9, UTC)
        return object_created_event(
            self.bucket, detail, moment=moment, region=self.region, account=self.account
        )


def _undecodable_name(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):  # raised from the watcher's own task group
        _, rest = exc.split(WatchfilesRustInternalError)
        return rest is None
    return isinstance(exc, WatchfilesRustInternalError)


def bucket_name(folder: str | os.PathLike[str]) -> str:
    """The bucket a folder plays: its name (``root`` for ``/``)."""
    return object_key(Path(folder).resolve().name) or "root"


def object_key(name: str) -> str:
    """A file name as an object key: as it is, unless it is not UTF-8.

    Bytes that are not UTF-8 reach Python as lone surrogates, which no target can write; such a
    name is given URL-encoded (``caf%E9.txt``), as S3 writes keys in its notifications, so the
    event is delivered and ``urllib.parse.unquote_to_bytes`` gives the exact name back.
    """
    if json_strict.is_unicode(name):
        return name
    return quote(os.fsencode(name), safe="/")


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def object_created_event(
    bucket: str,
    detail: Mapping[str, Any],
    *,
    moment: datetime,
    region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
) -> SourceRecord:
    """An S3 "Object Created" event; ``detail`` follows its ``version`` and ``bucket``, and may replace them."""
    event_id = str(uuid.uuid4())
    event: dict[str, Any] = {
        "version": "0",
        "id": event_id,
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": aws_time(moment),
        "region": region,
        "resources": [bucket_arn(bucket)],
        "detail": {"version": "0", "bucket": {"name": bucket}, **detail},
    }
    return SourceRecord(record=event, record_id=event_id, ingestion_time=datetime.now(UTC))


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DirectorySourceConfig(SourceConfig):
    """``path``: the folder to watch; ``existing``: also announce the files already there."""

    kind: ClassVar[str] = "directory"

    path: str = Field(min_length=1)
    existing: bool = False
    stable_seconds: float = Field(default=0.5, ge=0, le=3600)
    include_hidden: bool = False
    #: How often the whole folder is listed again, for changes the watcher missed (0: never).
    rescan_seconds: float = Field(default=2.0, ge=0)
    capacity: int = Field(default=1000, ge=1)

    def build(self) -> DirectorySource:
        return DirectorySource(
            self.path,
            existing=self.existing,
            stable_seconds=self.stable_seconds,
            include_hidden=self.include_hidden,
            rescan_seconds=self.rescan_seconds,
            capacity=self.capacity,
        )
