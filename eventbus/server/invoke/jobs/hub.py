"""``JobEvents``: what happens to jobs, as it happens, for the streams that follow them.

States are published from the store's documents (``version`` orders them); chunks (a streaming
function's yields) are published as they come and kept while the job runs, so a stream that
starts mid-job sends the chunks so far first. Chunks are not written to the store: after the job
ends its ``result`` holds the whole answer. A follower that reads too slowly (more than
``MAX_BEHIND`` messages waiting) is told it fell behind and dropped, never slowing the job.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import anyio

from eventbus.server.invoke.jobs.store import Job

__all__ = ["Chunk", "Follower", "JobEvents", "Lagged", "Stopped"]

#: Chunks kept for followers that join mid-job, and messages a follower may have waiting.
MAX_KEPT = 10_000
MAX_BEHIND = 10_000


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    value: Any


class Lagged(Exception):
    """The follower fell more than ``MAX_BEHIND`` messages behind and was dropped."""


class Stopped(Exception):
    """The server is stopping: streams end (the jobs do not; a client reads them after the restart)."""


class Follower:
    """One stream's view of one job: ``await next()`` gives a ``Job`` or a ``Chunk``."""

    def __init__(self, hub: JobEvents, job_id: str) -> None:
        self.hub = hub
        self.job_id = job_id
        self._waiting: deque[Job | Chunk] = deque()
        self._ready = anyio.Event()
        self.lagged = False
        self.stopped = False

    def put(self, message: Job | Chunk) -> None:
        if self.lagged:
            return
        if len(self._waiting) >= MAX_BEHIND:
            self.lagged = True
            self._waiting.clear()
        else:
            self._waiting.append(message)
        self._ready.set()

    def stop(self) -> None:
        self.stopped = True
        self._ready.set()

    async def next(self) -> Job | Chunk:
        while not self._waiting:
            if self.stopped:
                raise Stopped(self.job_id)
            if self.lagged:
                raise Lagged(self.job_id)
            await self._ready.wait()
            self._ready = anyio.Event()
        return self._waiting.popleft()

    def close(self) -> None:
        self.hub.unfollow(self)


class JobEvents:
    def __init__(self) -> None:
        self._followers: dict[str, set[Follower]] = {}
        self._chunks: dict[str, list[Chunk]] = {}
        self.stopping = False

    def follow(self, job_id: str) -> Follower:
        follower = Follower(self, job_id)
        if self.stopping:
            follower.stop()
        self._followers.setdefault(job_id, set()).add(follower)
        return follower

    def unfollow(self, follower: Follower) -> None:
        followers = self._followers.get(follower.job_id)
        if followers is not None:
            followers.discard(follower)
            if not followers:
                del self._followers[follower.job_id]

    def stop_all(self) -> None:
        """End every stream (the server is stopping)."""
        self.stopping = True
        for followers in self._followers.values():
            for follower in followers:
                follower.stop()

    def kept_chunks(self, job_id: str) -> list[Chunk]:
        return list(self._chunks.get(job_id, ()))

    def state(self, job: Job) -> None:
        if job.status == "RUNNING":
            self._chunks[job.id] = []
        elif job.id in self._chunks:
            del self._chunks[job.id]
        for follower in list(self._followers.get(job.id, ())):
            follower.put(job)

    def chunk(self, job_id: str, index: int, value: Any) -> None:
        chunk = Chunk(index, value)
        kept = self._chunks.get(job_id)
        if kept is not None and len(kept) < MAX_KEPT:
            kept.append(chunk)
        for follower in list(self._followers.get(job_id, ())):
            follower.put(chunk)
