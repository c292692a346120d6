"""``Pipe``: the running pipe, in Pipes' order: source, filter, enrichment, target.

One poller task takes batches from the source (up to ``batch_size`` records, waiting up to the
batching window to fill one) and starts a task for each, at most ``max_concurrency`` at once.
It reads one batch ahead; while ``max_concurrency`` batches are in progress and one waits, it
reads nothing more, so a slow target slows the source down, and the records in memory never
exceed ``(max_concurrency + 1) * batch_size`` plus what the source itself buffers.

A record stays the source's until its fate is settled: ``ack`` once delivered, filtered out,
skipped by the enrichment or dead-lettered; ``release`` with the backoff delay for a retry, so a
retried record comes back through the whole pipe (filter and enrichment included), and with no
delay when the pipe stops before finishing it. Durable sources therefore lose nothing on a stop.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from eventbus import redact
from eventbus.bus.clock import Clock, SystemClock
from eventbus.bus.logs.places import Places
from eventbus.errors import ConfigError
from eventbus.pipes.batch import CLEANUP_TIMEOUT, COUNTERS, BatchRunner
from eventbus.pipes.config import PipeConfig, PipeState, TargetRef
from eventbus.pipes.records import SourceRecord
from eventbus.pipes.sources.base import Source, SourceConfig
from eventbus.targets.base import Target, TargetConfig

__all__ = ["COUNTERS", "Pipe"]

#: How long one ``receive`` may wait before the poller looks whether it should stop.
POLL_WAIT = 0.25


class Pipe:
    """A pipe built from a ``PipeConfig`` (or the mapping of one).

    Run it inside ``async with pipe:`` (which starts it when its desired state is RUNNING and
    stops it on the way out) or with ``await pipe.run()``; ``start()`` and ``stop()`` move it
    between RUNNING and STOPPED in between. ``rand`` (the backoff's jitter) and ``clock`` (what
    a record's age is measured on) are seams for tests. ``share`` wraps the source when several
    workers run the pipe (a JetStream runtime's ``RelayedSource``); a source that is
    ``shared_by_workers`` already (a JetStream consumer) is read by each directly.
    """

    def __init__(
        self,
        config: PipeConfig | Mapping[str, Any],
        *,
        name: str | None = None,
        rand: Callable[[], float] = random.random,
        clock: Clock | None = None,
        places: Places | None = None,
        share: Callable[[Source], Source] | None = None,
    ) -> None:
        if not isinstance(config, PipeConfig):
            config = PipeConfig.from_mapping(config)
        self.config = config
        self.name = name or config.name or ""
        if not self.name:
            raise ConfigError(
                "A pipe needs a name (PipeConfig.name, or the key that names it in a config file)"
            )
        self.arn = f"arn:aws:pipes:{config.region}:{config.account}:pipe/{self.name}"

        self.source: Source = _build(config.source, SourceConfig)
        #: Where the source keeps its place across restarts (a durable runtime's state file).
        self.places = places
        keep_place = getattr(self.source, "keep_place", None)
        if places is not None and keep_place is not None:
            keep_place(places)
        if share is not None and not getattr(self.source, "shared_by_workers", False):
            # Several workers run this pipe: its records go through what ``share`` makes (a
            # stream that one elected worker fills and every worker reads).
            self.source = share(self.source)
        self.target: Target = _build(config.target, TargetConfig)
        self.enrichment: Target | None = (
            None if config.enrichment is None else _build(config.enrichment, TargetConfig)
        )
        self.dead_letter: Target | None = (
            None if config.dead_letter is None else _build(config.dead_letter, TargetConfig)
        )
        self.source_arn = str(getattr(self.source, "arn", "") or f"{self.arn}/source")
        self.target_arn = self._stage_arn(self.target, config.target, "target")
        self.enrichment_arn = (
            None
            if self.enrichment is None
            else self._stage_arn(self.enrichment, config.enrichment, "enrichment")
        )
        self._runner = BatchRunner(
            name=self.name,
            arn=self.arn,
            config=config,
            source=self.source,
            source_arn=self.source_arn,
            target=self.target,
            target_arn=self.target_arn,
            enrichment=self.enrichment,
            enrichment_arn=self.enrichment_arn,
            dead_letter=self.dead_letter,
            rand=rand,
            clock=clock if clock is not None else SystemClock(),
        )
        self._log = self._runner.log
        self._state: PipeState = "STOPPED"
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        # Per run; made in start() because anyio events need a running event loop.
        self._stop_requested: anyio.Event | None = None
        self._drained: anyio.Event | None = None
        self._finished: anyio.Event | None = None
        self._run_scope: anyio.CancelScope | None = None
        self._busy = 0
        self._slot_freed: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"Pipe({self.name!r}, state={self._state})"

    # -- introspection ---------------------------------------------------------------------

    @property
    def state(self) -> PipeState:
        return self._state

    @property
    def in_flight(self) -> int:
        """Records taken from the source whose fate is not settled yet."""
        return self._runner.in_flight

    def metrics(self) -> dict[str, int]:
        """A copy of the per-stage counters (see ``COUNTERS``)."""
        return dict(self._runner.counters)

    def describe(self) -> dict[str, Any]:
        """The pipe the way DescribePipe shows one (the parts that apply here)."""
        return {
            "Name": self.name,
            "Arn": self.arn,
            "Description": self.config.description,
            "DesiredState": self.config.desired_state,
            "CurrentState": self._state,
            "Source": self.source_arn,
            "Enrichment": self.enrichment_arn,
            "Target": self.target_arn,
            "SourceParameters": {
                "FilterCriteria": {"Filters": [{"Pattern": p.to_json()} for p in self._runner.patterns]},
                "BatchSize": self.config.batch_size,
                "MaximumBatchingWindowInSeconds": self.config.maximum_batching_window_in_seconds,
                "MaximumRetryAttempts": self.config.retry_policy.maximum_retry_attempts,
                "MaximumRecordAgeInSeconds": self.config.retry_policy.maximum_record_age_in_seconds,
            },
            "LogConfiguration": {"Level": self.config.log_level},
        }

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Pipe:
        if self._stack is not None:
            raise RuntimeError(f"{self!r} is already entered")
        stack = AsyncExitStack()
        self._tg = await stack.enter_async_context(anyio.create_task_group())
        self._stack = stack
        if self.config.desired_state == "RUNNING":
            try:
                await self.start()
            except BaseException:
                # Close cleanly, then raise the start failure itself (not a task-group wrapper).
                await self._exit(None, None, None)
                raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return await self._exit(exc_type, exc, tb)

    async def _exit(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        stack, self._stack = self._stack, None
        with anyio.CancelScope(shield=True):
            try:
                await self.stop()
            finally:
                # Like a bus with its rules' targets, the pipe closes its stages' targets, those
                # handed in as objects too (``aclose`` is idempotent, so a shared one is safe).
                for target in (self.target, self.enrichment, self.dead_letter):
                    if target is None:
                        continue
                    try:
                        with anyio.move_on_after(CLEANUP_TIMEOUT):
                            await target.aclose()
                    except Exception as close_exc:
                        self._log.error("target close failed", error=redact.error_text(close_exc))
        self._tg = None
        return None if stack is None else await stack.__aexit__(exc_type, exc, tb)

    async def run(self) -> None:
        """Run until cancelled (Ctrl-C in a command): start, then stop on the way out."""
        async with self:
            await anyio.sleep_forever()

    async def start(self) -> None:
        """STOPPED -> STARTING -> RUNNING; returns once the source is open and polling."""
        if self._tg is None:
            raise RuntimeError(
                "start() needs a running pipe context: use 'async with pipe:' or 'await pipe.run()'"
            )
        if self._state in ("RUNNING", "STARTING"):
            return
        if self._state == "STOPPING" and self._finished is not None:
            await self._finished.wait()
        self._set_state("STARTING")
        self._stop_requested = anyio.Event()
        self._drained = anyio.Event()
        self._finished = anyio.Event()
        try:
            await self._tg.start(self._run)
        except Exception as exc:
            cause = _unwrap(exc)
            self._set_state("START_FAILED")
            self._log.error("start failed", error=redact.error_text(cause))
            if cause is exc:
                raise
            raise cause from None
        self._set_state("RUNNING")

    async def stop(self, timeout: float | None = None) -> None:
        """RUNNING -> STOPPING -> STOPPED.

        The source is read no more; batches in progress get ``timeout`` seconds (default
        ``stop_timeout``) to finish, then are cancelled and their records released to the
        source unacknowledged, so durable sources hand them out again later.
        """
        if self._state in ("STOPPED", "START_FAILED") or self._finished is None:
            return
        if self._state == "STOPPING":
            await self._finished.wait()
            return
        self._set_state("STOPPING")
        assert self._stop_requested is not None and self._drained is not None
        self._stop_requested.set()
        if self._slot_freed is not None:
            self._slot_freed.set()
        with anyio.move_on_after(self.config.stop_timeout if timeout is None else timeout):
            await self._drained.wait()
        if not self._drained.is_set() and self._run_scope is not None:
            self._log.info("stop timeout: cancelling batches in progress", in_flight=self.in_flight)
            self._run_scope.cancel()
        await self._finished.wait()
        self._set_state("STOPPED")

    async def wait_finished(self, timeout: float) -> None:
        """Wait until a finite source (a file) is read to its end and every record settled.

        ``TimeoutError`` after ``timeout`` seconds; ``TypeError`` for a source that never ends
        (a queue, a stream, a folder: wait for ``wait_idle`` instead).
        """
        if not hasattr(self.source, "finished"):
            raise TypeError(
                f"{type(self.source).__name__} never finishes, so wait_finished has nothing to wait for; "
                "use await pipe.wait_idle(timeout) to wait until no record is in flight and the source is empty"
            )
        with anyio.fail_after(timeout):
            while not (getattr(self.source, "finished", False) and self.in_flight == 0):
                await anyio.sleep(0.02)

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no record is in flight and the source holds none (none waiting, none
        waiting to retry); ``False`` if ``timeout`` seconds passed first.

        Idle is a moment, not an end: a queue may get new messages right after. ``TypeError`` for
        a source that cannot count what it holds (one without ``backlog()``).
        """
        backlog = getattr(self.source, "backlog", None)
        if backlog is None:
            raise TypeError(
                f"{type(self.source).__name__} cannot say what it holds, so wait_idle cannot tell when "
                "the pipe is idle; a source offers it with async def backlog(self) -> int"
            )
        with anyio.move_on_after(timeout):
            while True:
                if self.in_flight == 0 and await backlog() == 0 and self.in_flight == 0:
                    return True
                await anyio.sleep(0.01)
        return False

    def _set_state(self, state: PipeState) -> None:
        self._state = state
        self._log.info("state", state=state)

    # -- the run: poller and workers -------------------------------------------------------

    async def _run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        assert self._drained is not None and self._finished is not None
        opened = False
        try:
            with anyio.CancelScope() as scope:
                self._run_scope = scope
                async with anyio.create_task_group() as outer:
                    await self.source.open(outer)
                    opened = True
                    task_status.started()
                    async with anyio.create_task_group() as batches:
                        await self._poll(batches)
                    self._drained.set()
                    # The source's own background tasks (a folder watcher) end with the run.
                    outer.cancel_scope.cancel()
        finally:
            self._run_scope = None
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT):
                try:
                    await self.source.close()
                except Exception as exc:
                    if opened:
                        self._log.error("source close failed", error=redact.error_text(exc))
                if self.places is not None:
                    try:
                        await self.places.close()
                    except Exception as exc:
                        self._log.error("closing the source's place failed", error=redact.error_text(exc))
            self._drained.set()
            self._finished.set()

    async def _poll(self, batches: TaskGroup) -> None:
        assert self._stop_requested is not None
        stop = self._stop_requested
        # One batch read ahead, so reading the next overlaps delivering the current one.
        ahead: list[SourceRecord] | None = None
        try:
            while not stop.is_set():
                if ahead is None:
                    try:
                        batch = await self._collect(stop)
                    except Exception as exc:
                        self._log.error("source receive failed", error=redact.error_text(exc))
                        with anyio.move_on_after(1.0):
                            await stop.wait()
                        continue
                    if not batch:
                        continue
                    self._runner.took(batch)
                    ahead = batch
                if self._busy >= self.config.max_concurrency:
                    self._slot_freed = anyio.Event()
                    await self._slot_freed.wait()
                    continue
                self._busy += 1
                batches.start_soon(self._process, ahead)
                ahead = None
        finally:
            if ahead is not None:
                # Stopping with a batch read ahead: back to the source, untouched.
                with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT):
                    await self._runner.release_untouched(ahead)

    async def _collect(self, stop: anyio.Event) -> list[SourceRecord]:
        size = self.config.batch_size
        window = self.config.maximum_batching_window_in_seconds
        records = await self.source.receive(size, POLL_WAIT)
        if not records or window <= 0:
            return records
        deadline = anyio.current_time() + window
        while len(records) < size and not stop.is_set():
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                break
            records.extend(await self.source.receive(size - len(records), min(remaining, POLL_WAIT)))
        return records

    async def _process(self, batch: list[SourceRecord]) -> None:
        try:
            await self._runner.process(batch)
        finally:
            self._busy -= 1
            if self._slot_freed is not None:
                self._slot_freed.set()

    def _stage_arn(self, built: object, spec: object, stage: str) -> str:
        """A target's own ``arn`` if it has one; else one made up from its kind and the pipe."""
        arn = getattr(built, "arn", None)
        if isinstance(arn, str) and arn:
            return arn
        kind = getattr(type(spec), "kind", "")
        if not kind:
            return f"{self.arn}/{stage}"
        return f"arn:eventbus:{kind}:{self.config.region}:{self.config.account}:{self.name}-{stage}"


def _unwrap(exc: Exception) -> Exception:
    """The one error inside task-group wrappers (a source that failed to open)."""
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _build(spec: Any, config_type: type[SourceConfig] | type[TargetConfig]) -> Any:
    if isinstance(spec, TargetRef):
        raise ConfigError(
            f"{{ref: {spec.ref}}} names a target of a config file's targets: section, which only a "
            "config file's runtime can resolve; from Python, pass the target (or its config) itself"
        )
    if isinstance(spec, config_type):
        return spec.build()
    return spec
