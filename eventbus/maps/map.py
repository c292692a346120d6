"""``Map``: a distributed map run: every row of a file through a target, results reduced.

One task reads the file a chunk at a time (in a worker thread) into the ``RowFeed``; the
dispatcher's workers take rows from it and run the target, up to ``max_concurrency`` at once;
each row ends succeeded (its result goes to the reduce) or failed. A failed attempt is weighed
by the project's one retry decision (``decide``): a retry waits in the feed on the map's clock,
holding no worker; a row whose retries ran out (or whose error is not retryable, or that could
not be read at all) fails for good: it is counted, listed with its file and line, given to the
reduce as a failed result and to the dead-letter target with AWS's attributes. A failed row
never stops the map, unless a tolerated-failure threshold is set and crossed: then the map fails,
the rows still running are abandoned (``aborted``), and the summary says why.

Reading runs at most ``high_water`` rows ahead of the workers, and pauses while the reduce
target falls behind, so memory stays flat however big the file.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TextIO

import anyio
from anyio.abc import TaskGroup

from eventbus import json_strict, redact
from eventbus._logger import get_logger
from eventbus.bus.clock import Clock, SystemClock
from eventbus.bus.delivery.dead_letter import dead_letter_context
from eventbus.bus.delivery.retry import Condition, GiveUp, decide, error_code, error_message
from eventbus.errors import ConfigError, NonRetryableError
from eventbus.maps.checkpoint import MapCheckpoint, SavedPosition
from eventbus.maps.config import MapConfig
from eventbus.maps.dispatch import Invoke, LocalDispatcher, RowDispatcher
from eventbus.maps.feed import RowFeed
from eventbus.maps.progress import MapProgress
from eventbus.maps.reader import ReadAhead, RowReader
from eventbus.maps.results import CollectingReduce, Reduce, ReduceFailed, StreamingReduce
from eventbus.maps.rows import MalformedRowError, Position, Row, RowFailure
from eventbus.maps.summary import MapCounts, MapStatus, MapSummary
from eventbus.pipes.config import TargetRef
from eventbus.pipes.sources.files import progress_default
from eventbus.targets.base import DeliveryContext, Target, TargetConfig

__all__ = ["Map", "ResultNotJsonError"]

_log = get_logger("eventbus.maps")

#: Rows read per trip to the reader's thread, at least: a trip takes an event loop iteration or
#: two to come back, and with thousands of rows running an iteration takes tens of milliseconds,
#: so a map reads as many rows a trip as it runs at once (up to ``MAX_CHUNK``).
CHUNK: Final = 1000
MAX_CHUNK: Final = 10_000
#: How often the progress display is updated, and a checkpoint saved (seconds).
PROGRESS_INTERVAL: Final = 0.25
CHECKPOINT_INTERVAL: Final = 5.0
#: How long closing the targets may take when the map ends.
CLOSE_TIMEOUT: Final = 10.0

_LEVELS: Final = {"OFF": 0, "ERROR": 1, "INFO": 2, "TRACE": 3}


class ResultNotJsonError(NonRetryableError):
    """The target answered something that is not JSON (a set, ``NaN``...): the result cannot be
    written, and running the row again would answer the same."""

    error_code = "RESULT_NOT_JSON"


class Map:
    """A map built from a ``MapConfig`` (or the mapping of one).

    ``summary = await Map(config).run()`` runs it to the end. Or ``async with Map(config) as
    run:`` starts it in the background, ``await run.wait()`` waits for the summary, ``run.metrics()``
    shows how far it is, ``await run.stop()`` aborts it; leaving the block aborts a map still
    running. ``clock`` (retry delays and row ages), ``rand`` (the backoff's jitter),
    ``dispatcher`` (where rows run) and ``checkpoint`` (resuming) are seams.
    """

    def __init__(
        self,
        config: MapConfig | Mapping[str, Any],
        *,
        name: str | None = None,
        clock: Clock | None = None,
        rand: Callable[[], float] = random.random,
        dispatcher: RowDispatcher | None = None,
        checkpoint: MapCheckpoint | None = None,
        progress_stream: TextIO | None = None,
    ) -> None:
        if not isinstance(config, MapConfig):
            config = MapConfig.from_mapping(config)
        self.config = config
        self.name = name or config.name or ""
        if not self.name:
            raise ConfigError("A map needs a name (MapConfig.name, or the key that names it in a config file)")
        self.arn = f"arn:aws:states:{config.region}:{config.account}:mapRun:{self.name}"
        source = config.source.file
        self.paths = [Path(p).resolve() for p in source.paths]
        for path in self.paths:
            if not path.is_file():
                raise ConfigError(f"The file {str(path)!r} does not exist or is not a file")
        self.files = [p.name for p in self.paths]
        # Checked now (an unknown extension fails here, not when the map starts).
        RowReader(self.paths, format=source.format)

        self.target: Target = _build(config.target, "target")
        self.reduce_target: Target | None = None if config.reduce is None else _build(config.reduce, "reduce")
        self.dead_letter: Target | None = None if config.dead_letter is None else _build(config.dead_letter, "dead_letter")
        self.target_arn = _stage_arn(self.target, config.target, self, "target")
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._rand = rand
        self._rules = config.retry_policy.rules(config.backoff)
        self.dispatcher: RowDispatcher = dispatcher if dispatcher is not None else LocalDispatcher()
        self.checkpoint = checkpoint
        self.progress = progress_default.get() if config.progress is None else config.progress
        self._progress_stream = progress_stream
        self._level = _LEVELS[config.log_level]

        self.counts = MapCounts()
        self._chunk = max(CHUNK, min(MAX_CHUNK, config.max_concurrency))
        self.feed = RowFeed(self.clock, high_water=2 * self._chunk)
        self._reader: RowReader | None = None
        self._reduce: Reduce | None = None
        self._status: MapStatus = "PENDING"
        self._cause: str | None = None
        self._summary: MapSummary | None = None
        self._started = 0.0
        self._ended = 0.0
        self._stack: AsyncExitStack | None = None
        self._done: anyio.Event | None = None
        self._work: anyio.CancelScope | None = None
        self._stopping = False
        # The resume seam: the rows ended past the position, by their place in the map.
        self._track = checkpoint is not None
        self._next_seq = 0
        self._ahead: dict[int, tuple[int, int, bool, bool]] = {}
        self._saved = SavedPosition(Position(), 0, 0)

    def __repr__(self) -> str:
        return f"Map({self.name!r}, status={self._status})"

    # -- introspection -----------------------------------------------------------------------

    @property
    def status(self) -> MapStatus:
        """``PENDING``, ``RUNNING``, then ``SUCCEEDED``, ``FAILED`` or ``ABORTED``."""
        return self._status

    @property
    def summary(self) -> MapSummary | None:
        """The summary, once the map has ended."""
        return self._summary

    def metrics(self) -> dict[str, Any]:
        """How far the map is: rows read, ended, running, waiting, retrying; bytes read."""
        counts = self.counts
        reader = self._reader
        waiting = len(self.feed.ready)
        retrying = self.feed.retrying
        return {
            "status": self._status,
            "rows": counts.rows,
            "succeeded": counts.succeeded,
            "failed": counts.failed,
            "malformed": counts.malformed,
            "retried": counts.retried,
            "dead_lettered": counts.dead_lettered,
            "running": max(0, self.feed.outstanding - waiting - retrying),
            "waiting": waiting,
            "retrying": retrying,
            "results_written": self._reduce.written if self._reduce is not None else 0,
            "bytes_read": reader.consumed if reader is not None else 0,
            "bytes_total": reader.size if reader is not None else 0,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> MapSummary:
        """Run the map to its end and return its summary."""
        async with self:
            return await self.wait()

    async def __aenter__(self) -> Map:
        if self._stack is not None or self._status != "PENDING":
            raise RuntimeError(f"{self!r} runs once: make a new Map to run it again")
        stack = AsyncExitStack()
        tg: TaskGroup = await stack.enter_async_context(anyio.create_task_group())
        self._stack = stack
        self._done = anyio.Event()
        self._status = "RUNNING"
        self._started = time.monotonic()
        tg.start_soon(self._run)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        stack, self._stack = self._stack, None
        with anyio.CancelScope(shield=True):
            if self._done is not None and not self._done.is_set():
                self._abort("ABORTED", "stopped before the file was read to its end")
                await self._done.wait()
        return None if stack is None else await stack.__aexit__(exc_type, exc, tb)

    async def wait(self, timeout: float | None = None) -> MapSummary:
        """The summary, once the map has ended; ``TimeoutError`` after ``timeout`` seconds."""
        if self._done is None:
            raise RuntimeError("the map is not running: use 'async with Map(...)' or 'await Map(...).run()'")
        with anyio.fail_after(timeout):
            await self._done.wait()
        assert self._summary is not None
        return self._summary

    async def stop(self) -> MapSummary:
        """Abort the map: read no more rows, abandon those running; the summary (``ABORTED``)."""
        self._abort("ABORTED", "stopped")
        return await self.wait()

    def _abort(self, status: MapStatus, cause: str) -> None:
        if self._stopping or self._status != "RUNNING":
            return
        self._stopping = True
        self._status = status
        self._cause = cause
        self.feed.close()
        if self._work is not None:
            self._work.cancel()

    # -- the run -----------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._done is not None
        output: Any = None
        try:
            start = await self._resume_point()
            source = self.config.source.file
            self._reader = RowReader(
                self.paths,
                format=source.format,
                delimiter=source.delimiter,
                encoding=source.encoding,
                header=source.header,
                max_items=source.max_items,
                start=start,
            )
            self._reduce = self._make_reduce()
            self._info("started", files=self.files, max_concurrency=self.config.max_concurrency)
            async with anyio.create_task_group() as background:
                background.start_soon(self._read)
                background.start_soon(self.feed.pump_retries)
                if self._reduce is not None:
                    background.start_soon(self._run_reduce, self._reduce)
                if self.progress:
                    background.start_soon(self._show_progress)
                if self.checkpoint is not None:
                    background.start_soon(self._save_checkpoints)
                with anyio.CancelScope() as self._work:
                    if not self._stopping:
                        await self.dispatcher.run(
                            self.feed, self._invoker(), self._succeeded, self._failed, self.config.max_concurrency
                        )
                self._work = None
                background.cancel_scope.cancel()
            if self._status == "RUNNING":
                self._check_tolerance(final=True)
            if self._reduce is not None:
                with anyio.CancelScope(shield=True):
                    # The results of rows that ended are written whatever the status; a reduce
                    # function is only given them when the map went through.
                    if self._status == "RUNNING" or isinstance(self._reduce, StreamingReduce):
                        output = await self._reduce.finish()
            if self._status == "RUNNING":
                self._status = "SUCCEEDED"
        except ReduceFailed as exc:
            self._fail(str(exc))
        except Exception as exc:
            self._fail(f"the map stopped: {redact.error_text(exc)}")
        finally:
            with anyio.CancelScope(shield=True):
                self._ended = time.monotonic()
                self._summary = self._make_summary(output)
                await self._settle_checkpoint()
                await self._close_targets()
                self._log_end()
                self._done.set()

    def _fail(self, cause: str) -> None:
        if self._status in ("RUNNING", "PENDING"):
            self._status = "FAILED"
            self._cause = cause
        self._stopping = True
        self.feed.close()

    async def _read(self) -> None:
        reader = self._reader
        feed = self.feed
        counts = self.counts
        assert reader is not None
        ahead = ReadAhead(reader, self._chunk, self.clock.now)
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._read_in_thread, ahead)
            try:
                while not self._stopping:
                    rows = await ahead.next()
                    if not rows:
                        break
                    counts.rows += len(rows)
                    feed.add(len(rows))
                    good = [row for row in rows if row.error is None]
                    feed.put(good)
                    if len(good) < len(rows):
                        for row in rows:
                            if row.error is not None:
                                counts.malformed += 1
                                await self._give_up(row, MalformedRowError(row.error), None)
                    await feed.wait_room()
                    if self._reduce is not None:
                        await self._reduce.wait_room()
                    ahead.done_with_one()
            except Exception as exc:
                # Kept for after the task group, which would wrap it in an exception group.
                failure = exc
            finally:
                ahead.stop()
        if isinstance(failure, ReduceFailed):
            self._abort("FAILED", str(failure))
        elif failure is not None:
            self._abort("FAILED", f"reading {reader.file_name} failed: {redact.error_text(failure)}")
        elif not self._stopping:
            feed.finish_reading()
            self._check_tolerance(final=False)

    async def _read_in_thread(self, ahead: ReadAhead) -> None:
        # Not abandoned on cancel: the thread ends after the chunk it is reading (``stop``).
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(ahead.run)

    async def _run_reduce(self, reduce: Reduce) -> None:
        try:
            await reduce.run()
        except ReduceFailed as exc:
            self._abort("FAILED", str(exc))

    # -- one row -----------------------------------------------------------------------------

    def _invoker(self) -> Invoke:
        target = self.target
        call = getattr(target, "invoke", None)
        if callable(call):
            # A function: it gets the row itself, no JSON round trip, no context per row; and
            # no coroutine of ours around its own (a map makes millions of them).
            def invoke(row: Row) -> Awaitable[Any]:
                return call(row.value)  # type: ignore[no-any-return]

            return invoke
        name, arn, target_arn, files = self.name, self.arn, self.target_arn, self.files
        dumps = json_strict.dumps

        async def deliver(row: Row) -> Any:
            payload = row.text if row.text is not None else dumps(row.value)
            context = DeliveryContext(
                kind="map",
                name=name,
                arn=arn,
                target_id="target",
                target_arn=target_arn,
                attempt=row.attempt,
                event_ids=(f"{files[row.file]}:{row.line}",),
            )
            return await target.deliver([payload], context)

        return deliver

    def _succeeded(self, row: Row, output: Any) -> None:
        reduce = self._reduce
        if reduce is not None:
            try:
                reduce.succeeded(row, output)
            except ValueError as exc:
                raise ResultNotJsonError(f"The target's answer is not JSON: {exc}") from None
        self.counts.succeeded += 1
        self.feed.ended()
        if self._track:
            self._settle(row, True)
        if self._level >= 3:
            self._trace("row succeeded", file=self.files[row.file], line=row.line, attempt=row.attempt)

    async def _failed(self, row: Row, error: BaseException) -> None:
        if self._stopping:
            return
        age = (self.clock.now() - row.read_at).total_seconds()
        decision = decide(self._rules, row.attempt, age, error, jitter=self._rand())
        if isinstance(decision, GiveUp):
            await self._give_up(row, error, decision.condition)
            return
        self.counts.retried += 1
        self._info(
            "retrying",
            file=self.files[row.file],
            line=row.line,
            attempt=row.attempt,
            delay=round(decision.delay, 3),
            error_code=error_code(error),
            error=error_message(error),
        )
        self.feed.retry(row, decision.delay)

    async def _give_up(self, row: Row, error: BaseException, condition: Condition | None) -> None:
        malformed = row.error is not None
        failure = RowFailure(
            self.files[row.file], row.line, error_code(error), error_message(error), 0 if malformed else row.attempt
        )
        self.counts.fail(failure)
        if self._reduce is not None:
            self._reduce.failed(row, failure)
        self._error(
            "row failed",
            file=failure.file,
            line=row.line,
            attempts=failure.attempts,
            error_code=failure.error,
            error=failure.cause,
            exhausted_retry_condition=condition,
        )
        if self.dead_letter is not None:
            await self._dead_letter(row, error, condition, failure)
        self.feed.ended()
        if self._track:
            self._settle(row, False, malformed)
        self._check_tolerance(final=False)

    async def _dead_letter(
        self, row: Row, error: BaseException, condition: Condition | None, failure: RowFailure
    ) -> None:
        assert self.dead_letter is not None
        event_id = f"{failure.file}:{row.line}"
        context = dead_letter_context(
            error,
            retry_attempts=max(0, failure.attempts - 1),
            condition=condition,
            origin={"MAP_ARN": self.arn, "TARGET_ARN": self.target_arn, "FILE": failure.file, "LINE": str(row.line)},
            name=self.name,
            arn=self.arn,
            target_id="target",
            target_arn=self.target_arn,
            event_id=event_id,
        )
        if row.error is not None:
            payload = json_strict.dumps_writable(row.text)
        else:
            payload = row.text if row.text is not None else json_strict.dumps(row.value)
        try:
            await self.dead_letter.deliver([payload], context)
        except Exception as exc:
            self.counts.dead_letter_failed += 1
            self._error("dead letter failed", file=failure.file, line=row.line, error=error_message(exc))
            return
        self.counts.dead_lettered += 1

    def _check_tolerance(self, *, final: bool) -> None:
        if self._stopping and not final:
            return
        counts = self.counts
        config = self.config
        cause = None
        if config.tolerated_failure_count is not None and counts.failed > config.tolerated_failure_count:
            cause = (
                f"{counts.failed:,} rows failed, more than tolerated_failure_count "
                f"({config.tolerated_failure_count:,}) allows"
            )
        elif (
            config.tolerated_failure_percentage is not None
            and (self.feed.reading_done or final)
            and counts.rows
            and counts.failed * 100 > config.tolerated_failure_percentage * counts.rows
        ):
            cause = (
                f"{counts.failed:,} of {counts.rows:,} rows failed ({100 * counts.failed / counts.rows:.2f} %), "
                f"more than tolerated_failure_percentage ({config.tolerated_failure_percentage:g} %) allows"
            )
        if cause is not None:
            if final:
                self._status = "FAILED"
                self._cause = cause
            else:
                self._abort("FAILED", cause)

    # -- the reduce ----------------------------------------------------------------------------

    def _make_reduce(self) -> Reduce | None:
        target = self.reduce_target
        if target is None:
            return None
        call = getattr(target, "invoke", None)
        if callable(call):
            return CollectingReduce(call, files=self.files, include_input=self.config.include_input)
        return StreamingReduce(
            target,
            files=self.files,
            context=DeliveryContext(
                kind="map",
                name=self.name,
                arn=self.arn,
                target_id="reduce",
                target_arn=_stage_arn(target, self.config.reduce, self, "reduce"),
            ),
            batch_size=self.config.reduce_batch_size,
            include_input=self.config.include_input,
            backlog=max(10_000, 4 * self.config.max_concurrency),
            rules=self._rules,
            clock=self.clock,
            rand=self._rand,
        )

    # -- progress, checkpoints, the end ------------------------------------------------------------

    async def _show_progress(self) -> None:
        reader = self._reader
        assert reader is not None
        display = MapProgress(self.name, reader.size, self._progress_stream)
        display.begin()

        def figures() -> tuple[int, int, int, float]:
            ended = self.counts.succeeded + self.counts.failed
            elapsed = time.monotonic() - self._started
            return reader.consumed, ended, self.counts.failed, ended / elapsed if elapsed > 0 else 0.0

        try:
            while True:
                await anyio.sleep(PROGRESS_INTERVAL)
                display.update(*figures())
        finally:
            display.end(*figures())

    def _settle(self, row: Row, ok: bool, malformed: bool = False) -> None:
        """Move the position past ``row`` and every ended row right after it."""
        if row.seq != self._next_seq:
            self._ahead[row.seq] = (row.file, row.end, ok, malformed)
            return
        saved = self._saved
        succeeded, failed, bad = saved.succeeded + ok, saved.failed + (not ok), saved.malformed + malformed
        file, end = row.file, row.end
        seq = row.seq + 1
        ahead = self._ahead
        while seq in ahead:
            file, end, ok, malformed = ahead.pop(seq)
            succeeded += ok
            failed += not ok
            bad += malformed
            seq += 1
        self._next_seq = seq
        self._saved = SavedPosition(Position(file, end, seq), succeeded, failed, bad)

    async def _resume_point(self) -> Position | None:
        if self.checkpoint is None:
            return None
        saved = await self.checkpoint.load(self.name)
        if saved is None:
            return None
        self._saved = saved
        self._next_seq = saved.position.rows
        self.counts.rows = saved.position.rows
        self.counts.succeeded = saved.succeeded
        self.counts.failed = saved.failed
        self.counts.malformed = saved.malformed
        self._info("resuming", rows=saved.position.rows, file=self.files[min(saved.position.file, len(self.files) - 1)])
        return saved.position

    async def _save_checkpoints(self) -> None:
        assert self.checkpoint is not None
        last: SavedPosition | None = None
        while True:
            await anyio.sleep(CHECKPOINT_INTERVAL)
            if self._saved != last:
                last = self._saved
                await self.checkpoint.save(self.name, last)

    async def _settle_checkpoint(self) -> None:
        if self.checkpoint is None:
            return
        try:
            with anyio.move_on_after(CLOSE_TIMEOUT):
                if self._status == "ABORTED":
                    await self.checkpoint.save(self.name, self._saved)
                else:
                    await self.checkpoint.clear(self.name)
        except Exception as exc:
            self._error("saving the checkpoint failed", error=redact.error_text(exc))

    async def _close_targets(self) -> None:
        for target in (self.target, self.reduce_target, self.dead_letter):
            if target is None:
                continue
            try:
                with anyio.move_on_after(CLOSE_TIMEOUT):
                    await target.aclose()
            except Exception as exc:
                self._error("target close failed", error=redact.error_text(exc))

    def _make_summary(self, output: Any) -> MapSummary:
        counts = self.counts
        return MapSummary(
            name=self.name,
            status=self._status,
            rows=counts.rows,
            succeeded=counts.succeeded,
            failed=counts.failed,
            aborted=max(0, counts.rows - counts.succeeded - counts.failed),
            malformed=counts.malformed,
            retried=counts.retried,
            dead_lettered=counts.dead_lettered,
            results_written=self._reduce.written if self._reduce is not None else 0,
            duration=max(0.0, self._ended - self._started),
            cause=self._cause,
            failures=tuple(counts.failures),
            errors=dict(counts.errors),
            output=output,
        )

    def _log_end(self) -> None:
        summary = self._summary
        assert summary is not None
        fields = {
            "status": summary.status,
            "rows": summary.rows,
            "succeeded": summary.succeeded,
            "failed": summary.failed,
            "aborted": summary.aborted,
            "duration": round(summary.duration, 3),
        }
        if summary.status == "SUCCEEDED":
            self._info("ended", **fields)
        else:
            self._error("ended", cause=summary.cause, **fields)

    # -- logging -----------------------------------------------------------------------------

    def _error(self, event: str, **fields: Any) -> None:
        if self._level >= 1:
            _log.error(event, map=self.name, **fields)

    def _info(self, event: str, **fields: Any) -> None:
        if self._level >= 2:
            _log.info(event, map=self.name, **fields)

    def _trace(self, event: str, **fields: Any) -> None:
        if self._level >= 3:
            _log.debug(event, map=self.name, **fields)


def _build(spec: Any, stage: str) -> Any:
    if isinstance(spec, TargetRef):
        raise ConfigError(
            f"{{ref: {spec.ref}}} names a target of a config file's targets: section, which only a "
            f"config file's runtime can resolve; from Python, pass the map's {stage} (or its config) itself"
        )
    if isinstance(spec, TargetConfig):
        return spec.build()
    return spec


def _stage_arn(built: object, spec: object, owner: Map, stage: str) -> str:
    """A target's own ``arn`` if it has one; else one made up from its kind and the map."""
    arn = getattr(built, "arn", None)
    if isinstance(arn, str) and arn:
        return arn
    kind = getattr(type(spec), "kind", "") or "target"
    return f"arn:eventbus:{kind}:{owner.config.region}:{owner.config.account}:{owner.name}-{stage}"
