"""``SqliteJobStore``: jobs in a SQLite file (WAL), so a job outlives the process that took it.

Writes are committed in groups: every write waiting when the writer gets to them runs in one
transaction (each in a savepoint of its own, so one that fails fails alone), and each caller
returns once its write is committed. Eight concurrent ``POST /jobs`` then cost one commit, not
eight. With ``synchronous: NORMAL`` (the default) a commit in WAL mode writes to the WAL without
waiting for the disk (tens of microseconds), so the group is committed on the event loop itself:
handing it to a thread and back costs more than that on an idle machine, and milliseconds on a
busy one, where every thread switch waits for a core. With ``FULL`` each commit waits for the
disk, so the group goes to a worker thread and the event loop goes on meanwhile. ``add`` returns once committed: ``POST /jobs`` answers 202 only for a
job that is on disk. ``claim`` is one ``UPDATE ... RETURNING`` on the oldest PENDING rows of the
route, so a job is handed out once. Reads (``GET /jobs/{id}``) use a second connection on the
event loop itself: a look-up by key in WAL mode never waits for the writer, and costs less than
the trip to a thread.

The file holds the ``jobs`` table and nothing else; a file that is not a database, belongs to
another program, or was written by a newer version is refused with the reason, never misread.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
import anyio.lowlevel

from eventbus.server.invoke.jobs.store import Job, JobStoreError

__all__ = ["SqliteJobStore"]

T = TypeVar("T")

#: The schema this version writes (``PRAGMA user_version``); a higher one is refused.
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    route TEXT NOT NULL,
    status TEXT NOT NULL,
    request TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    attempts INTEGER NOT NULL,
    result TEXT,
    error TEXT,
    reason TEXT,
    version INTEGER NOT NULL,
    cached INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (status, route, seq);
CREATE INDEX IF NOT EXISTS jobs_age ON jobs (status, updated);
"""

_COLUMNS = "id, route, status, request, created, updated, attempts, result, error, reason, version, cached"
_OURS = {"jobs", "sqlite_sequence"}


def _job(row: tuple[object, ...]) -> Job:
    (id_, route, status, request, created, updated, attempts, result, error, reason, version, cached) = row
    return Job(
        id=str(id_),
        route=str(route),
        status=status,  # type: ignore[arg-type]
        request=str(request),
        created=float(created),  # type: ignore[arg-type]
        updated=float(updated),  # type: ignore[arg-type]
        attempts=int(attempts),  # type: ignore[call-overload]
        result=None if result is None else str(result),
        error=None if error is None else str(error),
        reason=None if reason is None else str(reason),
        version=int(version),  # type: ignore[call-overload]
        cached=bool(cached),
    )


def _row(job: Job) -> tuple[object, ...]:
    return (
        job.id,
        job.route,
        job.status,
        job.request,
        job.created,
        job.updated,
        job.attempts,
        job.result,
        job.error,
        job.reason,
        job.version,
        int(job.cached),
    )


@dataclass(eq=False)
class _Write:
    op: Callable[[sqlite3.Connection], Any]
    done: anyio.Event = field(default_factory=anyio.Event)
    result: Any = None
    error: BaseException | None = None


class SqliteJobStore:
    def __init__(self, path: str | Path, *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self._db: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._waiting: list[_Write] = []
        self._writing = False

    def __repr__(self) -> str:
        return f"SqliteJobStore({str(self.path)!r})"

    # -- opening -------------------------------------------------------------------------

    def open_now(self) -> None:
        """Open and check the file from synchronous code (``eventbus serve`` does, before it
        listens, so a bad file is one clear line rather than a server that fails to start)."""
        if self._db is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JobStoreError(f"cannot create the folder of the job store {self.path}: {exc.strerror}") from None
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            raise JobStoreError(f"cannot open the job store {self.path}: {exc}") from None
        try:
            self._check(db)
            reader = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        except sqlite3.Error as exc:
            db.close()
            raise JobStoreError(f"cannot open the job store {self.path}: {exc}") from None
        except BaseException:
            db.close()
            raise
        self._db, self._reader = db, reader

    def _check(self, db: sqlite3.Connection) -> None:
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise JobStoreError(f"cannot use {self.path} as the job store: {exc}") from None
        if version > SCHEMA_VERSION:
            raise JobStoreError(
                f"{self.path} was written by a newer version of eventbus (job store schema {version}; this "
                f"version reads {SCHEMA_VERSION}): upgrade eventbus or point invoke.jobs.path elsewhere"
            )
        others = sorted(tables - _OURS)
        if others:
            raise JobStoreError(
                f"{self.path} is another program's database (tables {', '.join(others)}), not a job store: "
                "point invoke.jobs.path at a file of its own"
            )
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute(f"PRAGMA synchronous = {self.synchronous}")
            db.executescript(SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise JobStoreError(f"cannot write the job store {self.path}: {exc}") from None

    async def open(self) -> None:
        if self._db is None:
            await anyio.to_thread.run_sync(self.open_now)

    async def close(self) -> None:
        db, reader = self._db, self._reader
        self._db = self._reader = None
        if db is not None and reader is not None:
            # After the writes in flight: the thread that runs them closes the connections.
            def close_both() -> None:
                db.close()
                reader.close()

            await anyio.to_thread.run_sync(close_both, limiter=self._get_limiter())

    # -- plumbing ------------------------------------------------------------------------

    def _get_limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        return self._limiter

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` in the next group commit; its result once committed."""
        if self._db is None:
            raise JobStoreError("the job store is closed")
        write = _Write(op)
        self._waiting.append(write)
        if self._writing:
            await write.done.wait()
        else:
            self._writing = True
            try:
                # Shielded: the writes of every waiting caller are in this group.
                with anyio.CancelScope(shield=True):
                    while self._waiting:
                        if self.synchronous == "FULL":
                            group, self._waiting = self._waiting, []
                            await anyio.to_thread.run_sync(self._commit, group, limiter=self._get_limiter())
                        else:
                            # Other tasks' writes of this moment join the group first.
                            await anyio.lowlevel.checkpoint()
                            group, self._waiting = self._waiting, []
                            self._commit(group)
                        for each in group:
                            each.done.set()
            finally:
                self._writing = False
        if write.error is not None:
            raise write.error
        return write.result  # type: ignore[no-any-return]

    def _commit(self, group: list[_Write]) -> None:
        """One transaction for ``group``, each write in a savepoint (in the writer thread)."""
        db = self._db
        if db is None:
            for write in group:
                write.error = JobStoreError("the job store is closed")
            return
        try:
            db.execute("BEGIN IMMEDIATE")
            if len(group) == 1:
                # Alone in its transaction: no savepoint needed to fail alone.
                try:
                    group[0].result = group[0].op(db)
                except sqlite3.Error as exc:
                    db.execute("ROLLBACK")
                    group[0].error = JobStoreError(f"the job store {self.path} failed: {exc}")
                    return
                db.execute("COMMIT")
                return
            for write in group:
                db.execute("SAVEPOINT one")
                try:
                    write.result = write.op(db)
                    db.execute("RELEASE one")
                except sqlite3.Error as exc:
                    db.execute("ROLLBACK TO one")
                    db.execute("RELEASE one")
                    write.error = JobStoreError(f"the job store {self.path} failed: {exc}")
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            failed = JobStoreError(f"the job store {self.path} failed: {exc}")
            for write in group:
                write.result, write.error = None, failed

    def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        if self._reader is None:
            raise JobStoreError("the job store is closed")
        try:
            return op(self._reader)
        except sqlite3.Error as exc:
            raise JobStoreError(f"the job store {self.path} failed: {exc}") from None

    # -- operations ----------------------------------------------------------------------

    async def add(self, job: Job) -> None:
        await self._write(lambda db: db.execute(f"INSERT INTO jobs ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", _row(job)))

    async def claim(self, route: str, now: float, limit: int = 1) -> list[Job]:
        def op(db: sqlite3.Connection) -> list[Job]:
            rows = db.execute(
                f"UPDATE jobs SET status = 'RUNNING', attempts = attempts + 1, updated = ?, version = version + 1 "
                f"WHERE seq IN (SELECT seq FROM jobs WHERE status = 'PENDING' AND route = ? ORDER BY seq LIMIT ?) "
                f"RETURNING seq, {_COLUMNS}",
                (now, route, limit),
            ).fetchall()
            # RETURNING gives rows in no promised order: the oldest first.
            return [_job(r[1:]) for r in sorted(rows, key=lambda r: int(r[0]))]

        return await self._write(op)

    async def finish(self, job: Job) -> None:
        await self._write(
            lambda db: db.execute(
                "UPDATE jobs SET status = ?, updated = ?, result = ?, error = ?, reason = ?, version = ?, "
                "cached = ? WHERE id = ?",
                (job.status, job.updated, job.result, job.error, job.reason, job.version, int(job.cached), job.id),
            )
        )

    async def release(self, jobs: Sequence[Job], now: float) -> None:
        ids = [(now, job.id) for job in jobs]
        if ids:
            await self._write(
                lambda db: db.executemany(
                    "UPDATE jobs SET status = 'PENDING', attempts = attempts - 1, updated = ?, version = version + 1 "
                    "WHERE id = ? AND status = 'RUNNING'",
                    ids,
                )
            )

    async def get(self, job_id: str) -> Job | None:
        row = self._read(lambda db: db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone())
        return None if row is None else _job(row)

    async def recover(self, max_attempts: int, now: float) -> list[Job]:
        def op(db: sqlite3.Connection) -> list[Job]:
            failed = db.execute(
                "UPDATE jobs SET status = 'FAILED', updated = ?, version = version + 1, error = 'Interrupted', "
                "reason = 'The server stopped while the job ran, ' || attempts || ' time(s); it is not run again.' "
                f"WHERE status = 'RUNNING' AND attempts >= ? RETURNING {_COLUMNS}",
                (now, max_attempts),
            ).fetchall()
            again = db.execute(
                f"UPDATE jobs SET status = 'PENDING', updated = ?, version = version + 1 "
                f"WHERE status = 'RUNNING' RETURNING {_COLUMNS}",
                (now,),
            ).fetchall()
            return [_job(r) for r in failed + again]

        return await self._write(op)

    async def purge(self, finished_before: float) -> int:
        def op(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "DELETE FROM jobs WHERE status IN ('SUCCEEDED', 'FAILED') AND updated < ?", (finished_before,)
            )
            return int(cursor.rowcount)

        return await self._write(op)

    async def pending_routes(self) -> set[str]:
        rows = self._read(lambda db: db.execute("SELECT DISTINCT route FROM jobs WHERE status = 'PENDING'").fetchall())
        return {str(r[0]) for r in rows}
