"""Config unit tests: ``NAME.test.yaml`` beside ``NAME.yaml`` says which targets get which payloads.

::

    tests:
      - name: big orders reach the webhook
        bus: orders                      # optional when the config has one bus
        events:                          # events or PutEvents entries
          - {source: shop, detail-type: OrderPlaced, detail: {id: o-1, total: 250}}
        expect:                          # target address: bus/rule/target-id
          orders/big/webhook:
            - {order: o-1}               # an exact payload...
          orders/all/archive:
            - pattern: {detail: {id: [{prefix: "o-"}]}}   # ...or an event pattern over it
          orders/small/notify: []        # receives nothing
        strict: false                    # true: targets not listed must receive nothing

      - name: a job read from the queue pages the ops team
        pipe: intake                     # a pipe instead of a bus...
        records:                         # ...reads records: message bodies, JSON values or text
          - {kind: job, id: j-1, priority: 9}
          - not JSON at all
        enrichment:                      # optional: what the enrichment answers, one a record
          - {id: j-1, owner: ops}
          - {}                           # nothing: the target is skipped for this record
        expect:                          # the pipe's stages: pipe/NAME/target, /enrichment, /dead-letter
          pipe/intake/target:
            - pattern: {detail: {id: [j-1]}}
          jobs/urgent/page-ops:          # the bus the pipe feeds routes for real
            - {text: "urgent job j-1 (priority 9)"}

A case has ``events`` (put on a bus) or ``records`` (read by the pipe ``pipe`` names), never both.

Every target (dead letters included) is swapped for a recording one, so nothing real is called;
the exception is a target of kind ``bus`` naming a bus of the same config, wherever it sits (rule
target, dead letter, pipe target): it stays real and is recorded too, so a case sees what that bus's
rules do with what it was sent. A pipe's enrichment is always the recording one: it answers what
the case's ``enrichment`` gives for each record, or, without it, its input unchanged (as a function
returning the batch it was given would).

In a pipe case, only that pipe runs (started even when declared ``STOPPED``), and its source is
replaced by one holding the case's records, shaped as the configured kind shapes them:

- ``queue``: SQS messages from a private memory queue (``messageId``, ``body``, ``attributes``...)
- ``webhook``: the webhook's SQS-like records, ``body`` and ``ContentType`` (JSON or text)
- ``file``, ``nats``: stream records with the record in ``data`` (``eventID``, ``lineNumber`` or
  ``subject``, ``sequence``)
- ``directory``, ``schedule``: the kind's events (``Object Created``, ``Scheduled Event``) whose
  ``detail`` is the record, which must be a mapping (a directory's ``bucket`` is filled in)
- any other kind: stream records ``{eventID, eventSource: eventbus:KIND, eventSourceARN, data}``

A string record is the body or data as written (JSON text in it is parsed by filters and templates,
as always); any other value is its JSON text. The batching window is not waited for: every record
is there from the start, so the batches are the same without it. The case ends once every record
is settled (delivered, filtered out, skipped or dead-lettered) and the buses are idle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from eventbus.config.build import Runtime
from eventbus.config.case_sources import EVENT_KINDS, CaseSource, case_source
from eventbus.config.entries import to_entry
from eventbus.config.errors import ConfigErrors, KeyPath, Problem
from eventbus.config.load import Document, load_document
from eventbus.config.validate import LoadedConfig, did_you_mean, load_config, problems_from
from eventbus.errors import EventBusError, InvalidEventError, PatternError
from eventbus.patterns import Pattern
from eventbus.targets.base import DeliveryContext, Target, TargetConfig
from eventbus.targets.bus import BusTargetConfig
from eventbus.targets.recording import RecordingTarget

if TYPE_CHECKING:
    from eventbus.bus import EventBus
    from eventbus.pipes import PipeConfig

__all__ = [
    "CaseResult",
    "ConfigTestCase",
    "ConfigTestFile",
    "find_test_files",
    "is_test_file",
    "load_test_file",
    "run_test_file",
]

#: How long a case waits for its events or records to reach the recording targets.
CASE_TIMEOUT = 10.0


def _json_value(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        # YAML reads an unquoted 2026-01-01 as a date, which JSON cannot hold.
        raise ValueError(f"not a JSON value ({exc}); quote it to send it as text") from None
    return value


_JsonValue = Annotated[Any, AfterValidator(_json_value)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigTestCase(_Model):
    name: str = Field(min_length=1)
    bus: str | None = None
    events: Annotated[list[dict[str, Any]], Field(min_length=1)] | None = None
    #: A pipe to run instead of a bus; it reads ``records``.
    pipe: str | None = None
    records: Annotated[list[_JsonValue], Field(min_length=1)] | None = None
    #: What the pipe's enrichment answers for each record, in the order of ``records``.
    enrichment: list[_JsonValue] | None = None
    expect: dict[str, list[Any]] = Field(default_factory=dict)
    strict: bool = False

    @field_validator("events")
    @classmethod
    def _events_are_entries(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for item in value or ():
            try:
                to_entry(item)
            except InvalidEventError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("expect")
    @classmethod
    def _patterns_are_valid(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for items in value.values():
            for item in items:
                if _is_pattern(item):
                    try:
                        Pattern(item["pattern"])
                    except PatternError as exc:
                        raise ValueError(str(exc)) from None
        return value


class ConfigTestFile(_Model):
    #: The config under test, relative to this file; default: this file's name without ``.test``.
    config: str | None = None
    tests: list[ConfigTestCase] = Field(min_length=1)


@dataclass(slots=True)
class CaseResult:
    file: str
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def is_test_file(path: str | Path) -> bool:
    """Whether ``path`` names config tests (``NAME.test.yaml`` and the like)."""
    path = Path(path)
    return path.name.endswith(f".test{path.suffix}")


def find_test_files(path: str | Path) -> tuple[Path, Path]:
    """``(test file, config file)`` for either of them; ``ConfigErrors`` when one is missing."""
    path = Path(path)
    stem, suffix = path.name, path.suffix
    if stem.endswith(f".test{suffix}"):
        test_file = path
        config_file = path.with_name(stem[: -len(f".test{suffix}")] + suffix)
    else:
        test_file = path.with_name(f"{path.stem}.test{suffix}")
        config_file = path
    if not test_file.exists():
        raise ConfigErrors([Problem(str(path), None, (), f"no config tests: {test_file} not found")])
    return test_file, config_file


def load_test_file(path: str | Path) -> tuple[ConfigTestFile, LoadedConfig]:
    test_path, config_path = find_test_files(path)
    document = load_document(test_path)
    try:
        spec = ConfigTestFile.model_validate(document.data)
    except ValidationError as exc:
        raise ConfigErrors(problems_from(document, exc, ConfigTestFile.model_json_schema())) from None
    if spec.config is not None:
        config_path = document.base_dir / spec.config
    config = load_config(config_path)
    built = Runtime([config], target_factory=_recorder, adapt_pipe=_without_source)
    addresses = set(built.targets)
    stages = ("target", "enrichment", "dead-letter")
    pipe_stages = {f"pipe/{name}/{stage}" for name in built.pipes for stage in stages}
    bus_addresses = addresses - pipe_stages
    problems = []
    for index, case in enumerate(spec.tests):
        problems += _case_problems(document, ("tests", index), case, config)
        for address in case.expect:
            where = ("tests", index, "expect", address)
            if address not in addresses:
                reason = f"no target {address!r} in {config.file}{did_you_mean(address, addresses)}"
                problems.append(document.problem(where, reason))
            elif address not in bus_addresses and (owner := address.split("/")[1]) != case.pipe:
                runs = f"runs pipe {case.pipe!r}" if case.pipe else "puts events on a bus"
                reason = (
                    f"{address} is a stage of pipe {owner!r}, which this case does not run (it {runs}); "
                    f"test it in a case with `pipe: {owner}` and `records:`"
                )
                problems.append(document.problem(where, reason))
    if problems:
        raise ConfigErrors(problems)
    return spec, config


def _case_problems(
    document: Document, where: KeyPath, case: ConfigTestCase, config: LoadedConfig
) -> list[Problem]:
    """What the case gets wrong about its config, each with the fix."""
    problems: list[Problem] = []

    def problem(key: str | int | None, reason: str) -> None:
        problems.append(document.problem(where if key is None else (*where, key), reason))

    buses, pipes = config.model.buses, config.model.pipes
    declared = ", ".join(sorted(pipes)) or "none"
    if case.bus is not None and case.bus not in buses:
        problem("bus", f"no bus named {case.bus!r} in {config.file}")
    if case.events is not None and case.records is not None:
        problem(
            "records",
            "a case has `events` (put on a bus) or `records` (read by a pipe), not both: "
            "split it into two cases",
        )
    elif case.pipe is None and case.records is not None:
        if pipes:
            reason = (
                f"records are read by a pipe: name it with `pipe: NAME` ({config.file} declares {declared})"
            )
        else:
            reason = f"records are read by a pipe and {config.file} declares none: put `events` on a bus"
        problem("records", reason)
    elif case.pipe is not None and case.events is not None:
        problem(
            "events",
            f"`pipe: {case.pipe}` reads `records` (what its source delivers), not `events`: "
            "rename `events` to `records`, or drop `pipe` to put the events on a bus",
        )
    elif case.events is None and case.records is None:
        if case.pipe is None:
            problem(None, "a case needs `events` (put on a bus) or `pipe` with `records` (read by that pipe)")
        else:
            problem(
                None, f"`pipe: {case.pipe}` needs `records`: what its source delivers, one item a message"
            )
    if case.pipe is None:
        if case.enrichment is not None:
            problem("enrichment", "`enrichment` answers a pipe's enrichment: it needs `pipe` and `records`")
        return problems
    if case.bus is not None:
        problem(
            "bus", "a case runs a bus or a pipe, not both: drop `bus` (the buses a pipe feeds run anyway)"
        )
    pipe = pipes.get(case.pipe)
    if pipe is None:
        hint = did_you_mean(case.pipe, pipes) or f"; it declares {declared}"
        problem("pipe", f"no pipe named {case.pipe!r} in {config.file}{hint}")
        return problems
    kind = str(getattr(type(pipe.source), "kind", ""))
    if kind in EVENT_KINDS:
        for index, item in enumerate(case.records or ()):
            if not isinstance(item, dict):
                problems.append(
                    document.problem(
                        (*where, "records", index),
                        f"pipe {case.pipe} reads a {kind} source, whose records are {EVENT_KINDS[kind]}: "
                        f"each record is the event's detail, a mapping, not {_json_type(item)}",
                    )
                )
    if case.enrichment is not None:
        if pipe.enrichment is None:
            problem("enrichment", f"pipe {case.pipe} has no enrichment: drop `enrichment`")
        elif case.records is not None and len(case.enrichment) != len(case.records):
            problem(
                "enrichment",
                f"`enrichment` gives one answer a record, in order: {len(case.records)} record(s), "
                f"{len(case.enrichment)} answer(s)",
            )
    return problems


def run_test_file(path: str | Path) -> list[CaseResult]:
    """Run every case of one test file (``ConfigErrors`` if it or its config is invalid)."""
    spec, config = load_test_file(path)
    return anyio.run(_run_cases, spec, config)


def _recorder(address: str, config: TargetConfig) -> Target:
    return RecordingTarget(address)


def _without_source(name: str, pipe: PipeConfig) -> PipeConfig:
    # Only the stages' addresses are wanted: a real source might need a file or a server.
    from eventbus.pipes import BufferedSource

    return pipe.model_copy(update={"source": BufferedSource(arn=f"arn:eventbus:test:::{name}")})


async def _run_cases(spec: ConfigTestFile, config: LoadedConfig) -> list[CaseResult]:
    results = []
    for case in spec.tests:
        result = CaseResult(config.file, case.name)
        try:
            await _run_case(case, config, result)
        except EventBusError as exc:
            result.failures.append(f"{type(exc).__name__}: {exc}")
        results.append(result)
    return results


async def _run_case(case: ConfigTestCase, config: LoadedConfig, result: CaseResult) -> None:
    source = (
        None
        if case.pipe is None
        else case_source(case.pipe, config.model.pipes[case.pipe], case.records or [])
    )
    targets = _CaseTargets(config, case, source)

    def adapt(name: str, pipe: PipeConfig) -> PipeConfig:
        return pipe.model_copy(update={"source": source, "maximum_batching_window_in_seconds": 0})

    runtime = Runtime(
        [config], target_factory=targets, pipes=[case.pipe] if case.pipe else False, adapt_pipe=adapt
    )
    async with runtime:
        if case.pipe is not None:
            pipe = runtime.pipes[case.pipe]
            if pipe.state != "RUNNING":
                await pipe.start()
        else:
            await _put_events(runtime.bus(case.bus), case.events or [], result)
        result.failures += await _settle(runtime, source)
    for address, recorder in sorted(targets.recorders.items()):
        received = recorder.payloads
        if address in case.expect:
            result.failures += _compare(address, case.expect[address], received)
        elif case.strict and received:
            result.failures.append(f"{address}: expected nothing, received {_show(received)}")


async def _put_events(bus: EventBus, events: list[dict[str, Any]], result: CaseResult) -> None:
    entries = [to_entry(event) for event in events]
    step = bus.config.max_entries_per_put
    for start in range(0, len(entries), step):
        response = await bus.put_events(entries[start : start + step])
        for entry in response["Entries"]:
            if "ErrorCode" in entry:
                result.failures.append(
                    f"PutEvents refused an event: {entry['ErrorCode']}: {entry['ErrorMessage']}"
                )


async def _settle(runtime: Runtime, source: CaseSource | None) -> list[str]:
    """Wait until the pipe settled every record and no bus holds an event; what is left if not."""

    def pipes_done() -> bool:
        return source is None or (
            source.unsettled == 0 and all(p.in_flight == 0 for p in runtime.pipes.values())
        )

    def buses_done() -> bool:
        return not any(bus.pending() for bus in runtime.buses.values())

    with anyio.move_on_after(CASE_TIMEOUT):
        # Both in one look: a pipe's delivery to a bus is pending there before the record is settled.
        while not (pipes_done() and buses_done()):
            await anyio.sleep(0.005)
        return []
    failures = []
    if not pipes_done():
        assert source is not None
        (name, pipe), *_ = runtime.pipes.items()
        counts = ", ".join(f"{k} {v}" for k, v in pipe.metrics().items() if v)
        failures.append(
            f"pipe {name}: {source.unsettled} of {source.total} record(s) still unsettled after "
            f"{CASE_TIMEOUT:g} s ({counts or 'none received'})"
        )
    if not buses_done():
        failures.append(f"events still undelivered after {CASE_TIMEOUT:g} s")
    return failures


class _CaseTargets:
    """A case's target factory: a recorder for every address, kept here to compare afterwards."""

    def __init__(self, config: LoadedConfig, case: ConfigTestCase, source: CaseSource | None) -> None:
        self.buses = set(config.model.buses)
        self.enrichment = None if case.pipe is None else f"pipe/{case.pipe}/enrichment"
        self.answers = case.enrichment
        self.source = source
        self.recorders: dict[str, RecordingTarget] = {}

    def __call__(self, address: str, config: TargetConfig) -> Target:
        recorder = self.recorders[address] = RecordingTarget(address)
        if address == self.enrichment and self.source is not None:
            return _RecordedEnrichment(recorder, self.source, self.answers)
        if isinstance(config, BusTargetConfig) and config.bus in self.buses:
            return _RecordedTarget(config.build(), recorder)
        return recorder


class _RecordedTarget:
    """A real target that is recorded too, once it has taken a delivery."""

    def __init__(self, target: Target, recorder: RecordingTarget) -> None:
        self.target = target
        self.recorder = recorder
        self.max_batch_size = target.max_batch_size

    def __repr__(self) -> str:
        return f"{self.target!r} recorded as {self.recorder.name}"

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> Any:
        # After: a delivery the target refused is retried or dead-lettered, not received.
        response = await self.target.deliver(payloads, context)
        await self.recorder.deliver(payloads, context)
        return response

    async def aclose(self) -> None:
        await self.target.aclose()


class _RecordedEnrichment:
    """A pipe's enrichment in a case: records its input and answers what the case says."""

    max_batch_size = RecordingTarget.max_batch_size

    def __init__(self, recorder: RecordingTarget, source: CaseSource, answers: list[Any] | None) -> None:
        self.recorder = recorder
        self.source = source
        self.answers = answers

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> Any:
        from eventbus.pipes.stages import enrichment_items
        from eventbus.targets._common import parse_payload

        await self.recorder.deliver(payloads, context)
        if self.answers is None:
            # What a function returning the batch it was given answers: each input, unchanged.
            return [parse_payload(p) for p in payloads]
        # One answer a record, joined into the one response Pipes reads for the whole batch.
        items: list[Any] = []
        for record_id in context.event_ids:
            items += enrichment_items(self.answers[self.source.index[record_id]]) or []
        return items

    async def aclose(self) -> None:
        return None


def _json_type(value: Any) -> str:
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return "a boolean" if isinstance(value, bool) else "a number"


def _is_pattern(item: Any) -> bool:
    return isinstance(item, dict) and set(item) == {"pattern"} and isinstance(item["pattern"], dict | str)


def _compare(address: str, expected: Sequence[Any], received: list[Any]) -> list[str]:
    if len(expected) != len(received):
        return [
            f"{address}: expected {len(expected)} payload(s), received {len(received)}: {_show(received)}"
        ]
    left = list(received)
    failures = []
    # Exact payloads first, so a broad pattern does not take the payload an exact one needs.
    for item in sorted(expected, key=_is_pattern):
        if _is_pattern(item):
            pattern = Pattern(item["pattern"])
            found = next((p for p in left if isinstance(p, dict) and pattern.matches(p)), _NOTHING)
            want = f"a payload matching {json.dumps(item['pattern'])}"
        else:
            found = next((p for p in left if p == item), _NOTHING)
            want = f"the payload {json.dumps(item)}"
        if found is _NOTHING:
            failures.append(f"{address}: expected {want}; received {_show(received)}")
        else:
            left.remove(found)
    return failures


_NOTHING = object()


def _show(payloads: list[Any], limit: int = 300) -> str:
    text = json.dumps(payloads, default=str)
    return text if len(text) <= limit else text[:limit] + "..."
