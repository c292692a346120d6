"""``JobRunner``: takes jobs from the store and runs them, each route up to its ``max_concurrency``.

At start, jobs left RUNNING by a process that ended are put back (``store.recover``): a job is run
at least once, and more than once only when the process stopped while it ran. One dispatcher a
route waits for a free slot, claims the oldest PENDING job and runs it; a submission wakes it.
Stopping: no more claims, the running jobs get ``drain_timeout`` seconds to finish, and those
still running are put back to PENDING (their attempt not counted) for the next start.
"""

from __future__ import annotations

import contextlib
import uuid
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
from eventbus.server.invoke.routes import InvokeRoute, failure

__all__ = ["JobRunner"]

_log = get_logger("eventbus.server.invoke")

#: How long a dispatcher waits before trying a store that failed again.
_STORE_RETRY = 1.0


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
        self._wake: dict[str, anyio.Event] = {}
        self._running: dict[str, Job] = {}
        self._idle: anyio.Event | None = None
        self._runs: anyio.abc.TaskGroup | None = None
        self.started = False

    def now(self) -> float:
        return self.clock.now().timestamp()

    # -- what the HTTP side calls ------------------------------------------------------------

    async def submit(self, route: InvokeRoute, request: str) -> Job:
        """Keep a PENDING job for ``route`` (durably) and wake its dispatcher."""
        now = self.now()
        job = Job(id=str(uuid.uuid4()), route=route.name, status="PENDING", request=request, created=now, updated=now)
        await self._add(job)
        wake = self._wake.get(route.name)
        if wake is not None:
            wake.set()
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
            self._idle = anyio.Event()
            self._idle.set()
            async with anyio.create_task_group() as runs:
                self._runs = runs
                async with anyio.create_task_group() as control:
                    for route in self.routes.values():
                        if route.spec.jobs:
                            self._wake[route.name] = anyio.Event()
                            control.start_soon(self._dispatch, route)
                    control.start_soon(self._sweep)
                    self.started = True
                    try:
                        yield self
                    finally:
                        self.started = False
                        control.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    if self._running:
                        with anyio.move_on_after(self.settings.drain_timeout):
                            await self._idle.wait()
                    runs.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                left = list(self._running.values())
                if left:
                    _log.warning("jobs still running at stop are run again at the next start", jobs=len(left))
                    try:
                        await self.store.release(left, self.now())
                    except JobStoreError as exc:
                        _log.error("running jobs could not be put back", error=str(exc))
                self._running.clear()
        finally:
            with anyio.CancelScope(shield=True):
                await self.store.close()

    async def _dispatch(self, route: InvokeRoute) -> None:
        assert self._runs is not None
        while True:
            owner = object()
            await route.gate.enter_job(owner)
            wake = self._wake[route.name] = anyio.Event()
            try:
                # Shielded: a job claimed in the store is a job this process runs (or puts back).
                with anyio.CancelScope(shield=True):
                    job = await self.store.claim(route.name, self.now())
            except JobStoreError as exc:
                route.gate.leave(owner)
                _log.error("jobs could not be claimed", route=route.name, error=str(exc))
                await anyio.sleep(_STORE_RETRY)
                continue
            if job is None:
                route.gate.leave(owner)
                await wake.wait()
                continue
            self._running[job.id] = job
            assert self._idle is not None
            self._idle = anyio.Event()
            self._runs.start_soon(self._run, route, job, owner)

    async def _run(self, route: InvokeRoute, job: Job, owner: object) -> None:
        try:
            self.hub.state(job)
            value: Any = None
            try:
                with anyio.fail_after(route.spec.timeout):
                    value = await route.collect(job.request, lambda i, c: self.hub.chunk(job.id, i, c))
                done = job.moved(status="SUCCEEDED", result=value_json(value), updated=self.now())
            except anyio.get_cancelled_exc_class():
                raise
            except Exception as exc:
                refusal = failure(exc, route.name, route.spec.timeout)
                done = job.moved(status="FAILED", error=refusal.code, reason=refusal.reason, updated=self.now())
            with anyio.CancelScope(shield=True):
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
        finally:
            route.gate.leave(owner)
            if not self._running and self._idle is not None:
                self._idle.set()

    async def _sweep(self) -> None:
        """Forget finished jobs past the retention, every so often. The pause is wall-clock time
        (the clock only says what is past the retention): a test's clock is stepped from another
        thread, and ``get`` hides expired jobs whether or not they were swept yet."""
        every = max(1.0, min(self.settings.retention / 4, 600.0))
        while True:
            await anyio.sleep(every)
            try:
                await self.store.purge(self.now() - self.settings.retention)
            except JobStoreError as exc:
                _log.error("finished jobs could not be purged", error=str(exc))


def _cacheable(value: Any) -> bool:
    """Successful answers only: a proxy answer with an error status is not kept."""
    if isinstance(value, dict) and isinstance(value.get("statusCode"), int):
        return bool(value["statusCode"] < 400)
    return True
