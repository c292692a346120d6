"""``SharedMap``: a map on the JetStream backend, as each worker's runtime runs it.

Every worker running the config makes one. Each takes rows from the map's rows stream and runs
them (``RowWorker``), and campaigns to be the map's reader (``Election``, the lease pipes' readers
use). The one elected starts a run: it writes the map's state (``RUNNING`` and the run's id) to
the ``<prefix>_MAPS`` bucket, and runs a ``Map`` whose dispatcher is a ``JetStreamDispatcher``:
it reads the file, publishes the rows, collects the outcomes, reduces and summarises. When the
map has ended it writes the final state with the summary; every worker sees it and ends with
that summary.

A reading worker that stops or dies mid-way leaves the state ``RUNNING``: the next one elected
(a running worker, or the next ``eventbus run``) starts a new run that resumes from the map's
checkpoint, kept in the same bucket, so the rows read and ended before it are not run again.

Whether a final state is this worker's to end with, or an earlier run's (a config run again
later runs the map again): it is, if the worker saw the run (or any run of the map) under way,
or if it ended after the worker started (wall clocks: keep the workers' clocks in step).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Final

import anyio
import nats.js.errors
from anyio.abc import TaskGroup

from eventbus import json_strict, redact
from eventbus._logger import get_logger
from eventbus.bus.logs.jetstream.connection import JetStreamConnection
from eventbus.bus.logs.jetstream.election import Election
from eventbus.bus.logs.jetstream.layout import bucket, prepare_consumer, prepare_stream
from eventbus.bus.logs.jetstream.publish import Publisher
from eventbus.maps.checkpoint import SavedPosition
from eventbus.maps.config import MapConfig
from eventbus.maps.jetstream.dispatcher import JetStreamDispatcher
from eventbus.maps.jetstream.wire import MapNames
from eventbus.maps.jetstream.worker import RowWorker
from eventbus.maps.map import Map
from eventbus.maps.rows import Position, RowFailure
from eventbus.maps.summary import MapStatus, MapSummary

__all__ = ["KvCheckpoint", "SharedMap"]

_log = get_logger("eventbus.maps")

#: Seconds the reader's lease lasts without renewal (it renews every third of it).
LEASE: Final = 10.0
#: How often a worker looks at the map's state (seconds).
WATCH_INTERVAL: Final = 0.5
_FINAL: Final = ("SUCCEEDED", "FAILED", "ABORTED")


class KvCheckpoint:
    """A map's position in a key-value bucket: a ``MapCheckpoint`` every worker can read."""

    def __init__(self, kv: Any, key: str) -> None:
        self._kv = kv
        self._key = key

    async def load(self, name: str) -> SavedPosition | None:
        try:
            entry = await self._kv.get(self._key)
        except nats.js.errors.KeyNotFoundError:
            return None
        if not entry.value:
            return None
        body = json.loads(entry.value)
        return SavedPosition(Position(*body["p"]), body["s"], body["f"], body["m"])

    async def save(self, name: str, saved: SavedPosition) -> None:
        p = saved.position
        body = {"p": [p.file, p.offset, p.rows], "s": saved.succeeded, "f": saved.failed, "m": saved.malformed}
        try:
            await self._kv.put(self._key, json.dumps(body).encode())
        except Exception as exc:
            # A checkpoint not saved costs rows run again on a resume, never the map.
            _log.warning("map checkpoint not saved", map=name, error=redact.error_text(exc))

    async def clear(self, name: str) -> None:
        try:
            await self._kv.delete(self._key)
        except Exception as exc:
            _log.warning("map checkpoint not cleared", map=name, error=redact.error_text(exc))


def summary_from(body: Mapping[str, Any]) -> MapSummary:
    """A ``MapSummary`` from its ``to_dict``."""
    return MapSummary(
        name=body["name"],
        status=body["status"],
        rows=body["rows"],
        succeeded=body["succeeded"],
        failed=body["failed"],
        aborted=body["aborted"],
        malformed=body["malformed"],
        retried=body["retried"],
        dead_lettered=body["dead_lettered"],
        results_written=body["results_written"],
        duration=body["duration"],
        cause=body.get("cause"),
        failures=tuple(
            RowFailure(f["file"], f["line"], f["error"], f["cause"], f["attempts"]) for f in body.get("failures", ())
        ),
        errors=dict(body.get("errors", {})),
        output=body.get("output"),
    )


class SharedMap:
    """Map ``name`` (``config``, its targets built) run by every worker on ``connection``.

    The same face as ``Map`` to the runtime: ``async with``, ``wait``, ``stop``, ``status``,
    ``summary``, ``metrics``.
    """

    def __init__(self, config: MapConfig, *, name: str, connection: JetStreamConnection) -> None:
        self.config = config
        self.name = name
        self.connection = connection
        # Checks the map as a map in one process would (files, targets), and lends its target.
        self._probe = Map(config, name=name)
        self.names = MapNames(connection.settings.stream, name)
        self.worker = f"{name}-{uuid.uuid4().hex[:12]}"
        self._status: MapStatus = "PENDING"
        self._summary: MapSummary | None = None
        self._stack: AsyncExitStack | None = None
        self._done: anyio.Event | None = None
        self._scope: anyio.CancelScope | None = None
        self._reading: Map | None = None
        self._rows: RowWorker | None = None
        self._started = 0.0
        self._seen_running = False

    def __repr__(self) -> str:
        return f"SharedMap({self.name!r}, status={self._status})"

    @property
    def status(self) -> MapStatus:
        return self._status

    @property
    def summary(self) -> MapSummary | None:
        return self._summary

    @property
    def reading(self) -> bool:
        """Whether this worker reads the file (and collects the outcomes) now."""
        return self._reading is not None

    @property
    def ran(self) -> int:
        """Rows this worker ran."""
        return self._rows.ran if self._rows is not None else 0

    def metrics(self) -> dict[str, Any]:
        """The map's figures if this worker reads it; else the rows this worker ran."""
        if self._reading is not None:
            return {**self._reading.metrics(), "ran_here": self.ran}
        return {"status": self._status, "ran_here": self.ran}

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> MapSummary:
        async with self:
            return await self.wait()

    async def __aenter__(self) -> SharedMap:
        if self._stack is not None or self._status != "PENDING":
            raise RuntimeError(f"{self!r} runs once: make a new one to run it again")
        stack = AsyncExitStack()
        tg: TaskGroup = await stack.enter_async_context(anyio.create_task_group())
        self._stack = stack
        self._done = anyio.Event()
        self._status = "RUNNING"
        self._started = time.time()
        tg.start_soon(self._run)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        stack, self._stack = self._stack, None
        with anyio.CancelScope(shield=True):
            if self._done is not None and not self._done.is_set():
                self._stop()
                await self._done.wait()
        return None if stack is None else await stack.__aexit__(exc_type, exc, tb)

    async def wait(self, timeout: float | None = None) -> MapSummary:
        if self._done is None:
            raise RuntimeError("the map is not running: use 'async with' or 'await ....run()'")
        with anyio.fail_after(timeout):
            await self._done.wait()
        assert self._summary is not None
        return self._summary

    async def stop(self) -> MapSummary:
        """Leave the map: this worker runs no more rows; if it reads, another worker resumes."""
        self._stop()
        return await self.wait()

    def _stop(self) -> None:
        # A map read here is aborted by the cancel (it saves its checkpoint); the state stays
        # RUNNING, so the next worker elected resumes it.
        if self._scope is not None:
            self._scope.cancel()

    # -- the run -----------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._done is not None
        try:
            nc = await self.connection.acquire()
        except Exception as exc:
            self._end(self._local_summary("FAILED", f"the map could not start: {redact.error_text(exc)}"))
            return
        publisher: Publisher | None = None
        try:
            settings = self.connection.settings
            js = self.connection.js
            names = self.names
            await prepare_stream(js, names.rows_stream, [names.rows_subject], settings, role=f"map {self.name} rows")
            await prepare_consumer(js, names.rows_stream, "rows", names.rows_subject, settings)
            await prepare_stream(
                js, names.results_stream, [names.results_subject], settings, role=f"map {self.name} results"
            )
            await prepare_consumer(js, names.results_stream, "results", names.results_subject, settings)
            leases = await bucket(js, names.elections, settings, history=1, ttl=LEASE)
            state = await bucket(js, names.state_bucket, settings, history=1)
            publisher = Publisher(nc, settings)
            await publisher.start()
            self._rows = RowWorker(
                nc,
                publisher,
                names,
                self._probe._invoker(),
                worker=self.worker,
                concurrency=self.config.max_concurrency,
                ack_wait=settings.ack_wait,
                now=self._probe.clock.now,
            )
            election = Election(leases, names.lease_key, LEASE, name=f"map-{self.name}")
            with anyio.CancelScope() as self._scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._rows.run)
                    tg.start_soon(election.run, lambda: self._lead(nc, publisher, state))
                    await self._watch(state)
                    tg.cancel_scope.cancel()
            if self._summary is None:
                self._end(self._local_summary("ABORTED", "this worker stopped before the map ended"))
        except Exception as exc:
            self._end(self._local_summary("FAILED", f"the map stopped: {redact.error_text(exc)}"))
        finally:
            with anyio.CancelScope(shield=True):
                if publisher is not None:
                    await publisher.stop()
                await self._probe._close_targets()
                await self.connection.release()
                self._done.set()

    def _counts(self, body: Mapping[str, Any]) -> bool:
        """Whether final state ``body`` is the end of the run this worker is part of."""
        return self._seen_running or float(body.get("ended", 0)) >= self._started

    async def _read_state(self, kv: Any) -> dict[str, Any] | None:
        try:
            entry = await kv.get(self.names.state_key)
        except nats.js.errors.KeyNotFoundError:
            return None
        if not entry.value:
            return None
        body: dict[str, Any] = json.loads(entry.value)
        return body

    async def _watch(self, kv: Any) -> None:
        """Until the map's run ends (read by this worker or another)."""
        while self._summary is None:
            try:
                body = await self._read_state(kv)
            except Exception as exc:
                _log.warning("map state not read", map=self.name, error=str(exc))
                body = None
            if body is not None:
                if body.get("status") == "RUNNING":
                    self._seen_running = True
                elif body.get("status") in _FINAL and self._counts(body) and self._summary is None:
                    self._end(summary_from(body["summary"]))
                    _log.info("map ended", map=self.name, ran_here=self.ran)
                    return
            await anyio.sleep(WATCH_INTERVAL)

    async def _lead(self, nc: Any, publisher: Publisher, kv: Any) -> None:
        """This worker reads: start a run (or resume the one a reader left), unless it ended."""
        body = await self._read_state(kv)
        if body is not None and body.get("status") in _FINAL and self._counts(body):
            return  # ended: the watch reports it
        js = self.connection.js
        run = uuid.uuid4().hex
        # Rows and outcomes of a run left by a reader that died: the checkpoint says where to
        # resume, and these would only be run, or counted, twice.
        for stream in (self.names.rows_stream, self.names.results_stream):
            await js.purge_stream(stream)
        await kv.put(
            self.names.state_key,
            json.dumps({"status": "RUNNING", "run": run, "reader": self.worker, "started": time.time()}).encode(),
        )
        self._seen_running = True
        dispatcher = JetStreamDispatcher(nc, publisher, self.names, run)
        checkpoint = KvCheckpoint(kv, self.names.checkpoint_key)
        if body is None or body.get("status") != "RUNNING":
            # A new run, not a takeover: a checkpoint left behind is not this run's.
            await checkpoint.clear(self.name)
        reading = Map(self.config, name=self.name, dispatcher=dispatcher, checkpoint=checkpoint)
        self._reading = reading
        _log.info("reading the map's file for every worker", map=self.name, run=run)
        try:
            # Cancelled when this worker stops or loses the lease: nothing below runs then.
            summary = await reading.run()
        finally:
            self._reading = None
        final = {
            "status": summary.status,
            "run": run,
            "reader": self.worker,
            "ended": time.time(),
            "workers": dispatcher.by_worker,
            "duplicates": dispatcher.duplicates,
            "summary": summary.to_dict(),
        }
        await kv.put(self.names.state_key, json_strict.dumps_writable(final).encode())
        with contextlib.suppress(Exception):
            await js.purge_stream(self.names.rows_stream)
        self._end(summary)
        _log.info("map ended", map=self.name, ran_here=self.ran, workers=dispatcher.by_worker)

    def _end(self, summary: MapSummary) -> None:
        if self._summary is None:
            self._summary = summary
            self._status = summary.status
        if self._scope is not None:
            self._scope.cancel()

    def _local_summary(self, status: MapStatus, cause: str) -> MapSummary:
        return MapSummary(
            name=self.name,
            status=status,
            rows=0,
            succeeded=0,
            failed=0,
            aborted=0,
            malformed=0,
            retried=0,
            dead_lettered=0,
            results_written=0,
            duration=max(0.0, time.time() - self._started) if self._started else 0.0,
            cause=cause,
        )

