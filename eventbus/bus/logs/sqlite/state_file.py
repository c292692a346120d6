"""``StateFile``: a state file seen from another process (a command line, a console).

The process that serves a bus owns its rows; another process reads the file (archives,
replays), asks for work by writing a request row and nudging the owner (a replay to start or
cancel, dead letters redriven into a bus's inbox), and never touches the owner's rows otherwise.
Writes are short transactions on a connection of its own (SQLite serializes them with the
owner's); when no process serves the bus, what it wrote waits in the file for the next start.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventbus.bus.logs.archives import Archive, Replay
from eventbus.bus.logs.protocol import LogRecord
from eventbus.bus.logs.sqlite import rows
from eventbus.bus.logs.sqlite.archives import read_archives, read_replays, save_replay_row
from eventbus.bus.logs.sqlite.lock import served_elsewhere
from eventbus.bus.logs.sqlite.nudge import nudge
from eventbus.bus.logs.sqlite.store import SCHEMA_VERSION, state_error
from eventbus.errors import (
    BusValidationError,
    IllegalStatusError,
    ResourceAlreadyExistsError,
    ResourceMissingError,
    StateError,
)

__all__ = ["InboxBus", "StateFile", "describe"]


class StateFile:
    """The state file ``path``, from outside the processes that serve its buses."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"StateFile({str(self.path)!r})"

    @contextlib.contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if not self.path.exists():
            raise StateError(f"{self.path} does not exist: no bus has kept its state there yet")
        try:
            mode = "rw" if write else "ro"
            conn = sqlite3.connect(f"file:{self.path}?mode={mode}", uri=True, timeout=10.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise state_error(self.path, exc) from None
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"{self.path} was written by a newer eventbus (state schema {version}; this version reads "
                    f"up to {SCHEMA_VERSION}): upgrade eventbus"
                )
            if version == 0:
                raise StateError(f"{self.path} is not an eventbus state file")
            if write:
                conn.execute("BEGIN IMMEDIATE")
            yield conn
            if write:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise state_error(self.path, exc) from None
        finally:
            conn.close()

    # -- reading ------------------------------------------------------------------------------

    def archives(self) -> list[Archive]:
        with self._connect() as conn:
            return read_archives(conn)

    def archive(self, name: str) -> Archive:
        for archive in self.archives():
            if archive.name == name:
                return archive
        raise ResourceMissingError(f"Archive {name} does not exist.")

    def replays(self) -> list[Replay]:
        with self._connect() as conn:
            return read_replays(conn)

    def replay(self, name: str) -> Replay:
        for replay in self.replays():
            if replay.name == name:
                return replay
        raise ResourceMissingError(f"Replay {name} does not exist.")

    def buses(self) -> list[str]:
        # Other owners of rows (``pipe:NAME``, ``invoke:jobs``) have a colon no bus name has.
        with self._connect() as conn:
            return [r[0] for r in conn.execute("SELECT name FROM buses WHERE name NOT LIKE '%:%' ORDER BY name")]

    def served(self, bus: str) -> bool:
        """Whether a process serves ``bus`` from this file now."""
        with self._connect() as conn:
            row = conn.execute("SELECT id FROM buses WHERE name = ?", (bus,)).fetchone()
        return row is not None and served_elsewhere(self.path, int(row[0]))

    # -- asking the serving process for work --------------------------------------------------

    def start_replay(
        self,
        name: str,
        archive: str,
        start_time: datetime,
        end_time: datetime,
        *,
        rules: Sequence[str] = (),
        description: str | None = None,
    ) -> Replay:
        """Record a replay request (STARTING) for the archive's bus, and nudge the process that
        serves it; it starts there (now, or when the bus next runs)."""
        if end_time <= start_time:
            raise BusValidationError(
                "Parameter EventEndTime is not valid. Reason: EventEndTime must be after EventStartTime."
            )
        source = self.archive(archive)
        prefix = source.arn.rsplit(":archive/", 1)[0]
        region, account = prefix.split(":")[3], prefix.split(":")[4]
        from eventbus.bus.rules import rule_arn

        filter_arns = tuple(rule_arn(region, account, source.bus, r.rsplit("/", 1)[-1]) for r in rules)
        with self._connect(write=True) as conn:
            if conn.execute("SELECT 1 FROM replays WHERE name = ?", (name,)).fetchone():
                raise ResourceAlreadyExistsError(f"Replay {name} already exists.")
            total = conn.execute(
                "SELECT COUNT(*) FROM archive_events WHERE archive = ? AND time BETWEEN ? AND ?",
                (archive, rows.to_us(start_time), rows.to_us(end_time)),
            ).fetchone()[0]
            replay = Replay(
                name=name,
                arn=f"{prefix}:replay/{name}",
                archive=source.name,
                archive_arn=source.arn,
                bus=source.bus,
                destination_arn=source.bus_arn,
                filter_arns=filter_arns,
                event_start=start_time,
                event_end=end_time,
                state="STARTING",
                description=description,
                total=int(total),
            )
            save_replay_row(conn, replay)
        nudge(self.path, source.bus)
        return replay

    def cancel_replay(self, name: str) -> Replay:
        """CANCELLING (the serving process stops it and says CANCELLED), or CANCELLED at once
        when no process serves its bus."""
        replay = self.replay(name)
        if replay.finished or replay.state == "CANCELLING":
            raise IllegalStatusError(f"Replay {name} is not in a state that can be cancelled ({replay.state}).")
        served = self.served(replay.bus)
        changed = replace(replay, state="CANCELLING") if served else replace(replay, state="CANCELLED")
        with self._connect(write=True) as conn:
            state = conn.execute("SELECT state FROM replays WHERE name = ?", (name,)).fetchone()
            if state is None or state[0] in ("COMPLETED", "CANCELLED", "FAILED"):
                raise IllegalStatusError(f"Replay {name} is not in a state that can be cancelled.")
            conn.execute("UPDATE replays SET state = ? WHERE name = ?", (changed.state, name))
        nudge(self.path, replay.bus)
        return changed

    def redeliver(self, bus: str, records: Sequence[LogRecord]) -> None:
        """Put ``records`` in ``bus``'s inbox (committed when this returns) and nudge the process
        serving it: it moves them into its log and routes them (now, or at its next start)."""
        batch = [
            (
                bus,
                rows.encode(r.event),
                rows.to_us(r.ingestion_time),
                rows.encode_chain(r.chain),
                r.target_rule,
                r.target_id,
                rows.encode_names(r.only_rules),
            )
            for r in records
        ]
        with self._connect(write=True) as conn:
            conn.executemany(
                "INSERT INTO inbox (bus, event, ingestion_time, chain, target_rule, target_id, only_rules) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                batch,
            )
        nudge(self.path, bus)


    def bus(self, name: str) -> InboxBus:
        """Bus ``name`` of this file, as a redrive's destination (``redeliver``)."""
        return InboxBus(self, name)


class InboxBus:
    """A bus of a state file seen from outside: what is redelivered goes to its inbox."""

    def __init__(self, state: StateFile, name: str) -> None:
        self.state = state
        self.name = name

    async def redeliver(self, event: Mapping[str, Any], *, rule: str, target: str) -> None:
        import anyio

        record = LogRecord(dict(event), datetime.now(UTC), target_rule=rule, target_id=target)
        await anyio.to_thread.run_sync(self.state.redeliver, self.name, [record])


def describe(value: Archive | Replay) -> dict[str, Any]:
    """An archive or replay as DescribeArchive / DescribeReplay answer it (JSON-ready)."""

    def time(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat().replace("+00:00", "Z")

    if isinstance(value, Archive):
        out: dict[str, Any] = {
            "ArchiveArn": value.arn,
            "ArchiveName": value.name,
            "EventSourceArn": value.bus_arn,
            "Description": value.description,
            "EventPattern": value.event_pattern,
            "State": value.state,
            "StateReason": value.state_reason,
            "RetentionDays": value.retention_days,
            "SizeBytes": value.size_bytes,
            "EventCount": value.event_count,
            "CreationTime": time(value.created),
        }
    else:
        destination: dict[str, Any] = {"Arn": value.destination_arn}
        if value.filter_arns:
            destination["FilterArns"] = list(value.filter_arns)
        out = {
            "ReplayName": value.name,
            "ReplayArn": value.arn,
            "Description": value.description,
            "State": value.state,
            "StateReason": value.state_reason,
            "EventSourceArn": value.archive_arn,
            "Destination": destination,
            "EventStartTime": time(value.event_start),
            "EventEndTime": time(value.event_end),
            "EventLastReplayedTime": time(value.last_replayed),
            "ReplayStartTime": time(value.started),
            "ReplayEndTime": time(value.ended),
            "Replayed": value.replayed,
            "Total": value.total,
        }
    return {k: v for k, v in out.items() if v is not None}

