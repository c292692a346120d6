"""``JobRunner``: takes jobs from the store and runs them, each route up to its ``max_concurrency``.

At start, jobs left RUNNING by a process that ended are put back (``store.recover``): a job is run
at least once, and more than once only when the process stopped while it ran. Each route has
``max_concurrency`` workers; a worker that needs a job claims the oldest PENDING ones for every
worker waiting (one claim, one transaction), or waits for a submission; it then takes a slot of
the route's gate (shared with synchronous requests) and runs the job. Stopping: no more claims,
the running jobs get ``drain_timeout`` seconds to finish, and those still running, or claimed and
not started, are put back to PENDING (their attempt not counted) for the next start.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import anyio

from eventbus._logger import get_logger
from eventbus.bus.clock import Clock
from eventbus.config.invoke import JobStoreSettings
from eventbus.server.invoke.answers import value_json
from eventbus.server.invoke.jobs.hub import JobEvents
from eventbus.server.invoke.jobs.store import Job, JobStore, JobStoreError
from eventbus.server.invoke.refusals import Refusal
from eventbus.server.invoke.routes import InvokeRoute, deadline, failure

__all__ = ["JobRunner"]

_log = get_logger("eventbus.server.invoke")

#: How long a dispatcher waits before trying a store that failed again.
_STORE_RETRY = 1.0

#: Jobs one claim takes at most.
_CLAIM_BATCH = 256

#: Workers a route has at most: jobs of a route with a larger max_concurrency run this many at a
#: time (synchronous requests still get up to max_concurrency).
_MAX_WORKERS = 1000


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        routes: dict[str, InvokeRoute],
        settings: JobStoreSettings,
        clock: Clock,
        hub: JobEvents | None = None,
    ) -> None:
        self.store = store
        self.routes = routes
        self.settings = settings
        self.clock = clock
        self.hub = hub or JobEvents()
        #: Jobs claimed and not finished (RUNNING in the store), started or about to be.
        self._running: dict[str, Job] = {}
        #: Jobs being run now; ``_drained`` is set when a stop waits and none is left.
        self._active = 0
        self._drained: anyio.Event | None = None
        self._feeds: dict[str, _Feed] = {}
        #: Set at stop: workers take no more jobs.
        self._stopping = False
        self.started = False

    def now(self) -> float:
        return self.clock.now().timestamp()

    # -- what the HTTP side calls ------------------------------------------------------------

    async def submit(self, route: InvokeRoute, request: str) -> Job:
        """Keep a PENDING job for ``route`` (durably) and wake its dispatcher."""
        now = self.now()
        job = Job(id=str(uuid.uuid4()), route=route.name, status="PENDING", request=request, created=now, updated=now)
        await self._add(job)
        feed = self._feeds.get(route.name)
        if feed is not None:
            feed.submitted += 1
            if feed.wake is not None:
                feed.wake.set()
                feed.wake = None
        return job

    async def submit_cached(self, route: InvokeRoute, request: str, value: Any) -> Job:
        """A job that is SUCCEEDED at once with ``value``, the route's cached answer."""
        now = self.now()
        job = Job(
            id=str(uuid.uuid4()),
            route=route.name,
            status="SUCCEEDED",
            request=request,
            created=now,
            updated=now,
            result=value_json(value),
            cached=True,
        )
        await self._add(job)
        return job

    async def _add(self, job: Job) -> None:
        try:
            await self.store.add(job)
        except JobStoreError as exc:
            raise Refusal(503, "JobStoreUnavailable", f"The job could not be kept: {exc}", retry_after=1.0) from None

    async def get(self, job_id: str) -> Job | None:
        """The job, or ``None`` when there is none (or it finished longer ago than the retention)."""
        try:
            job = await self.store.get(job_id)
        except JobStoreError as exc:
            raise Refusal(503, "JobStoreUnavailable", f"The job could not be read: {exc}", retry_after=1.0) from None
        if job is not None and job.finished and job.updated < self.now() - self.settings.retention:
            return None
        return job

    # -- lifecycle -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[JobRunner]:
        await self.store.open()
        try:
            now = self.now()
            for job in await self.store.recover(self.settings.max_attempts, now):
                verb = "is run again" if job.status == "PENDING" else "failed"
                _log.warning("a job was running when the server stopped", job=job.id, route=job.route, outcome=verb)
            await self.store.purge(now - self.settings.retention)
            async with anyio.create_task_group() as runs:
                for route in self.routes.values():
                    if route.spec.jobs:
                        feed = self._feeds[route.name] = _Feed()
                        for _ in range(min(route.spec.max_concurrency, _MAX_WORKERS)):
                            runs.start_soon(self._work, route, feed)
                sweeper = anyio.CancelScope()
                runs.start_soon(self._sweep, sweeper)
                self.started = True
                try:
                    yield self
                finally:
                    self.started = False
                    with anyio.CancelScope(shield=True):
                        # No more claims: the workers waiting for a job stop, those running one
                        # get drain_timeout to finish it.
                        self._stopping = True
                        sweeper.cancel()
                        for feed in self._feeds.values():
                            feed.wake_all()
                        if self._active:
                            self._drained = anyio.Event()
                            with anyio.move_on_after(self.settings.drain_timeout):
                                await self._drained.wait()
                        runs.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                left = list(self._running.values())
                if left:
                    _log.warning("jobs not finished at stop are run again at the next start", jobs=len(left))
                    try:
                        await self.store.release(left, self.now())
                    except JobStoreError as exc:
                        _log.error("running jobs could not be put back", error=str(exc))
                self._running.clear()
        finally:
            with anyio.CancelScope(shield=True):
                await self.store.close()

    async def _work(self, route: InvokeRoute, feed: _Feed) -> None:
        """One of a route's ``max_concurrency`` workers: take a job, run it, again. (Long-lived
        workers rather than a task a job: starting a task costs more than running an instant
        function.)"""
        while not self._stopping:
            job = await self._next(route, feed)
            if job is None:
                return  # stopping; a job claimed meanwhile is in _running and is put back
            owner = object()
            await route.gate.enter_job(owner)
            self._active += 1
            try:
                await self._run(route, job)
            finally:
                route.gate.leave(owner)
                self._active -= 1
                if not self._active and self._drained is not None:
                    self._drained.set()

    async def _next(self, route: InvokeRoute, feed: _Feed) -> Job | None:
        """The next job of the route: from what was claimed already, or claimed now for every
        worker that waits (one claim a transaction), or, with none pending, after a submission;
        ``None`` once the runner stops."""
        feed.hungry += 1
        try:
            while not self._stopping:
                if feed.claimed:
                    return feed.claimed.popleft()
                if feed.claiming:
                    if feed.refilled is None:
                        feed.refilled = anyio.Event()
                    await feed.refilled.wait()
                    continue
                feed.claiming = True
                try:
                    while not self._stopping:
                        seen = feed.submitted
                        try:
                            # Shielded: a job claimed in the store is one this process runs or puts back.
                            with anyio.CancelScope(shield=True):
                                jobs = await self.store.claim(route.name, self.now(), min(feed.hungry, _CLAIM_BATCH))
                        except JobStoreError as exc:
                            _log.error("jobs could not be claimed", route=route.name, error=str(exc))
                            await anyio.sleep(_STORE_RETRY)
                            continue
                        if jobs:
                            for job in jobs:
                                self._running[job.id] = job
                            feed.claimed.extend(jobs)
                            break
                        if feed.submitted == seen:
                            # Nothing pending and nothing submitted since the claim began: wait.
                            feed.wake = anyio.Event()
                            await feed.wake.wait()
                finally:
                    feed.claiming = False
                    if feed.refilled is not None:
                        feed.refilled.set()
                        feed.refilled = None
            return None
        finally:
            feed.hungry -= 1

    async def _run(self, route: InvokeRoute, job: Job) -> None:
        self.hub.state(job)
        value: Any = None
        try:
            async with deadline(route.spec.timeout):
                value = await route.collect(job.request, lambda i, c: self.hub.chunk(job.id, i, c))
            done = job.moved(status="SUCCEEDED", result=value_json(value), updated=self.now())
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:
            refusal = failure(exc, route.name, route.spec.timeout)
            done = job.moved(status="FAILED", error=refusal.code, reason=refusal.reason, updated=self.now())
        try:
            await self.store.finish(done)
        except JobStoreError as exc:
            # Still RUNNING in the store: the next start runs it again.
            _log.error("a job's outcome could not be kept", job=job.id, error=str(exc))
            return
        self._running.pop(job.id, None)
        self.hub.state(done)
        if done.status == "SUCCEEDED" and _cacheable(value):
            route.keep(job.request.encode(), value)

    async def _sweep(self, scope: anyio.CancelScope) -> None:
        """Forget finished jobs past the retention, every so often. The pause is wall-clock time
        (the clock only says what is past the retention): a test's clock is stepped from another
        thread, and ``get`` hides expired jobs whether or not they were swept yet."""
        every = max(1.0, min(self.settings.retention / 4, 600.0))
        with scope:
            while True:
                await anyio.sleep(every)
                try:
                    await self.store.purge(self.now() - self.settings.retention)
                except JobStoreError as exc:
                    _log.error("finished jobs could not be purged", error=str(exc))


class _Feed:
    """A route's jobs between the store and its workers. (Events are made only when someone waits:
    making one costs more than the rest of a job's bookkeeping.)"""

    def __init__(self) -> None:
        self.claimed: deque[Job] = deque()
        #: Workers waiting for a job; the one claiming claims for all of them.
        self.hungry = 0
        self.claiming = False
        #: Set when the claiming worker is done: the other hungry workers look again.
        self.refilled: anyio.Event | None = None
        #: Submissions so far, and the event a claimer that found nothing waits on.
        self.submitted = 0
        self.wake: anyio.Event | None = None

    def wake_all(self) -> None:
        for event in (self.wake, self.refilled):
            if event is not None:
                event.set()
        self.wake = self.refilled = None


def _cacheable(value: Any) -> bool:
    """Successful answers only: a proxy answer with an error status is not kept."""
    if isinstance(value, dict) and isinstance(value.get("statusCode"), int):
        return bool(value["statusCode"] < 400)
    return True
