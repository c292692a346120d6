"""``JetStreamArchiveStore``: archives as JetStream streams, their descriptions and replays in a
key-value bucket every worker follows.

One stream per archive (``<prefix>_ARCHIVE_<name>``), not one shared stream with a subject per
archive: an archive's retention is the stream's ``max_age`` (JetStream forgets for us, 0 keeps
for ever), deleting an archive deletes its stream, and one archive's size never slows another's
reads. An event is stored as received (its JSON text as the body) with its id as
``Nats-Msg-Id`` (an event routed twice within the duplicate window is stored once) and its
ingestion time and ``time`` in headers.

A replay's window is on the event's own ``time``, which the sender sets and may be far from the
time the event was stored, so JetStream's start-time delivery (on the store time) cannot find
it. Instead the subject carries the hour of the event's ``time``
(``<prefix>.archive.<name>.<hour>``): a replay asks the stream which hours of its window hold
events (stream info with a subject filter), reads each hour with an ordered consumer filtered on
it, and hands the hour's events out sorted by ``(time, sequence)``: time order with one hour in
memory at a time.

The descriptions of archives and replays are entries of the deployment's ``<prefix>_ARCHIVES``
bucket (``archive.<name>``, ``replay.<name>``), followed live by every worker, so listing and
describing answer from memory. Changes are written behind, in order, with a revision check:
an archive's counts belong to the workers adding to it (each adds what it stored, read from the
entry it updates), a replay's cancellation made by one worker is never overwritten by the
progress another writes. A replay is run by the one worker that claims it (``claim_replay``:
the entry names its runner, set with a revision check); the others only describe it. A runner
renews its entry in ``<prefix>_REPLAY_RUNNERS`` (entries expire after ``runner_ttl``) while it
runs replays; when a runner's entry is gone (it died, or stopped), another worker claims its
replays and goes on from the progress last written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import nats.js.errors
from nats.js.api import DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from eventbus._logger import get_logger
from eventbus.bus.logs.archives import Archive, ArchivedEvent, Replay, time_key
from eventbus.bus.logs.jetstream.connection import JetStreamConnection
from eventbus.bus.logs.jetstream.layout import bucket
from eventbus.bus.logs.jetstream.names import _bounded, token, untoken
from eventbus.bus.logs.jetstream.settings import JetStreamSettings
from eventbus.errors import BackendError

__all__ = ["JetStreamArchiveStore"]

_log = get_logger("eventbus.jetstream")

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_HOUR_US = 3_600_000_000
_DAY_S = 86_400.0
#: Seconds to wait for the next message of an hour being read before calling it read.
_READ_WAIT = 5.0
_DELETED = ("DEL", "PURGE")
_CAS_TRIES = 50
#: Seconds a replay's runner is taken for alive after it last said so (it says so every third).
RUNNER_TTL = 15.0


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _archive_doc(archive: Archive) -> dict[str, Any]:
    doc = asdict(archive)
    doc["created"] = archive.created.isoformat()
    return doc


def _archive(doc: Mapping[str, Any]) -> Archive:
    return Archive(**{**doc, "created": datetime.fromisoformat(doc["created"])})


def _replay_doc(replay: Replay, runner: str | None) -> dict[str, Any]:
    doc = asdict(replay)
    for key in ("event_start", "event_end", "last_replayed", "started", "ended"):
        moment = getattr(replay, key)
        doc[key] = None if moment is None else moment.isoformat()
    doc["filter_arns"] = list(replay.filter_arns)
    doc["cursor"] = None if replay.cursor is None else list(replay.cursor)
    doc["runner"] = runner
    return doc


def _replay(doc: Mapping[str, Any]) -> tuple[Replay, str | None]:
    fields = dict(doc)
    runner = fields.pop("runner", None)
    for key in ("event_start", "event_end", "last_replayed", "started", "ended"):
        fields[key] = _dt(fields.get(key))
    fields["filter_arns"] = tuple(fields.get("filter_arns") or ())
    cursor = fields.get("cursor")
    fields["cursor"] = None if cursor is None else (int(cursor[0]), int(cursor[1]))
    return Replay(**fields), runner


class JetStreamArchiveStore:
    """The ``ArchiveStore`` of a JetStream deployment (``JetStreamEventLog.archive_store()``
    makes it; see the module's docstring)."""

    def __init__(
        self,
        connection: JetStreamConnection,
        settings: JetStreamSettings | None = None,
        *,
        runner_ttl: float = RUNNER_TTL,
    ) -> None:
        self.connection = connection
        #: Seconds a replay's runner stays alive in the runners bucket after its last renewal.
        self.runner_ttl = runner_ttl
        self._live: Any = None
        self.settings = settings or connection.settings
        self.prefix = self.settings.stream
        #: Who this process is in a replay's ``runner``.
        self.me = uuid.uuid4().hex[:16]
        self._kv: Any = None
        self._archives: dict[str, Archive] = {}
        self._replays: dict[str, Replay] = {}
        self._runners: dict[str, str | None] = {}
        #: Per key: writes queued and not done (the bucket's older entries are not applied meanwhile).
        self._writing: dict[str, int] = {}
        #: Per key: the newest revision this process wrote or applied.
        self._revisions: dict[str, int] = {}
        self._writes: list[Callable[[], Awaitable[None]]] = []
        self._wrote: anyio.Event | None = None
        self._idle: anyio.Event | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._watcher: Any = None
        self._opened = False
        self._closed = False
        #: The hour last read by a replay: ``(stream, hour, messages in it)`` and its events.
        self._hour: tuple[tuple[str, int, int], list[ArchivedEvent]] | None = None

    # -- names ----------------------------------------------------------------------------------

    def stream(self, archive: str) -> str:
        return _bounded(f"{self.prefix}_ARCHIVE_{token(archive)}")

    def subject(self, archive: str) -> str:
        return f"{self.prefix}.archive.{token(archive)}"

    @property
    def bucket_name(self) -> str:
        return f"{self.prefix}_ARCHIVES"

    @property
    def runners_bucket(self) -> str:
        return f"{self.prefix}_REPLAY_RUNNERS"

    # -- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._opened:
            return
        self._opened = True
        await self.connection.acquire()
        self._wrote = anyio.Event()
        self._kv = await bucket(self.connection.js, self.bucket_name, self.settings, history=1)
        self._live = await bucket(
            self.connection.js, self.runners_bucket, self.settings, history=1, ttl=self.runner_ttl
        )
        ready = anyio.Event()
        self._tasks.append(asyncio.create_task(self._keep_alive()))
        self._tasks.append(asyncio.create_task(self._follow(ready)))
        self._tasks.append(asyncio.create_task(self._write_behind()))
        with anyio.fail_after(30):
            await ready.wait()

    async def close(self) -> None:
        if self._closed or not self._opened:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(10):
                await self._flush()
            watcher, self._watcher = self._watcher, None
            if watcher is not None:
                try:
                    await watcher.stop()
                except Exception as exc:
                    _log.debug("archive bucket watcher not stopped", error=str(exc))
            for task in self._tasks:
                task.cancel()
            if self._live is not None:
                # Stopping: another worker may take this one's replays over at once.
                with contextlib.suppress(Exception), anyio.move_on_after(2):
                    await self._live.delete(self.me)
            for task in self._tasks:
                try:
                    await task
                except BaseException as exc:
                    if not isinstance(exc, asyncio.CancelledError):
                        _log.debug("archive store task ended", error=str(exc))
            await self.connection.release()

    # -- following the bucket -------------------------------------------------------------------

    async def _follow(self, ready: anyio.Event) -> None:
        while not self._closed:
            try:
                self._watcher = watcher = await self._kv.watchall()
                async for entry in watcher:
                    if entry is None:
                        ready.set()
                        continue
                    self._apply(entry)
            except Exception as exc:
                if self._closed:
                    return
                _log.warning("following the archives bucket failed; following again", error=str(exc))
                await anyio.sleep(1.0)

    def _apply(self, entry: Any) -> None:
        key: str = entry.key
        if self._writing.get(key):
            return  # this process's own newer value is on its way
        kind, _, tok = key.partition(".")
        name = untoken(tok)
        gone = entry.operation in _DELETED or not entry.value
        revision = int(entry.revision or 0)
        if revision <= self._revisions.get(key, 0):
            return  # older than what this process wrote or saw
        self._revisions[key] = revision
        if kind == "archive":
            if gone:
                self._archives.pop(name, None)
            else:
                try:
                    archive = _archive(json.loads(entry.value))
                except (ValueError, TypeError, KeyError):
                    _log.error("unreadable archive in the archives bucket; ignored", archive=name)
                    return
                before = self._archives.get(name)
                self._archives[name] = archive
                if before is not None and replace(before, event_count=0, size_bytes=0) == replace(
                    archive, event_count=0, size_bytes=0
                ):
                    return  # only its counts moved (another worker archived): nothing to follow
        elif kind == "replay":
            if gone:
                self._replays.pop(name, None)
                self._runners.pop(name, None)
            else:
                try:
                    replay, runner = _replay(json.loads(entry.value))
                except (ValueError, TypeError, KeyError):
                    _log.error("unreadable replay in the archives bucket; ignored", replay=name)
                    return
                self._replays[name], self._runners[name] = replay, runner
        for callback in self._callbacks:
            callback()

    # -- writing behind, in order ---------------------------------------------------------------

    def _submit(self, key: str, write: Callable[[], Awaitable[None]]) -> None:
        self._writing[key] = self._writing.get(key, 0) + 1

        async def run() -> None:
            try:
                await write()
            finally:
                left = self._writing.get(key, 1) - 1
                if left:
                    self._writing[key] = left
                else:
                    self._writing.pop(key, None)

        self._writes.append(run)
        if self._wrote is not None:
            self._wrote.set()

    async def _write_behind(self) -> None:
        while True:
            assert self._wrote is not None
            await self._wrote.wait()
            self._wrote = anyio.Event()
            while self._writes:
                write = self._writes[0]
                try:
                    await write()
                except Exception as exc:
                    _log.error("archive change not written to the archives bucket", error=str(exc))
                self._writes.pop(0)
            if self._idle is not None:
                self._idle.set()
                self._idle = None

    async def _flush(self) -> None:
        """Wait until every change submitted so far is written."""
        while self._writes:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    async def _cas(
        self, key: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Write ``change(current)`` to ``key`` with a revision check, again on a conflict;
        ``None`` from ``change`` deletes (or leaves absent)."""
        for _ in range(_CAS_TRIES):
            try:
                entry = await self._kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                entry = None
            current = None
            revision = 0
            if entry is not None:
                revision = int(entry.revision)
                if entry.value and entry.operation not in _DELETED:
                    current = json.loads(entry.value)
            wanted = change(current)
            try:
                if wanted is None:
                    if current is not None:
                        await self._kv.delete(key, last=revision)
                    return None
                value = _encode(wanted).encode()
                if entry is None:
                    written = await self._kv.create(key, value)
                else:
                    written = await self._kv.update(key, value, last=revision)
                self._revisions[key] = max(self._revisions.get(key, 0), int(written))
                return wanted
            except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.BadRequestError):
                await anyio.sleep(0.01)
        raise BackendError(f"archives bucket entry {key} kept changing; not written")

    # -- archives -------------------------------------------------------------------------------

    def archives(self) -> list[Archive]:
        return sorted(self._archives.values(), key=lambda a: a.name)

    def save_archive(self, archive: Archive) -> None:
        self._archives[archive.name] = archive
        key = f"archive.{token(archive.name)}"

        async def write() -> None:
            await self._prepare_stream(archive)

            def change(current: dict[str, Any] | None) -> dict[str, Any]:
                doc = _archive_doc(archive)
                if current is not None:  # the counts are the adders'
                    doc["event_count"], doc["size_bytes"] = current["event_count"], current["size_bytes"]
                    doc["created"] = current["created"]
                return doc

            await self._cas(key, change)

        self._submit(key, write)

    async def _prepare_stream(self, archive: Archive) -> None:
        js = self.connection.js
        name = self.stream(archive.name)
        max_age = archive.retention_days * _DAY_S
        config = StreamConfig(
            name=name,
            subjects=[self.subject(archive.name) + ".>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=self.settings.replicas,
            duplicate_window=min(self.settings.duplicate_window, max_age)
            if max_age
            else self.settings.duplicate_window,
            max_age=max_age,
            discard=DiscardPolicy.OLD,
            max_msgs=-1,
            max_bytes=-1,
        )
        try:
            info = await js.stream_info(name)
        except nats.js.errors.NotFoundError:
            info = None
        try:
            if info is None:
                await js.add_stream(config)
            elif abs((info.config.max_age or 0) - max_age) > 1e-3:
                await js.update_stream(info.config.evolve(max_age=max_age))
        except nats.js.errors.APIError as exc:
            raise BackendError(
                f"JetStream refused stream {name} of archive {archive.name}: {exc.description or exc}"
            ) from None

    def drop_archive(self, name: str) -> None:
        self._archives.pop(name, None)
        key = f"archive.{token(name)}"

        async def write() -> None:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self.connection.js.delete_stream(self.stream(name))
            await self._cas(key, lambda current: None)

        self._submit(key, write)

    async def _count(self, name: str, count: int, size: int) -> None:
        def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None:
                return None
            current["event_count"] = max(0, int(current["event_count"]) + count)
            current["size_bytes"] = max(0, int(current["size_bytes"]) + size)
            return current

        key = f"archive.{token(name)}"
        self._writing[key] = self._writing.get(key, 0) + 1
        try:
            written = await self._cas(key, change)
        finally:
            left = self._writing.get(key, 1) - 1
            if left:
                self._writing[key] = left
            else:
                self._writing.pop(key, None)
        archive = self._archives.get(name)
        if archive is not None and written is not None:
            # The counts as written (every worker's additions), the rest as this process has it.
            self._archives[name] = replace(
                archive, event_count=int(written["event_count"]), size_bytes=int(written["size_bytes"])
            )

    # -- events ---------------------------------------------------------------------------------

    async def add(self, events: Mapping[str, Sequence[tuple[dict[str, Any], datetime, datetime]]]) -> None:
        wanted = {name: items for name, items in events.items() if items and name in self._archives}
        if not wanted:
            return
        await self._flush()  # an archive made a moment ago has its stream
        js = self.connection.js
        for name, items in wanted.items():
            subject = self.subject(name)
            bodies = [_encode(event).encode() for event, _, _ in items]

            async def publish(
                item: tuple[dict[str, Any], datetime, datetime], body: bytes, subject: str
            ) -> Any:
                event, when, ingested = item
                moment = time_key(when)
                headers = {
                    "Nats-Msg-Id": str(event.get("id")),
                    "Eventbus-Time": str(moment),
                    "Eventbus-Ingested": ingested.isoformat(),
                }
                return await js.publish(f"{subject}.{moment // _HOUR_US}", body, headers=headers)

            acks = await asyncio.gather(
                *(publish(item, body, subject) for item, body in zip(items, bodies, strict=True))
            )
            count = size = 0
            for ack, body in zip(acks, bodies, strict=True):
                if not ack.duplicate:
                    count += 1
                    size += len(body)
            if count:
                await self._count(name, count, size)

    async def _hours(self, archive: str) -> dict[int, int]:
        """The hours of ``archive`` that hold events, and how many each holds."""
        try:
            info = await self.connection.js.stream_info(
                self.stream(archive), subjects_filter=self.subject(archive) + ".>"
            )
        except nats.js.errors.NotFoundError:
            return {}
        out: dict[int, int] = {}
        for subject, count in (info.state.subjects or {}).items():
            try:
                out[int(subject.rsplit(".", 1)[1])] = int(count)
            except ValueError:
                continue
        return out

    async def _scan(self, subject: str, stream: str, count: int | None) -> list[tuple[Any, int]]:
        """The messages on ``subject`` (``count`` of them when known: the read stops there),
        with their stream sequences, through an ordered consumer."""
        js = self.connection.js
        out: list[tuple[Any, int]] = []
        if count is None:
            try:
                info = await js.stream_info(stream)
            except nats.js.errors.NotFoundError:
                return out
            last = int(info.state.last_seq or 0)
            if not info.state.messages:
                return out
        sub = await js.subscribe(
            subject, stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        try:
            while count is None or len(out) < count:
                try:
                    msg = await sub.next_msg(timeout=_READ_WAIT)
                except (TimeoutError, nats.errors.TimeoutError):
                    break  # fewer than counted: some expired meanwhile
                seq = int(msg.metadata.sequence.stream)
                out.append((msg, seq))
                if count is None and seq >= last:
                    break
        finally:
            try:
                await sub.unsubscribe()
            except Exception as exc:
                _log.debug("archive read not unsubscribed", error=str(exc))
        return out

    async def _read_hour(self, archive: str, hour: int, count: int) -> list[ArchivedEvent]:
        stream = self.stream(archive)
        key = (stream, hour, count)
        if self._hour is not None and self._hour[0] == key:
            return self._hour[1]
        found = []
        for msg, seq in await self._scan(f"{self.subject(archive)}.{hour}", stream, count):
            headers = msg.headers or {}
            try:
                text = msg.data.decode()
                moment = int(headers["Eventbus-Time"])
                found.append(
                    ArchivedEvent(
                        json.loads(text),
                        _from_us(moment),
                        datetime.fromisoformat(headers["Eventbus-Ingested"]),
                        seq,
                        text,
                    )
                )
            except (KeyError, ValueError, UnicodeDecodeError) as exc:
                _log.error("unreadable archived event; skipped", archive=archive, seq=seq, error=str(exc))
        found.sort(key=lambda e: (time_key(e.time), e.seq))
        self._hour = (key, found)
        return found

    async def read(
        self, archive: str, start: datetime, end: datetime, after: tuple[int, int] | None, limit: int
    ) -> list[ArchivedEvent]:
        await self._flush()
        low, high = time_key(start), time_key(end)
        position = max((low, -1), after) if after is not None else (low, -1)
        hours = await self._hours(archive)
        out: list[ArchivedEvent] = []
        for hour in sorted(h for h in hours if position[0] // _HOUR_US <= h <= high // _HOUR_US):
            for event in await self._read_hour(archive, hour, hours[hour]):
                moment = time_key(event.time)
                if moment > high:
                    break
                if (moment, event.seq) <= position or moment < low:
                    continue
                out.append(event)
                if len(out) >= limit:
                    return out
        return out

    async def count(self, archive: str, start: datetime, end: datetime) -> int:
        await self._flush()
        low, high = time_key(start), time_key(end)
        hours = await self._hours(archive)
        total = 0
        for hour, n in hours.items():
            if low // _HOUR_US < hour < high // _HOUR_US:
                total += n  # wholly inside the window
            elif low // _HOUR_US <= hour <= high // _HOUR_US:
                total += sum(
                    1 for e in await self._read_hour(archive, hour, n) if low <= time_key(e.time) <= high
                )
        return total

    async def expire(self, archive: str, before: datetime) -> datetime | None:
        """Forget the events stored at or before ``before``: read from the stream's start while
        they are that old (the stream holds them in the order they were stored) and purge them.
        JetStream's ``max_age`` forgets them on its own too; this keeps the counts."""
        await self._flush()
        stream = self.stream(archive)
        gone = size = 0
        first_kept: tuple[int, datetime] | None = None
        for msg, seq in await self._scan(self.subject(archive) + ".>", stream, None):
            try:
                ingested = datetime.fromisoformat((msg.headers or {})["Eventbus-Ingested"])
            except (KeyError, ValueError):
                ingested = before  # unreadable: forgotten with the old ones
            if ingested > before:
                first_kept = (seq, ingested)
                break
            gone += 1
            size += len(msg.data)
        if gone:
            # Another worker may be expiring the same events: the server says how many this
            # purge removed, and only those are taken off the counts.
            request: dict[str, Any] = {} if first_kept is None else {"seq": first_kept[0]}
            reply = await self.connection.nc.request(
                f"$JS.API.STREAM.PURGE.{stream}",
                _encode(request).encode(),
                timeout=self.settings.publish_timeout,
            )
            purged = int(json.loads(reply.data).get("purged") or 0)
            self._hour = None
            if purged:
                await self._count(archive, -purged, -(size * min(purged, gone) // gone))
        return None if first_kept is None else first_kept[1]

    # -- replays --------------------------------------------------------------------------------

    def replays(self) -> list[Replay]:
        return sorted(self._replays.values(), key=lambda r: r.name)

    def save_replay(self, replay: Replay) -> None:
        self._replays[replay.name] = replay
        key = f"replay.{token(replay.name)}"

        async def write() -> None:
            def change(current: dict[str, Any] | None) -> dict[str, Any]:
                runner = self._runners.get(replay.name)
                mine = replay
                if current is not None:
                    theirs, runner = _replay(current)
                    if (
                        theirs.state in ("CANCELLING", "CANCELLED")
                        and not mine.finished
                        and mine.state != "CANCELLING"
                    ):
                        # Cancelled by another worker meanwhile: the progress is kept, the
                        # cancellation too (the runner stops when it hears of it).
                        mine = replace(mine, state=theirs.state)
                        self._replays[replay.name] = mine
                        for callback in self._callbacks:
                            callback()
                return _replay_doc(mine, runner)

            await self._cas(key, change)

        self._submit(key, write)

    async def claim_replay(self, replay: Replay) -> bool:
        """Whether this process runs (or ends) ``replay``: nobody runs it yet and this process is
        the first to say so (a revision check), or this process already does; or its runner died.
        ``False`` too when the bucket cannot answer (the next change or check asks again)."""
        try:
            return await self._claim(replay)
        except Exception as exc:
            _log.warning("replay not claimed: the archives bucket did not answer", replay=replay.name, error=str(exc))
            return False

    async def _claim(self, replay: Replay) -> bool:
        await self._flush()
        key = f"replay.{token(replay.name)}"
        try:
            entry = await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return False
        if not entry.value or entry.operation in _DELETED:
            return False
        current, runner = _replay(json.loads(entry.value))
        if runner == self.me:
            return True
        if current.finished or (runner is not None and await self._alive(runner)):
            return False
        # Nobody runs it, or its runner died (its entry in the runners bucket expired): this
        # process takes it on, from where the progress last written says it was.
        await self._live.put(self.me, b"1")
        try:
            written = await self._kv.update(
                key, _encode(_replay_doc(current, self.me)).encode(), last=int(entry.revision)
            )
            self._revisions[key] = max(self._revisions.get(key, 0), int(written))
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.BadRequestError):
            return False
        self._runners[replay.name] = self.me
        return True

    async def _alive(self, runner: str) -> bool:
        try:
            entry = await self._live.get(runner)
        except nats.js.errors.KeyNotFoundError:
            return False
        return bool(entry.value) and entry.operation not in _DELETED

    async def _keep_alive(self) -> None:
        """Renew this process's runner entry while it runs replays; look for replays whose runner
        died, and wake the replay runner (``watch``) so that it claims them."""
        while True:
            await anyio.sleep(self.runner_ttl / 3)
            try:
                unfinished = [r.name for r in self._replays.values() if not r.finished]
                runners = {self._runners.get(name) for name in unfinished}
                if self.me in runners:
                    await self._live.put(self.me, b"1")
                orphaned = False
                for runner in runners - {self.me, None}:
                    if runner is not None and not await self._alive(runner):
                        orphaned = True
                if orphaned:
                    for callback in self._callbacks:
                        callback()
            except Exception as exc:
                _log.debug("replay runners not checked", error=str(exc))

    def watch(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    async def refresh(self) -> None:
        await self._flush()


def _from_us(moment: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=moment)
