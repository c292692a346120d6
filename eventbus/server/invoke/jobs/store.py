"""Jobs and the ``JobStore`` protocol: where the invocation front keeps them.

A job moves PENDING -> RUNNING -> SUCCEEDED or FAILED. The store is the queue: ``add`` commits a
PENDING job before ``POST /jobs`` answers 202, ``claim`` turns the oldest PENDING job of a route
into RUNNING, ``finish`` records the outcome. A job RUNNING when the process ended is put back by
``recover`` at the next start and run again (at least once), until ``max_attempts`` runs.

Implementations: ``MemoryJobStore`` (gone with the process), ``SqliteJobStore`` (a file of its
own) and ``StateFileJobStore`` (the runtime's SQLite state file, beside the buses' events). A
JetStream store would be a third: a stream of submitted jobs consumed by a durable consumer,
acknowledged once finished, and a key-value bucket of job documents for ``get``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from eventbus.errors import EventBusError

__all__ = ["TERMINAL", "Job", "JobStatus", "JobStore", "JobStoreError"]

JobStatus = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED"]

#: States a job never leaves.
TERMINAL = frozenset({"SUCCEEDED", "FAILED"})


class JobStoreError(EventBusError):
    """The job store cannot be used: a file that is not a database, or another program's."""


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    route: str
    status: JobStatus
    #: The request body as the target gets it.
    request: str
    #: Seconds since the epoch.
    created: float
    updated: float
    attempts: int = 0
    #: The answer as JSON text (SUCCEEDED).
    result: str | None = None
    #: Why it failed (FAILED): a code and a reason, as refusals give them.
    error: str | None = None
    reason: str | None = None
    #: Bumped at each change, so a stream never sends the same state twice.
    version: int = 1
    #: Whether the answer came from the route's cache.
    cached: bool = field(default=False)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def document(self, result: Any = None) -> dict[str, Any]:
        """What ``GET /jobs/{id}`` answers (``result`` already parsed, to save parsing it twice)."""
        doc: dict[str, Any] = {
            "id": self.id,
            "route": self.route,
            "status": self.status,
            "created": _iso(self.created),
            "updated": _iso(self.updated),
            "attempts": self.attempts,
        }
        if self.status == "SUCCEEDED":
            doc["result"] = result
            if self.cached:
                doc["cached"] = True
        elif self.status == "FAILED":
            doc["error"] = self.error
            doc["reason"] = self.reason
        return doc

    def moved(self, **changes: Any) -> Job:
        return replace(self, version=self.version + 1, **changes)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JobStore(Protocol):
    """A durable queue of jobs with their documents. Every method is safe to call from one event
    loop with many tasks at once."""

    async def open(self) -> None:
        """Make the store ready (create the file, check it); ``JobStoreError`` when it cannot be."""
        ...

    async def close(self) -> None: ...

    async def add(self, job: Job) -> None:
        """Keep ``job`` (PENDING, or SUCCEEDED from the cache); durable when this returns."""
        ...

    async def claim(self, route: str, now: float, limit: int = 1) -> list[Job]:
        """Up to ``limit`` of the oldest PENDING jobs of ``route``, oldest first, now RUNNING with
        one more attempt each."""
        ...

    async def finish(self, job: Job) -> None:
        """Record a job's outcome (``job`` is the SUCCEEDED or FAILED document)."""
        ...

    async def release(self, jobs: Sequence[Job], now: float) -> None:
        """Put RUNNING jobs back to PENDING without counting the attempt (a stop drained them)."""
        ...

    async def get(self, job_id: str) -> Job | None: ...

    async def recover(self, max_attempts: int, now: float) -> list[Job]:
        """At start: jobs left RUNNING go back to PENDING, or FAIL once they had ``max_attempts``
        runs. Returns the jobs it changed, as they are now."""
        ...

    async def purge(self, finished_before: float) -> int:
        """Forget jobs that finished before ``finished_before``; how many."""
        ...

    async def pending_routes(self) -> set[str]:
        """Routes that have PENDING jobs (workers start on them first)."""
        ...
