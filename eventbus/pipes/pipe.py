"""``Pipe``: the running pipe, in Pipes' order: source, filter, enrichment, target.

One poller task takes batches from the source (up to ``batch_size`` records, waiting up to the
batching window to fill one) and starts a task for each, at most ``max_concurrency`` at once.
While that many batches are in progress the poller reads nothing, so a slow target slows the
source down, and the records in memory never exceed ``max_concurrency * batch_size`` plus what
the source itself buffers. (The poller never holds a batch it could not hand over: a stop then
has nothing to take back from it.)

A record stays the source's until its fate is settled: ``ack`` once delivered, filtered out,
skipped by the enrichment or dead-lettered; ``release`` with the backoff delay for a retry, so a
retried record comes back through the whole pipe (filter and enrichment included), and with no
delay when the pipe stops before finishing it. Durable sources therefore lose nothing on a stop.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

from eventbus.errors import ConfigError, NonRetryableError, TransformError
from eventbus.patterns import Pattern
from eventbus.pipes.config import LogLevel, PipeConfig, PipeState
from eventbus.pipes.records import SourceRecord, aws_time, filter_view, record_json
from eventbus.pipes.sources.base import Source, SourceConfig
from eventbus.pipes.stages import (
    ALL_FAILED,
    BatchItemFailure,
    PipeTransformError,
    batch_item_failures,
    enrichment_items,
)
from eventbus.targets.base import DeliveryContext, Target, TargetConfig
from eventbus.transform import PipeTemplate

__all__ = ["COUNTERS", "Pipe"]

_log = structlog.get_logger("eventbus.pipes")

#: Per-stage counters, in the order a record meets the stages.
COUNTERS: Final = (
    "received",
    "filtered_out",
    "enriched",
    "skipped",
    "delivered",
    "failed",
    "retried",
    "dead_lettered",
    "dead_letter_failed",
    "dropped",
)

_LEVELS: Final[dict[LogLevel, int]] = {"OFF": 0, "ERROR": 1, "INFO": 2, "TRACE": 3}

#: How long one ``receive`` may wait before the poller looks whether it should stop.
POLL_WAIT = 0.25
#: Bound on tidying up (releasing records, closing the source) once a stop has begun.
_CLEANUP_TIMEOUT = 10.0
_MAX_ERROR_MESSAGE = 2048


@dataclass(slots=True)
class _Failure:
    error: BaseException
    stage: str  # "ENRICHMENT" or "TARGET"
    stage_arn: str


class Pipe:
    """A pipe built from a ``PipeConfig`` (or the mapping of one).

    Run it inside ``async with pipe:`` (which starts it when its desired state is RUNNING and
    stops it on the way out) or with ``await pipe.run()``; ``start()`` and ``stop()`` move it
    between RUNNING and STOPPED in between.
    """

    def __init__(
        self,
        config: PipeConfig | Mapping[str, Any],
        *,
        name: str | None = None,
        rand: Callable[[], float] = random.random,
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
        self._rand = rand
        self._level = _LEVELS[config.log_level]

        self.source: Source = _build(config.source, SourceConfig)
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
        self._patterns = [Pattern(p) for p in config.filter]
        self._enrichment_template = (
            PipeTemplate(config.enrichment_input_template) if config.enrichment_input_template else None
        )
        self._target_template = (
            PipeTemplate(config.target_input_template) if config.target_input_template else None
        )

        self._counters = dict.fromkeys(COUNTERS, 0)
        self._state: PipeState = "STOPPED"
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self._in_flight = 0
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
        return self._in_flight

    def metrics(self) -> dict[str, int]:
        """A copy of the per-stage counters (see ``COUNTERS``)."""
        return dict(self._counters)

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
                "FilterCriteria": {"Filters": [{"Pattern": p.to_json()} for p in self._patterns]},
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
                for target in (self.target, self.enrichment, self.dead_letter):
                    if target is not None:
                        try:
                            with anyio.move_on_after(_CLEANUP_TIMEOUT):
                                await target.aclose()
                        except Exception as close_exc:
                            self._error("target close failed", error=str(close_exc))
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
            self._error("start failed", error=f"{type(cause).__name__}: {cause}")
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
            self._info("stop timeout: cancelling batches in progress", in_flight=self._in_flight)
            self._run_scope.cancel()
        await self._finished.wait()
        self._set_state("STOPPED")

    async def wait_finished(self, timeout: float) -> None:
        """Wait until a finite source (a file) is read to its end and every record settled.

        ``TimeoutError`` after ``timeout`` seconds; ``ConfigError`` for a source that never ends.
        """
        if not hasattr(self.source, "finished"):
            raise ConfigError(f"{type(self.source).__name__} never finishes: there is nothing to wait for")
        with anyio.fail_after(timeout):
            while not (getattr(self.source, "finished", False) and self._in_flight == 0):
                await anyio.sleep(0.02)

    def _set_state(self, state: PipeState) -> None:
        self._state = state
        self._info("state", state=state)

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
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_TIMEOUT):
                try:
                    await self.source.close()
                except Exception as exc:
                    if opened:
                        self._error("source close failed", error=f"{type(exc).__name__}: {exc}")
            self._drained.set()
            self._finished.set()

    async def _poll(self, batches: TaskGroup) -> None:
        assert self._stop_requested is not None
        stop = self._stop_requested
        while not stop.is_set():
            if self._busy >= self.config.max_concurrency:
                self._slot_freed = anyio.Event()
                await self._slot_freed.wait()
                continue
            try:
                batch = await self._collect(stop)
            except Exception as exc:
                self._error("source receive failed", error=f"{type(exc).__name__}: {exc}")
                with anyio.move_on_after(1.0):
                    await stop.wait()
                continue
            if not batch:
                continue
            self._in_flight += len(batch)
            self._count("received", len(batch))
            self._trace("received", records=[r.record_id for r in batch])
            self._busy += 1
            batches.start_soon(self._process, batch)

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
        unsettled = {id(r): r for r in batch}
        try:
            try:
                await self._pipeline(batch, unsettled)
            except Exception as exc:
                # A fault of our own or of a source: the records go back for another try.
                self._error("batch failed", error=f"{type(exc).__name__}: {exc}")
                failure = _Failure(exc, "TARGET", self.target_arn)
                await self._handle_failures({id(r): (r, failure) for r in unsettled.values()}, unsettled)
        except Exception as exc:
            self._error("settling a failed batch failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            if unsettled:
                # Whatever is left unsettled (a stop cut the batch off) goes back to the source.
                with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_TIMEOUT):
                    try:
                        await self._settle_release(list(unsettled.values()), 0.0, unsettled)
                    except Exception as exc:
                        self._error("releasing records failed", error=f"{type(exc).__name__}: {exc}")
            self._busy -= 1
            if self._slot_freed is not None:
                self._slot_freed.set()

    # -- the stages ------------------------------------------------------------------------

    async def _pipeline(self, batch: list[SourceRecord], unsettled: dict[int, SourceRecord]) -> None:
        keep, dropped = self._filter(batch)
        if dropped:
            self._count("filtered_out", len(dropped))
            self._trace("filtered out", records=[r.record_id for r in dropped])
        failures: dict[int, tuple[SourceRecord, _Failure]] = {}
        skipped = False
        if keep:
            if self.enrichment is not None:
                inputs, origins, skipped = await self._enrich(keep, failures)
            else:
                inputs = [r.record for r in keep]
                origins = [[r] for r in keep]
            if not skipped and inputs:
                await self._deliver(keep, inputs, origins, failures)
        done = [r for r in keep if id(r) not in failures]
        if done:
            self._count("skipped" if skipped else "delivered", len(done))
        # One acknowledgement for the batch: filtered out and done alike are finished with.
        if dropped or done:
            await self._settle_ack(dropped + done, unsettled)
        if failures:
            await self._handle_failures(failures, unsettled)

    def _filter(self, batch: list[SourceRecord]) -> tuple[list[SourceRecord], list[SourceRecord]]:
        if not self._patterns:
            return batch, []
        keep: list[SourceRecord] = []
        dropped: list[SourceRecord] = []
        for record in batch:
            view = filter_view(record.record)
            (keep if any(p.matches(view) for p in self._patterns) else dropped).append(record)
        return keep, dropped

    async def _enrich(
        self, records: list[SourceRecord], failures: dict[int, tuple[SourceRecord, _Failure]]
    ) -> tuple[list[Any], list[list[SourceRecord]], bool]:
        """The target inputs, which records each stands for, and whether the target is skipped."""
        assert self.enrichment is not None and self.enrichment_arn is not None
        payloads: list[str] = []
        good: list[SourceRecord] = []
        for record in records:
            try:
                payloads.append(self._render(self._enrichment_template, record.record, record))
                good.append(record)
            except TransformError as exc:
                failures[id(record)] = (
                    record,
                    _Failure(PipeTransformError(str(exc)), "ENRICHMENT", self.enrichment_arn),
                )
        if not good:
            return [], [], False
        items: list[Any] = []
        answered = False
        for chunk, chunk_payloads in _chunks(good, payloads, _max_batch(self.enrichment)):
            context = self._context("enrichment", "enrichment", self.enrichment_arn, chunk)
            self._trace("enrichment invoked", records=[r.record_id for r in chunk], payloads=chunk_payloads)
            try:
                response = await self.enrichment.deliver(chunk_payloads, context)
            except Exception as exc:
                # Fan-out loses track of which output came from which record: one failure fails all.
                self._stage_error("enrichment failed", exc, good)
                for record in good:
                    failures[id(record)] = (record, _Failure(exc, "ENRICHMENT", self.enrichment_arn))
                return [], [], False
            found = enrichment_items(response)
            if found is not None:
                answered = True
                items.extend(found)
        self._count("enriched", len(good))
        self._trace("enriched", records=[r.record_id for r in good], outputs=len(items), response=items)
        if not answered:
            return [], [], True
        return items, [good] * len(items), False

    async def _deliver(
        self,
        records: list[SourceRecord],
        inputs: list[Any],
        origins: list[list[SourceRecord]],
        failures: dict[int, tuple[SourceRecord, _Failure]],
    ) -> None:
        payloads: list[str] = []
        payload_origins: list[list[SourceRecord]] = []
        for value, origin in zip(inputs, origins, strict=True):
            try:
                payloads.append(self._render(self._target_template, value, origin[0]))
                payload_origins.append(origin)
            except TransformError as exc:
                failure = _Failure(PipeTransformError(str(exc)), "TARGET", self.target_arn)
                for record in origin:
                    failures.setdefault(id(record), (record, failure))
        by_id = {r.record_id: r for r in records}
        for chunk_origins, chunk_payloads in _chunks(payload_origins, payloads, _max_batch(self.target)):
            chunk_records = _unique(r for origin in chunk_origins for r in origin)
            context = self._context("pipe", "target", self.target_arn, chunk_records)
            self._trace(
                "target invoked", records=[r.record_id for r in chunk_records], payloads=chunk_payloads
            )
            try:
                response = await self.target.deliver(chunk_payloads, context)
            except Exception as exc:
                self._stage_error("target failed", exc, chunk_records)
                for record in chunk_records:
                    failures.setdefault(id(record), (record, _Failure(exc, "TARGET", self.target_arn)))
                continue
            reported = batch_item_failures(response, by_id)
            if reported is None:
                continue
            if reported is ALL_FAILED:
                failed = chunk_records
                message = "the target's batchItemFailures could not be read (or named an unknown record)"
            else:
                assert isinstance(reported, list)
                failed = [by_id[ident] for ident in reported]
                message = "the target reported this record in batchItemFailures"
            self._info("partial batch failure", records=[r.record_id for r in failed])
            for record in failed:
                failures.setdefault(
                    id(record), (record, _Failure(BatchItemFailure(message), "TARGET", self.target_arn))
                )

    def _render(self, template: PipeTemplate | None, value: Any, origin: SourceRecord) -> str:
        if template is None:
            return record_json(value)
        rendered = template.render(
            value,
            pipe_name=self.name,
            pipe_arn=self.arn,
            source_arn=self.source_arn,
            enrichment_arn=self.enrichment_arn,
            target_arn=self.target_arn,
            ingestion_time=aws_time(origin.ingestion_time),
        )
        # A text template (not an object or array) is delivered as a JSON string, as in Pipes.
        if template.template.lstrip()[:1] not in ("{", "["):
            return record_json(rendered)
        return rendered

    def _context(
        self, kind: Any, target_id: str, arn: str, records: Sequence[SourceRecord]
    ) -> DeliveryContext:
        return DeliveryContext(
            kind=kind,
            name=self.name,
            arn=self.arn,
            target_id=target_id,
            target_arn=arn,
            attempt=max((r.attempt for r in records), default=1),
            event_ids=tuple(r.record_id for r in records),
        )

    # -- failures, retries, dead letters ---------------------------------------------------

    async def _handle_failures(
        self, failures: dict[int, tuple[SourceRecord, _Failure]], unsettled: dict[int, SourceRecord]
    ) -> None:
        policy = self.config.retry_policy
        now = datetime.now(UTC)
        retry: list[tuple[SourceRecord, _Failure]] = []
        dead: list[tuple[SourceRecord, _Failure, str | None]] = []
        self._count("failed", len(failures))
        for record, failure in failures.values():
            condition: str | None = None
            if not isinstance(failure.error, NonRetryableError):
                age = (now - record.ingestion_time).total_seconds()
                if 0 <= policy.maximum_retry_attempts <= record.attempt - 1:
                    condition = "MaximumRetryAttempts"
                elif 0 <= policy.maximum_record_age_in_seconds <= age:
                    condition = "MaximumRecordAgeInSeconds"
                else:
                    retry.append((record, failure))
                    continue
            dead.append((record, failure, condition))
        if retry:
            delay = self._retry_delay(max(r.attempt for r, _ in retry), (f.error for _, f in retry))
            self._count("retried", len(retry))
            self._info(
                "retrying",
                records=[r.record_id for r, _ in retry],
                attempt=max(r.attempt for r, _ in retry),
                delay=round(delay, 3),
            )
            await self._settle_release([r for r, _ in retry], delay, unsettled)
        for record, failure, condition in dead:
            await self._dead_letter(record, failure, condition, unsettled)

    def _retry_delay(self, attempt: int, errors: Iterable[BaseException]) -> float:
        delay = self.config.backoff.delay(attempt, self._rand)
        for error in errors:
            retry_after = getattr(error, "retry_after", None)
            if isinstance(retry_after, int | float) and retry_after > delay:
                delay = float(retry_after)
        return delay

    async def _dead_letter(
        self,
        record: SourceRecord,
        failure: _Failure,
        condition: str | None,
        unsettled: dict[int, SourceRecord],
    ) -> None:
        error = failure.error
        fields = {
            "record": record.record_id,
            "stage": failure.stage,
            "attempt": record.attempt,
            "error_code": _error_code(error),
            "error": str(error)[:_MAX_ERROR_MESSAGE],
            "exhausted_retry_condition": condition,
        }
        if self.dead_letter is None:
            self._count("dropped")
            self._error("undeliverable, no dead-letter destination: dropped", **fields)
            await self._settle_ack([record], unsettled)
            return
        attributes = {
            "ERROR_CODE": _error_code(error),
            "ERROR_MESSAGE": str(error)[:_MAX_ERROR_MESSAGE],
            "PIPE_ARN": self.arn,
            "TARGET_ARN": failure.stage_arn,
            "STAGE": failure.stage,
            "RETRY_ATTEMPTS": str(record.attempt - 1),
        }
        if condition is not None:
            attributes["EXHAUSTED_RETRY_CONDITION"] = condition
        context = DeliveryContext(
            kind="dead-letter",
            name=self.name,
            arn=self.arn,
            target_id=failure.stage.lower(),
            target_arn=failure.stage_arn,
            attempt=1,
            event_ids=(record.record_id,),
            attributes=attributes,
        )
        try:
            await self.dead_letter.deliver([record_json(record.record)], context)
        except Exception as exc:
            # The record stays with the source (and comes back) rather than being lost.
            self._count("dead_letter_failed")
            self._error("dead letter failed", dead_letter_error=f"{type(exc).__name__}: {exc}", **fields)
            await self._settle_release([record], self._retry_delay(record.attempt, [exc]), unsettled)
            return
        self._count("dead_lettered")
        self._error("dead-lettered", **fields)
        await self._settle_ack([record], unsettled)

    # -- settling with the source ----------------------------------------------------------

    async def _settle_ack(self, records: Sequence[SourceRecord], unsettled: dict[int, SourceRecord]) -> None:
        for record in records:
            unsettled.pop(id(record), None)
        self._in_flight -= len(records)
        await self.source.ack(records)

    async def _settle_release(
        self, records: Sequence[SourceRecord], delay: float, unsettled: dict[int, SourceRecord] | None = None
    ) -> None:
        if unsettled is not None:
            for record in records:
                unsettled.pop(id(record), None)
        self._in_flight -= len(records)
        await self.source.release(records, delay)

    # -- counting and logging --------------------------------------------------------------

    def _count(self, name: str, n: int = 1) -> None:
        self._counters[name] += n

    def _stage_error(self, event: str, exc: BaseException, records: Sequence[SourceRecord]) -> None:
        self._error(
            event,
            error_code=_error_code(exc),
            error=str(exc)[:_MAX_ERROR_MESSAGE],
            records=[r.record_id for r in records],
        )

    def _error(self, event: str, **fields: Any) -> None:
        if self._level >= 1:
            _log.error(event, pipe=self.name, **fields)

    def _info(self, event: str, **fields: Any) -> None:
        if self._level >= 2:
            _log.info(event, pipe=self.name, **fields)

    def _trace(self, event: str, **fields: Any) -> None:
        if self._level >= 3:
            if not self.config.include_execution_data:
                fields = {k: v for k, v in fields.items() if k not in ("payloads", "response")}
            _log.debug(event, pipe=self.name, **fields)

    def _stage_arn(self, built: object, spec: object, stage: str) -> str:
        arn = getattr(built, "arn", None)
        if isinstance(arn, str) and arn:
            return arn
        kind = getattr(type(spec), "kind", "") or type(built).__name__.lower()
        return f"arn:eventbus:{kind}:{self.config.region}:{self.config.account}:{self.name}-{stage}"


def _unwrap(exc: Exception) -> Exception:
    """The one error inside task-group wrappers (a source that failed to open)."""
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _build(spec: Any, config_type: type[SourceConfig] | type[TargetConfig]) -> Any:
    if isinstance(spec, config_type):
        return spec.build()
    return spec


def _max_batch(target: Target) -> int:
    size = getattr(target, "max_batch_size", 10)
    return max(1, min(int(size) if isinstance(size, int) else 10, 10_000))


def _chunks(owners: Sequence[Any], payloads: Sequence[str], size: int) -> Iterable[tuple[Any, list[str]]]:
    for start in range(0, len(payloads), size):
        yield list(owners[start : start + size]), list(payloads[start : start + size])


def _unique(records: Iterable[SourceRecord]) -> list[SourceRecord]:
    seen: dict[int, SourceRecord] = {}
    for record in records:
        seen.setdefault(id(record), record)
    return list(seen.values())


def _error_code(exc: BaseException) -> str:
    code = getattr(exc, "error_code", None)
    if isinstance(code, str):
        return code
    return "SDK_CLIENT_ERROR"
