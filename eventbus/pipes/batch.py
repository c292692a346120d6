"""One batch through the stages: filter, enrichment, target; then each record settled.

``BatchRunner.process`` takes a batch from the poller and makes sure every record in it ends
settled with the source: acknowledged (delivered, filtered out, skipped, dead-lettered, dropped)
or released (to be retried after the backoff, or untouched when a stop cuts the batch off).
It also keeps the per-stage counters and writes the pipe's logs at its log level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import anyio

from eventbus import json_strict
from eventbus._logger import get_logger
from eventbus.bus.clock import Clock
from eventbus.bus.delivery.dead_letter import dead_letter_context
from eventbus.bus.delivery.retry import Condition, GiveUp, decide, error_code, error_message, retry_delay
from eventbus.errors import TransformError
from eventbus.patterns import Matcher, Pattern
from eventbus.pipes.config import LogLevel, PipeConfig
from eventbus.pipes.records import SourceRecord, aws_time, filter_view, record_json
from eventbus.pipes.sources.base import Source
from eventbus.pipes.stages import (
    BatchItemFailure,
    PipeTransformError,
    Unreadable,
    batch_item_failures,
    enrichment_items,
)
from eventbus.targets.base import DeliveryContext, Target, batch_limit
from eventbus.transform import PipeTemplate

__all__ = ["COUNTERS", "BatchRunner", "PipeLog"]

_log = get_logger("eventbus.pipes")

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

#: Bound on handing records back to the source once a stop has cut a batch off.
CLEANUP_TIMEOUT = 10.0
#: Payloads a stage's ``deliver`` call takes at most (a pipe's batch size is at most this).
_MAX_BATCH = 10_000


@dataclass(slots=True)
class _Failure:
    error: BaseException
    stage: str  # "ENRICHMENT" or "TARGET"
    stage_arn: str


class BatchRunner:
    """The stages of one pipe, applied a batch at a time (several batches may run at once)."""

    def __init__(
        self,
        *,
        name: str,
        arn: str,
        config: PipeConfig,
        source: Source,
        source_arn: str,
        target: Target,
        target_arn: str,
        enrichment: Target | None,
        enrichment_arn: str | None,
        dead_letter: Target | None,
        rand: Callable[[], float],
        clock: Clock,
    ) -> None:
        self.name = name
        self.arn = arn
        self.config = config
        self.source = source
        self.source_arn = source_arn
        self.target = target
        self.target_arn = target_arn
        self.enrichment = enrichment
        self.enrichment_arn = enrichment_arn
        self.dead_letter = dead_letter
        self._rand = rand
        self._clock = clock
        self._retry_rules = config.retry_policy.rules(config.backoff)
        self.log = PipeLog(name, config.log_level, include_execution_data=config.include_execution_data)
        self.patterns = [Pattern(p) for p in config.filter]
        # The patterns are OR'ed: filed under one name, the Matcher answers in one pass, at a
        # fraction of the cost of testing each pattern on its own.
        self._matcher = Matcher()
        for pattern in self.patterns:
            self._matcher.add("filter", pattern)
        self._enrichment_template = (
            PipeTemplate(config.enrichment_input_template) if config.enrichment_input_template else None
        )
        self._target_template = (
            PipeTemplate(config.target_input_template) if config.target_input_template else None
        )
        self.counters = dict.fromkeys(COUNTERS, 0)
        #: Records taken from the source whose fate is not settled yet.
        self.in_flight = 0

    def took(self, batch: Sequence[SourceRecord]) -> None:
        """The poller took ``batch`` from the source: count it and hold it until settled."""
        self.in_flight += len(batch)
        self._count("received", len(batch))
        self._trace("received", records=[r.record_id for r in batch])

    async def release_untouched(self, batch: list[SourceRecord]) -> None:
        """Hand back a batch no stage has seen (a stop came first), without delay."""
        try:
            await self._settle_release(batch, 0.0)
        except Exception as exc:
            self._error("releasing records failed", error=error_message(exc))

    async def process(self, batch: list[SourceRecord]) -> None:
        """Run ``batch`` through the stages; every record ends settled with the source."""
        unsettled = {id(r): r for r in batch}
        try:
            try:
                await self._pipeline(batch, unsettled)
            except Exception as exc:
                # A fault of our own or of a source: the records go back for another try.
                self._error("batch failed", error=error_message(exc))
                failure = _Failure(exc, "TARGET", self.target_arn)
                await self._handle_failures({id(r): (r, failure) for r in unsettled.values()}, unsettled)
        except Exception as exc:
            self._error("settling a failed batch failed", error=error_message(exc))
        finally:
            if unsettled:
                # Whatever is left unsettled (a stop cut the batch off) goes back to the source.
                with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT):
                    try:
                        await self._settle_release(list(unsettled.values()), 0.0, unsettled)
                    except Exception as exc:
                        self._error("releasing records failed", error=error_message(exc))

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
        if not self.patterns:
            return batch, []
        keep: list[SourceRecord] = []
        dropped: list[SourceRecord] = []
        verdicts = self._matcher.match_many([filter_view(record.record) for record in batch])
        for record, names in zip(batch, verdicts, strict=True):
            (keep if names else dropped).append(record)
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
        for chunk, chunk_payloads in _chunks(good, payloads, batch_limit(self.enrichment, _MAX_BATCH)):
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
        for chunk_origins, chunk_payloads in _chunks(payload_origins, payloads, batch_limit(self.target, _MAX_BATCH)):
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
            if isinstance(reported, Unreadable):
                failed = chunk_records
                message = f"the target's answer fails the whole batch: {reported.reason}"
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
        try:
            return self._render_text(template, value, origin)
        except ValueError as exc:
            # NaN, an infinite number or a lone surrogate (an enrichment's answer, a custom
            # source's record): no target could write it, so no attempt is made.
            raise TransformError(f"The input is not JSON a target can deliver: {exc}.") from None

    def _render_text(self, template: PipeTemplate | None, value: Any, origin: SourceRecord) -> str:
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
        if not json_strict.is_unicode(rendered):
            raise ValueError("a value holds a lone surrogate (it is not valid UTF-8)")
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
        now = self._clock.now()
        # One draw for the batch: its retried records go back to the source together.
        jitter = self._rand()
        retry: list[tuple[SourceRecord, _Failure]] = []
        delay = 0.0
        dead: list[tuple[SourceRecord, _Failure, Condition | None]] = []
        self._count("failed", len(failures))
        for record, failure in failures.values():
            age = (now - record.ingestion_time).total_seconds()
            decision = decide(self._retry_rules, record.attempt, age, failure.error, jitter=jitter)
            if isinstance(decision, GiveUp):
                dead.append((record, failure, decision.condition))
            else:
                retry.append((record, failure))
                delay = max(delay, decision.delay)
        if retry:
            self._count("retried", len(retry))
            self._info(
                "retrying",
                records=[r.record_id for r, _ in retry],
                attempt=max(r.attempt for r, _ in retry),
                delay=round(delay, 3),
                errors=sorted({error_message(f.error) for _, f in retry}),
            )
            await self._settle_release([r for r, _ in retry], delay, unsettled)
        for record, failure, condition in dead:
            await self._dead_letter(record, failure, condition, unsettled)

    async def _dead_letter(
        self,
        record: SourceRecord,
        failure: _Failure,
        condition: Condition | None,
        unsettled: dict[int, SourceRecord],
    ) -> None:
        error = failure.error
        fields = {
            "record": record.record_id,
            "stage": failure.stage,
            "attempt": record.attempt,
            "error_code": error_code(error),
            "error": error_message(error),
            "exhausted_retry_condition": condition,
        }
        if self.dead_letter is None:
            self._count("dropped")
            self._error("undeliverable, no dead-letter destination: dropped", **fields)
            await self._settle_ack([record], unsettled)
            return
        context = dead_letter_context(
            error,
            retry_attempts=record.attempt - 1,
            condition=condition,
            origin={"PIPE_ARN": self.arn, "TARGET_ARN": failure.stage_arn, "STAGE": failure.stage},
            name=self.name,
            arn=self.arn,
            target_id=failure.stage.lower(),
            target_arn=failure.stage_arn,
            event_id=record.record_id,
        )
        try:
            await self.dead_letter.deliver([_dead_letter_json(record.record)], context)
        except Exception as exc:
            # The record stays with the source (and comes back) rather than being lost.
            self._count("dead_letter_failed")
            self._error("dead letter failed", dead_letter_error=error_message(exc), **fields)
            delay = retry_delay(self.config.backoff, record.attempt, exc, self._rand())
            await self._settle_release([record], delay, unsettled)
            return
        self._count("dead_lettered")
        self._error("dead-lettered", **fields)
        await self._settle_ack([record], unsettled)

    # -- settling with the source ----------------------------------------------------------

    async def _settle_ack(self, records: Sequence[SourceRecord], unsettled: dict[int, SourceRecord]) -> None:
        for record in records:
            unsettled.pop(id(record), None)
        self.in_flight -= len(records)
        await self.source.ack(records)

    async def _settle_release(
        self, records: Sequence[SourceRecord], delay: float, unsettled: dict[int, SourceRecord] | None = None
    ) -> None:
        if unsettled is not None:
            for record in records:
                unsettled.pop(id(record), None)
        self.in_flight -= len(records)
        await self.source.release(records, delay)

    # -- counting and logging --------------------------------------------------------------

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def _stage_error(self, event: str, exc: BaseException, records: Sequence[SourceRecord]) -> None:
        self._error(
            event, error_code=error_code(exc), error=error_message(exc), records=[r.record_id for r in records]
        )

    def _error(self, event: str, **fields: Any) -> None:
        self.log.error(event, **fields)

    def _info(self, event: str, **fields: Any) -> None:
        self.log.info(event, **fields)

    def _trace(self, event: str, **fields: Any) -> None:
        self.log.trace(event, **fields)


class PipeLog:
    """The pipe's logs at its level: ERROR, INFO, or TRACE (``logging``'s DEBUG); OFF logs nothing."""

    def __init__(self, pipe: str, level: LogLevel, *, include_execution_data: bool = False) -> None:
        self.pipe = pipe
        self.level = _LEVELS[level]
        self.include_execution_data = include_execution_data

    def error(self, event: str, **fields: Any) -> None:
        if self.level >= 1:
            _log.error(event, pipe=self.pipe, **fields)

    def info(self, event: str, **fields: Any) -> None:
        if self.level >= 2:
            _log.info(event, pipe=self.pipe, **fields)

    def trace(self, event: str, **fields: Any) -> None:
        if self.level >= 3:
            if not self.include_execution_data:
                fields = {k: v for k, v in fields.items() if k not in ("payloads", "response")}
            _log.debug(event, pipe=self.pipe, **fields)


def _chunks(owners: Sequence[Any], payloads: Sequence[str], size: int) -> Iterable[tuple[Any, list[str]]]:
    for start in range(0, len(payloads), size):
        yield list(owners[start : start + size]), list(payloads[start : start + size])


def _unique(records: Iterable[SourceRecord]) -> list[SourceRecord]:
    seen: dict[int, SourceRecord] = {}
    for record in records:
        seen.setdefault(id(record), record)
    return list(seen.values())



def _dead_letter_json(record: Any) -> str:
    """The record for the dead letter: strict JSON, or, for a record no target could take as
    it is, JSON with its lone surrogates escaped, which any target can write."""
    try:
        return record_json(record)
    except ValueError:
        return json_strict.dumps_writable(record)
