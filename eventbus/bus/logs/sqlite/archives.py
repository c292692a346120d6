"""``SqliteArchiveStore``: archives, archived events and replays in the state file.

Descriptions of archives and replays are read when the store opens and kept in memory (a few
rows); each change is written behind, in the next transaction, so describing and listing need
no round trip. Archived events are rows of ``archive_events``, indexed by archive and time for
replays and by archive and ingestion time for expiry; an event archived twice (a restart routes
an event once more) is ignored by its id. Another process changes replays by writing their row
and nudging the process serving the bus (``refresh`` reads them again).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from eventbus.bus.logs.archives import Archive, ArchivedEvent, Replay
from eventbus.bus.logs.sqlite import rows
from eventbus.bus.logs.sqlite.store import Store

__all__ = ["SqliteArchiveStore", "archive_from_row", "read_archives", "read_replays", "replay_from_row", "replay_row"]

_RETURNING = sqlite3.sqlite_version_info >= (3, 35)

_ARCHIVE_COLUMNS = (
    "name, arn, bus, bus_arn, pattern, description, retention_days, state, created, event_count, size_bytes"
)
_REPLAY_COLUMNS = (
    "name, arn, archive, archive_arn, bus, bus_arn, filter_arns, description, start_time, end_time, state, "
    "state_reason, last_replayed, replay_start, replay_end, cursor_time, cursor_id, replayed, total"
)


def archive_from_row(row: Sequence[Any]) -> Archive:
    name, arn, bus, bus_arn, pattern, description, retention, state, created, count, size = row
    return Archive(
        name, arn, bus, bus_arn, state, pattern, int(retention), description, rows.from_us(created), int(count), int(size)
    )


def replay_from_row(row: Sequence[Any]) -> Replay:
    (name, arn, archive, archive_arn, bus, bus_arn, filters, description, start, end, state, reason,
     last, began, ended, cursor_time, cursor_id, replayed, total) = row  # fmt: skip
    return Replay(
        name=name,
        arn=arn,
        archive=archive,
        archive_arn=archive_arn,
        bus=bus,
        destination_arn=bus_arn,
        filter_arns=tuple(json.loads(filters)),
        event_start=rows.from_us(start),
        event_end=rows.from_us(end),
        state=state,
        description=description,
        state_reason=reason,
        last_replayed=None if last is None else rows.from_us(last),
        started=None if began is None else rows.from_us(began),
        ended=None if ended is None else rows.from_us(ended),
        replayed=int(replayed),
        total=total,
        cursor=None if cursor_time is None else (int(cursor_time), int(cursor_id)),
    )


def replay_row(replay: Replay) -> tuple[Any, ...]:
    def us(moment: datetime | None) -> int | None:
        return None if moment is None else rows.to_us(moment)

    cursor = replay.cursor or (None, None)
    return (
        replay.name,
        replay.arn,
        replay.archive,
        replay.archive_arn,
        replay.bus,
        replay.destination_arn,
        json.dumps(list(replay.filter_arns)),
        replay.description,
        rows.to_us(replay.event_start),
        rows.to_us(replay.event_end),
        replay.state,
        replay.state_reason,
        us(replay.last_replayed),
        us(replay.started),
        us(replay.ended),
        cursor[0],
        cursor[1],
        replay.replayed,
        replay.total,
    )


def read_archives(conn: sqlite3.Connection) -> list[Archive]:
    return [archive_from_row(r) for r in conn.execute(f"SELECT {_ARCHIVE_COLUMNS} FROM archives ORDER BY name")]


def read_replays(conn: sqlite3.Connection) -> list[Replay]:
    return [replay_from_row(r) for r in conn.execute(f"SELECT {_REPLAY_COLUMNS} FROM replays ORDER BY name")]


def save_replay_row(conn: sqlite3.Connection, replay: Replay) -> None:
    marks = ", ".join("?" * 19)
    conn.execute(f"INSERT OR REPLACE INTO replays ({_REPLAY_COLUMNS}) VALUES ({marks})", replay_row(replay))


class SqliteArchiveStore:
    """The ``ArchiveStore`` of a state file (``SqliteEventLog.archive_store()`` makes it)."""

    def __init__(self, store: Store, watchable: Any = None) -> None:
        self._store = store
        self._watchable = watchable
        self._archives: dict[str, Archive] = {}
        self._replays: dict[str, Replay] = {}
        self._opened = False

    async def open(self) -> None:
        if self._opened:
            return
        self._opened = True
        found = await self._store.run(lambda conn: (read_archives(conn), read_replays(conn)))
        self._archives = {a.name: a for a in found[0]}
        self._replays = {r.name: r for r in found[1]}

    async def refresh(self) -> None:
        found = await self._store.run(lambda conn: (read_archives(conn), read_replays(conn)))
        # Counts of this process's archives are this process's to keep; the rest comes from the file.
        for archive in found[0]:
            if archive.name not in self._archives:
                self._archives[archive.name] = archive
        for replay in found[1]:
            mine = self._replays.get(replay.name)
            if mine is None or mine.state == "STARTING" or replay.state in ("CANCELLING", "CANCELLED"):
                self._replays[replay.name] = replay

    def archives(self) -> list[Archive]:
        return sorted(self._archives.values(), key=lambda a: a.name)

    def save_archive(self, archive: Archive) -> None:
        self._archives[archive.name] = archive
        row = (
            archive.name,
            archive.arn,
            archive.bus,
            archive.bus_arn,
            archive.event_pattern,
            archive.description,
            archive.retention_days,
            archive.state,
            rows.to_us(archive.created),
        )

        def save(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO archives (name, arn, bus, bus_arn, pattern, description, retention_days, state, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET pattern = excluded.pattern, "
                "description = excluded.description, retention_days = excluded.retention_days, state = excluded.state",
                row,
            )

        self._store.submit(save)

    def drop_archive(self, name: str) -> None:
        self._archives.pop(name, None)

        def drop(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM archive_events WHERE archive = ?", (name,))
            conn.execute("DELETE FROM archives WHERE name = ?", (name,))

        self._store.submit(drop)

    async def add(self, events: Mapping[str, Sequence[tuple[dict[str, Any], datetime, datetime]]]) -> None:
        batches = {
            name: [(name, e["id"], rows.to_us(t), rows.to_us(i), rows.encode(e)) for e, t, i in items]
            for name, items in events.items()
            if items and name in self._archives
        }
        if not batches:
            return

        def insert(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
            added: dict[str, tuple[int, int]] = {}
            for name, batch in batches.items():
                count = size = 0
                for start in range(0, len(batch), 200):
                    chunk = batch[start : start + 200]
                    values = [v for row in chunk for v in row]
                    marks = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
                    sql = (
                        "INSERT OR IGNORE INTO archive_events (archive, event_id, time, ingestion_time, event) "
                        f"VALUES {marks}"
                    )
                    if _RETURNING:
                        sizes = conn.execute(sql + " RETURNING length(event)", values).fetchall()
                        count += len(sizes)
                        size += sum(s for (s,) in sizes)
                    else:  # pragma: no cover - SQLite before 3.35
                        conn.execute(sql, values)
                        count += len(chunk)
                        size += sum(len(row[4]) for row in chunk)
                conn.execute(
                    "UPDATE archives SET event_count = event_count + ?, size_bytes = size_bytes + ? WHERE name = ?",
                    (count, size, name),
                )
                added[name] = (count, size)
            return added

        def counted(added: dict[str, tuple[int, int]]) -> None:
            for name, (count, size) in added.items():
                archive = self._archives.get(name)
                if archive is not None:
                    self._archives[name] = replace(
                        archive, event_count=archive.event_count + count, size_bytes=archive.size_bytes + size
                    )

        await self._store.run(insert, counted)

    async def read(
        self, archive: str, start: datetime, end: datetime, after: tuple[int, int] | None, limit: int
    ) -> list[ArchivedEvent]:
        low, high = rows.to_us(start), rows.to_us(end)
        at_time, at_id = after if after is not None else (low - 1, -1)

        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT event, time, ingestion_time, id FROM archive_events WHERE archive = ? AND time <= ? "
                "AND time >= ? AND (time > ? OR (time = ? AND id > ?)) ORDER BY time, id LIMIT ?",
                (archive, high, low, at_time, at_time, at_id, limit),
            ).fetchall()

        found = await self._store.run(read)
        return [
            ArchivedEvent(rows.event_dict(text), rows.from_us(t), rows.from_us(i), seq, text)
            for text, t, i, seq in found
        ]

    async def count(self, archive: str, start: datetime, end: datetime) -> int:
        low, high = rows.to_us(start), rows.to_us(end)

        def count(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT COUNT(*) FROM archive_events WHERE archive = ? AND time BETWEEN ? AND ?", (archive, low, high)
            ).fetchone()
            return int(row[0])

        return await self._store.run(count)

    async def expire(self, archive: str, before: datetime) -> datetime | None:
        cut = rows.to_us(before)

        def expire(conn: sqlite3.Connection) -> tuple[int, int, int | None]:
            gone = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(length(event)), 0) FROM archive_events "
                "WHERE archive = ? AND ingestion_time <= ?",
                (archive, cut),
            ).fetchone()
            if gone[0]:
                conn.execute("DELETE FROM archive_events WHERE archive = ? AND ingestion_time <= ?", (archive, cut))
                conn.execute(
                    "UPDATE archives SET event_count = MAX(0, event_count - ?), size_bytes = MAX(0, size_bytes - ?) "
                    "WHERE name = ?",
                    (gone[0], gone[1], archive),
                )
            oldest = conn.execute(
                "SELECT MIN(ingestion_time) FROM archive_events WHERE archive = ?", (archive,)
            ).fetchone()[0]
            return int(gone[0]), int(gone[1]), oldest

        def counted(result: tuple[int, int, int | None]) -> None:
            count, size, _ = result
            current = self._archives.get(archive)
            if count and current is not None:
                self._archives[archive] = replace(
                    current,
                    event_count=max(0, current.event_count - count),
                    size_bytes=max(0, current.size_bytes - size),
                )

        _, _, oldest = await self._store.run(expire, counted)
        return None if oldest is None else rows.from_us(oldest)

    def replays(self) -> list[Replay]:
        return sorted(self._replays.values(), key=lambda r: r.name)

    def save_replay(self, replay: Replay) -> None:
        self._replays[replay.name] = replay
        self._store.submit(lambda conn: save_replay_row(conn, replay))

    def watch(self, callback: Callable[[], None]) -> None:
        if self._watchable is not None:
            self._watchable.watch(callback)

    async def close(self) -> None:
        # Written behind: one more transaction makes sure the last changes are in the file.
        await self._store.run(lambda conn: None)
