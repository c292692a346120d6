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
        fail:                            # targets that fail: N attempts of each event, or always
          orders/big/webhook: 2

      - name: a job read from the queue pages the ops team
        pipe: intake                     # a pipe instead of a bus...
        records:                         # ...reads records: message bodies, JSON values or text
          - {kind: job, id: j-1, priority: 9}
          - not JSON at all
        enrichment:                      # optional: what the enrichment answers, one for each
          - {id: j-1, owner: ops}        # record that passes the filter
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
the case's ``enrichment`` gives for each record that reaches it, or, without it, its input
unchanged (as a function returning the batch it was given would). Each recorder records what the
real target would receive: a pipe's function, command or http stage one list a call (the batch),
other kinds one payload a record. Addresses under ``fail`` refuse deliveries first (a retryable
error), and retries wait a millisecond, so the configured retry policy plays out in moments.

In a pipe case, only that pipe runs (started even when declared ``STOPPED``), and its source is
replaced by one holding the case's records, shaped as the configured kind shapes them:

- ``queue``: SQS messages of a queue of the case's own (``messageId``, ``body``, ``attributes``...)
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

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from eventbus.bus import Backoff
from eventbus.config.backends import MemoryBackend
from eventbus.config.build import Runtime
from eventbus.config.case_sources import EVENT_KINDS, CaseSource, case_source, reaching_enrichment
from eventbus.config.entries import to_entry
from eventbus.config.errors import ConfigErrors, KeyPath, Problem
from eventbus.config.load import Document, load_document
from eventbus.config.validate import LoadedConfig, did_you_mean, load_config, problems_from
from eventbus.errors import EventBusError, InvalidEventError, PatternError, RetryableError
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


def _fail_spec(value: Any) -> int | str:
    if value == "always" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value  # type: ignore[no-any-return]
    raise ValueError(
        f"how many attempts of each event or record fail: a whole number from 1, or always; not {value!r}"
    )


_FailSpec = Annotated[int | Literal["always"], BeforeValidator(_fail_spec)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigTestCase(_Model):
    name: str = Field(min_length=1)
    bus: str | None = None
    events: Annotated[list[dict[str, Any]], Field(min_length=1)] | None = None
    #: A pipe to run instead of a bus; it reads ``records``.
    pipe: str | None = None
    records: Annotated[list[_JsonValue], Field(min_length=1)] | None = None
    #: What the pipe's enrichment answers for each record that reaches it (passes the filter),
    #: in the order of ``records``.
    enrichment: list[_JsonValue] | None = None
    expect: dict[str, list[Any]] = Field(default_factory=dict)
    strict: bool = False
    #: Targets that fail: address -> how many attempts of each event (or record) fail before
    #: one succeeds, or ``always``.
    fail: dict[str, _FailSpec] = Field(default_factory=dict)

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
        # Beside the test file, as it was named (a relative path stays relative in messages).
        config_path = test_path.parent / spec.config
    config = load_config(config_path)
    built = Runtime(
        [config], target_factory=_recorder, adapt_pipe=_without_source, maps=False, backend=MemoryBackend()
    )
    addresses = set(built.targets)
    stages = ("target", "enrichment", "dead-letter")
    pipe_stages = {f"pipe/{name}/{stage}" for name in built.pipes for stage in stages}
    bus_addresses = addresses - pipe_stages
    problems = []
    for index, case in enumerate(spec.tests):
        problems += _case_problems(document, ("tests", index), case, config)
        named = [("expect", a) for a in case.expect] + [("fail", a) for a in case.fail]
        for section, address in named:
            where = ("tests", index, section, address)
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
        elif case.records is not None:
            reaching = reaching_enrichment(case.pipe, pipe, case.records)
            if len(case.enrichment) != len(reaching):
                dropped = [i for i in range(len(case.records)) if i not in set(reaching)]
                reach = f"{len(reaching)} record(s) reach it"
                if dropped:
                    listed = ", ".join(f"records[{i}]" for i in dropped)
                    reach += f" ({len(dropped)} of the {len(case.records)} filtered out: {listed})"
                problem(
                    "enrichment",
                    "`enrichment` gives one answer for each record that reaches the enrichment, in "
                    f"order: {reach}, {len(case.enrichment)} answer(s) given",
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


#: Retry waits in a case: the configured number of retries, each a millisecond apart, so a case
#: whose target fails reaches its dead letter in moments.
CASE_BACKOFF = Backoff(base=0.001, cap=0.001)


async def _run_case(case: ConfigTestCase, config: LoadedConfig, result: CaseResult) -> None:
    source = None
    answers: dict[int, Any] | None = None
    if case.pipe is not None:
        pipe_config = config.model.pipes[case.pipe]
        source = case_source(case.pipe, pipe_config, case.records or [])
        if case.enrichment is not None:
            reaching = reaching_enrichment(case.pipe, pipe_config, case.records or [])
            answers = dict(zip(reaching, case.enrichment, strict=True))
    targets = _CaseTargets(config, case, source, answers)

    def adapt(name: str, pipe: PipeConfig) -> PipeConfig:
        return pipe.model_copy(
            update={"source": source, "maximum_batching_window_in_seconds": 0, "backoff": CASE_BACKOFF}
        )

    runtime = Runtime(
        [config],
        # Hermetic: a case never reads nor writes the state a config's runtime.backend names.
        backend=MemoryBackend(),
        target_factory=targets,
        pipes=[case.pipe] if case.pipe else False,
        adapt_pipe=adapt,
        adapt_bus=lambda name, settings: settings.model_copy(update={"backoff": CASE_BACKOFF}),
        maps=False,
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
    """A case's target factory: a recorder for every address, kept here to compare afterwards.

    Each recorder sees what the real target would: a pipe stage of a kind that takes the batch
    as one list (function, command, http) is recorded one list a call. Addresses under ``fail``
    refuse deliveries first, as a failing target would.
    """

    def __init__(
        self,
        config: LoadedConfig,
        case: ConfigTestCase,
        source: CaseSource | None,
        answers: dict[int, Any] | None,
    ) -> None:
        self.buses = set(config.model.buses)
        self.enrichment = None if case.pipe is None else f"pipe/{case.pipe}/enrichment"
        self.answers = answers
        self.fail = case.fail
        self.source = source
        self.recorders: dict[str, RecordingTarget] = {}

    def __call__(self, address: str, config: TargetConfig) -> Target:
        recorder = self.recorders[address] = RecordingTarget(address)
        record: Target = _BatchRecorder(recorder) if config.batches_in_pipes else recorder
        target: Target
        if address == self.enrichment and self.source is not None:
            target = _RecordedEnrichment(record, self.source, self.answers)
        elif isinstance(config, BusTargetConfig) and config.bus in self.buses:
            target = _RecordedTarget(config.build(), record)
        else:
            target = record
        if address in self.fail:
            target = _Failing(target, address, self.fail[address])
        return target


class _BatchRecorder:
    """Records a pipe's batch as the one list a function, command or http target is invoked with."""

    def __init__(self, recorder: RecordingTarget) -> None:
        self.recorder = recorder
        self.max_batch_size = recorder.max_batch_size

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> Any:
        from eventbus.targets._common import invocation_bodies

        _, bodies = invocation_bodies(payloads, context)
        return await self.recorder.deliver(bodies, context)

    async def aclose(self) -> None:
        return None


class _Failing:
    """Fails the first ``times`` attempts of each event or record (``always``: every attempt)."""

    def __init__(self, target: Target, address: str, times: int | str) -> None:
        self.target = target
        self.address = address
        self.times = times
        self.max_batch_size = target.max_batch_size
        self.attempts: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"{self.target!r} failing {self.times}"

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> Any:
        ids = context.event_ids[: len(payloads)] or ("",)
        for event_id in ids:
            self.attempts[event_id] = self.attempts.get(event_id, 0) + 1
        if self.times == "always" or any(self.attempts[i] <= int(self.times) for i in ids):
            raise RetryableError(
                f"{self.address} failed on purpose (the case's fail: {self.times}), "
                f"attempt {max(self.attempts[i] for i in ids)}"
            )
        return await self.target.deliver(payloads, context)

    async def aclose(self) -> None:
        await self.target.aclose()


class _RecordedTarget:
    """A real target that is recorded too, once it has taken a delivery."""

    def __init__(self, target: Target, recorder: Target) -> None:
        self.target = target
        self.recorder = recorder
        self.max_batch_size = target.max_batch_size

    def __repr__(self) -> str:
        return f"{self.target!r} recorded"

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

    def __init__(self, recorder: Target, source: CaseSource, answers: dict[int, Any] | None) -> None:
        self.recorder = recorder
        self.source = source
        #: Position in the case's records -> the answer for that record.
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
            items += enrichment_items(self.answers.get(self.source.index[record_id])) or []
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
    left = list(received)
    missing: list[Any] = []
    # Exact payloads first, so a broad pattern does not take the payload an exact one needs.
    for item in sorted(expected, key=_has_pattern):
        found = next((p for p in left if _matches(item, p)), _NOTHING)
        if found is _NOTHING:
            missing.append(item)
        else:
            left.remove(found)
    if not missing and not left:
        return []
    if len(expected) != len(received):
        lines = [f"{address}: expected {len(expected)} payload(s), received {len(received)}: {_show(received)}"]
        lines += [f"{_INDENT}not received: {_want(item)}" for item in missing]
        lines += [f"{_INDENT}received, not expected: {_show_one(p)}" for p in left]
        return ["\n".join(lines)]
    failures = []
    for item in missing:
        lines = [f"{address}: expected {_want(item)}; received {_show(received)}"]
        lines += _difference(item, left)
        failures.append("\n".join(lines))
    return failures


def _matches(expected: Any, received: Any) -> bool:
    """An exact payload, a ``{pattern: ...}``, or a list of them for a batch (one per element)."""
    if _is_pattern(expected):
        return isinstance(received, dict) and bool(Pattern(expected["pattern"]).matches(received))
    if isinstance(expected, list) and _has_pattern(expected):
        return (
            isinstance(received, list)
            and len(received) == len(expected)
            and all(_matches(e, r) for e, r in zip(expected, received, strict=True))
        )
    return bool(expected == received)


def _has_pattern(item: Any) -> bool:
    return _is_pattern(item) or (isinstance(item, list) and any(_has_pattern(e) for e in item))


#: How the lines under a failure are indented (the command prints a failure 4 spaces in).
_INDENT = " " * 8


def _want(item: Any) -> str:
    if _is_pattern(item):
        return f"a payload matching {json.dumps(item['pattern'])}"
    if _has_pattern(item):
        return f"a batch matching {json.dumps(item)}"
    return f"the payload {json.dumps(item)}"


def _difference(item: Any, candidates: list[Any]) -> list[str]:
    """Why the closest unclaimed payload is not ``item``: a diff, or the pattern's reasons."""
    if not candidates:
        return []
    if _is_pattern(item):
        pattern = Pattern(item["pattern"])
        for candidate in candidates:
            reasons = pattern.explain(candidate) if isinstance(candidate, dict) else []
            if reasons:
                return [f"{_INDENT}{_show_one(candidate)} does not match: {'; '.join(reasons)}"]
        return []
    if not isinstance(item, dict | list):
        return []  # one line says it all: expected "j-3", received ["j-2"]
    want = _pretty(item)
    closest = max(candidates, key=lambda c: difflib.SequenceMatcher(None, want, _pretty(c)).ratio())
    diff = difflib.ndiff(want.splitlines(), _pretty(closest).splitlines())
    lines = [f"{_INDENT}the closest payload received differs (- expected, + received):"]
    lines += [f"{_INDENT}{line}" for line in diff if not line.startswith("? ")]
    return lines


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


_NOTHING = object()


def _show_one(payload: Any, limit: int = 300) -> str:
    text = json.dumps(payload, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def _show(payloads: list[Any], limit: int = 300) -> str:
    text = json.dumps(payloads, default=str)
    return text if len(text) <= limit else text[:limit] + "..."
