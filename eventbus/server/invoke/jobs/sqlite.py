"""``SqliteJobStore``: jobs in a SQLite file (WAL), so a job outlives the process that took it.

One connection, used by one worker thread at a time (an anyio limiter of one), so the event loop
never waits on the disk. ``add`` commits before it returns: ``POST /jobs`` answers 202 only for a
job that is on disk. ``claim`` is one ``UPDATE ... RETURNING`` on the oldest PENDING row of the
route, so a job is handed out once.

The file holds the ``jobs`` table and nothing else; a file that is not a database, belongs to
another program, or was written by a newer version is refused with the reason, never misread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, TypeVar

import anyio

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


class SqliteJobStore:
    def __init__(self, path: str | Path, *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self._db: sqlite3.Connection | None = None
        self._limiter: anyio.CapacityLimiter | None = None

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
        except BaseException:
            db.close()
            raise
        self._db = db

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
        db, self._db = self._db, None
        if db is not None:
            await self._run(db.close, db)

    # -- operations ----------------------------------------------------------------------

    async def _run(self, op: Callable[[], T], db: sqlite3.Connection | None = None) -> T:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        if db is None and self._db is None:
            raise JobStoreError("the job store is closed")

        def call() -> T:
            try:
                return op()
            except sqlite3.Error as exc:
                raise JobStoreError(f"the job store {self.path} failed: {exc}") from None

        return await anyio.to_thread.run_sync(call, limiter=self._limiter)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise JobStoreError("the job store is closed")
        return self._db

    async def add(self, job: Job) -> None:
        await self._run(
            lambda: self.db.execute(f"INSERT INTO jobs ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", _row(job))
        )

    async def claim(self, route: str, now: float) -> Job | None:
        def op() -> Job | None:
            row = self.db.execute(
                f"UPDATE jobs SET status = 'RUNNING', attempts = attempts + 1, updated = ?, version = version + 1 "
                f"WHERE seq = (SELECT seq FROM jobs WHERE status = 'PENDING' AND route = ? ORDER BY seq LIMIT 1) "
                f"RETURNING {_COLUMNS}",
                (now, route),
            ).fetchone()
            return None if row is None else _job(row)

        return await self._run(op)

    async def finish(self, job: Job) -> None:
        await self._run(
            lambda: self.db.execute(
                "UPDATE jobs SET status = ?, updated = ?, result = ?, error = ?, reason = ?, version = ?, "
                "cached = ? WHERE id = ?",
                (job.status, job.updated, job.result, job.error, job.reason, job.version, int(job.cached), job.id),
            )
        )

    async def release(self, jobs: Sequence[Job], now: float) -> None:
        ids = [(now, job.id) for job in jobs]

        def op() -> None:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "UPDATE jobs SET status = 'PENDING', attempts = attempts - 1, updated = ?, version = version + 1 "
                    "WHERE id = ? AND status = 'RUNNING'",
                    ids,
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

        if ids:
            await self._run(op)

    async def get(self, job_id: str) -> Job | None:
        def op() -> Job | None:
            row = self.db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return None if row is None else _job(row)

        return await self._run(op)

    async def recover(self, max_attempts: int, now: float) -> list[Job]:
        def op() -> list[Job]:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
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
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return [_job(r) for r in failed + again]

        return await self._run(op)

    async def purge(self, finished_before: float) -> int:
        def op() -> int:
            cursor = self.db.execute(
                "DELETE FROM jobs WHERE status IN ('SUCCEEDED', 'FAILED') AND updated < ?", (finished_before,)
            )
            return int(cursor.rowcount)

        return await self._run(op)

    async def pending_routes(self) -> set[str]:
        def op() -> set[str]:
            return {str(r[0]) for r in self.db.execute("SELECT DISTINCT route FROM jobs WHERE status = 'PENDING'")}

        return await self._run(op)
