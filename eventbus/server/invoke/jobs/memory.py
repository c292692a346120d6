"""``MemoryJobStore``: jobs in a dict, gone with the process (tests, demos)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from eventbus.server.invoke.jobs.store import Job

__all__ = ["MemoryJobStore"]


class MemoryJobStore:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        # Each route's PENDING ids in submission order (a released job goes back to the front).
        self._pending: dict[str, deque[str]] = {}

    def __repr__(self) -> str:
        return f"MemoryJobStore({len(self._jobs)} jobs)"

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def add(self, job: Job) -> None:
        self._jobs[job.id] = job
        if job.status == "PENDING":
            self._pending.setdefault(job.route, deque()).append(job.id)

    async def claim(self, route: str, now: float, limit: int = 1) -> list[Job]:
        pending = self._pending.get(route)
        claimed: list[Job] = []
        while pending and len(claimed) < limit:
            job = self._jobs.get(pending.popleft())
            if job is None or job.status != "PENDING":
                continue
            taken = job.moved(status="RUNNING", attempts=job.attempts + 1, updated=now)
            self._jobs[job.id] = taken
            claimed.append(taken)
        return claimed

    async def finish(self, job: Job) -> None:
        self._jobs[job.id] = job

    async def release(self, jobs: Sequence[Job], now: float) -> None:
        for job in reversed(jobs):
            current = self._jobs.get(job.id)
            if current is not None and current.status == "RUNNING":
                self._jobs[job.id] = current.moved(status="PENDING", attempts=current.attempts - 1, updated=now)
                self._pending.setdefault(job.route, deque()).appendleft(job.id)

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
        return {route for route, ids in self._pending.items() if any(self._jobs[i].status == "PENDING" for i in ids)}
