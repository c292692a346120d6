"""``MemoryJobStore``: jobs in a dict, gone with the process (tests, demos)."""

from __future__ import annotations

from collections.abc import Sequence

from eventbus.server.invoke.jobs.store import Job

__all__ = ["MemoryJobStore"]


class MemoryJobStore:
    def __init__(self) -> None:
        # Insertion order is submission order: claim takes the first PENDING job of a route.
        self._jobs: dict[str, Job] = {}

    def __repr__(self) -> str:
        return f"MemoryJobStore({len(self._jobs)} jobs)"

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def add(self, job: Job) -> None:
        self._jobs[job.id] = job

    async def claim(self, route: str, now: float) -> Job | None:
        for job in self._jobs.values():
            if job.route == route and job.status == "PENDING":
                claimed = job.moved(status="RUNNING", attempts=job.attempts + 1, updated=now)
                self._jobs[job.id] = claimed
                return claimed
        return None

    async def finish(self, job: Job) -> None:
        self._jobs[job.id] = job

    async def release(self, jobs: Sequence[Job], now: float) -> None:
        for job in jobs:
            current = self._jobs.get(job.id)
            if current is not None and current.status == "RUNNING":
                self._jobs[job.id] = current.moved(status="PENDING", attempts=current.attempts - 1, updated=now)

    async def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    async def recover(self, max_attempts: int, now: float) -> list[Job]:
        return []  # nothing outlives the process

    async def purge(self, finished_before: float) -> int:
        old = [j.id for j in self._jobs.values() if j.finished and j.updated < finished_before]
        for job_id in old:
            del self._jobs[job_id]
        return len(old)

    async def pending_routes(self) -> set[str]:
        return {j.route for j in self._jobs.values() if j.status == "PENDING"}
