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

      - name: every row is scored; a refused one is reported with its line
        map: scores                      # a map, run over rows instead of its file...
        rows:                            # ...row objects (CSV: a mapping of columns), or the text
          - {id: 1, amount: "10.00"}
          - {id: 2, amount: "-4"}
        summary: {status: SUCCEEDED, rows: 2, failed: 1, failures: [{line: 3, error: SDK_CLIENT_ERROR}]}
        expect:
          map/scores/reduce:             # the map's stages: map/NAME/reduce, /dead-letter
            - pattern: {line: [2], status: [SUCCEEDED]}
            - pattern: {line: [3], status: [FAILED]}

      - name: the chat route answers, then refuses a caller without a key
        route: chat                      # an invoke route, called through the front's own routes
        request:
          - {body: {prompt: hi}, key: web-key}
          - {body: {prompt: hi}}
        answer:                          # one a request: status, body (exact or pattern), headers
          - {status: 200, body: "the reply", headers: {X-Cache: MISS}}
          - {status: 401, body: {pattern: {error: [MissingApiKey]}}}

A case runs one thing: ``events`` (put on a bus), ``records`` (read by the pipe ``pipe`` names),
``rows`` (read by the map ``map`` names) or ``request`` (sent to the route ``route`` names).

In a map case the map's ``function`` target runs for real (the config's own row function) over
a file of the case's rows, named as the configured file; its reduce, dead letter and a row target
of any other kind are recorded (a reduce function: one list of every result a call, answering
null). ``summary`` compares the fields it gives with the map's ``MapSummary``. In a route case the
requests go through ``InvokeFront``'s own HTTP routes in the process (``direct_front``), on a
clock that stands still; the route's ``function`` target runs for real, another kind is recorded.
A request with ``job: true`` goes to ``POST /jobs/ROUTE`` and is answered as ``GET /jobs/ID``
answers once the job has ended.

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
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
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

from eventbus.bus import Backoff, ManualClock
from eventbus.config.backends import MemoryBackend
from eventbus.config.build import Runtime
from eventbus.config.case_sources import EVENT_KINDS, CaseSource, case_source, reaching_enrichment
from eventbus.config.entries import to_entry
from eventbus.config.errors import ConfigErrors, KeyPath, Problem
from eventbus.config.load import Document, load_document
from eventbus.config.schema import REF, kind_of
from eventbus.config.validate import LoadedConfig, did_you_mean, load_config, problems_from
from eventbus.errors import EventBusError, InvalidEventError, PatternError, RetryableError
from eventbus.patterns import Pattern
from eventbus.targets.base import DeliveryContext, Target, TargetConfig
from eventbus.targets.bus import BusTargetConfig
from eventbus.targets.recording import RecordingTarget

if TYPE_CHECKING:
    from eventbus.bus import EventBus
    from eventbus.maps import MapConfig
    from eventbus.pipes import PipeConfig

__all__ = [
    "CaseResult",
    "ConfigTestCase",
    "ConfigTestFile",
    "MapSummaryExpectation",
    "RouteAnswer",
    "RouteRequest",
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


#: What a failure listed under ``summary.failures`` may name (a ``RowFailure``'s fields).
_FAILURE_FIELDS = ("file", "line", "error", "cause", "attempts")


def _failure_spec(value: Any) -> Any:
    if _is_pattern(value):
        try:
            Pattern(value["pattern"])
        except PatternError as exc:
            raise ValueError(str(exc)) from None
        return value
    if not isinstance(value, dict) or not value:
        raise ValueError(
            f"a failed row is a mapping of some of {', '.join(_FAILURE_FIELDS)} "
            "(e.g. {line: 3, error: SDK_CLIENT_ERROR}), or a pattern: over them"
        )
    unknown = [key for key in value if key not in _FAILURE_FIELDS]
    if unknown:
        raise ValueError(
            f"a failed row has no field {unknown[0]!r}: its fields are {', '.join(_FAILURE_FIELDS)}"
            f"{did_you_mean(str(unknown[0]), _FAILURE_FIELDS)}"
        )
    return value


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


#: Case keys that take one mapping or a list of them (a mapping is read as a list of one).
_ONE_OR_MANY = ("request", "answer")


def _as_lists(document: Document) -> None:
    """Make each one-mapping ``request``/``answer`` a list of one before validation, remembering
    where it was written, so that a problem inside it points at the mapping as written."""
    tests = document.data.get("tests") if isinstance(document.data, dict) else None
    if not isinstance(tests, list):
        return
    for index, case in enumerate(tests):
        if not isinstance(case, dict):
            continue
        for key in _ONE_OR_MANY:
            if isinstance(case.get(key), dict):
                case[key] = [case[key]]
                document.aliases[("tests", index, key, 0)] = ("tests", index, key)


class MapSummaryExpectation(_Model):
    """What a map case's summary must say; only the fields given are compared."""

    status: Literal["SUCCEEDED", "FAILED", "ABORTED"] | None = None
    rows: int | None = Field(default=None, ge=0)
    succeeded: int | None = Field(default=None, ge=0)
    failed: int | None = Field(default=None, ge=0)
    malformed: int | None = Field(default=None, ge=0)
    aborted: int | None = Field(default=None, ge=0)
    retried: int | None = Field(default=None, ge=0)
    dead_lettered: int | None = Field(default=None, ge=0)
    results_written: int | None = Field(default=None, ge=0)
    #: Failed rows by error code, all of them.
    errors: dict[str, int] | None = None
    #: The failed rows, all of them, in any order: each the fields it checks, or a pattern.
    failures: list[Annotated[Any, AfterValidator(_failure_spec)]] | None = None
    cause: str | None = None
    #: What a reduce function answered (exact, or a ``pattern:``).
    output: _JsonValue = None


class RouteRequest(_Model):
    """One request to an ``invoke`` route: ``POST /invoke/ROUTE``."""

    #: A string is sent as written; any other value as its JSON text; none: an empty body.
    body: _JsonValue = None
    #: The route's API key, sent in the route's key header (``invoke.api_key_header``).
    key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    #: Send it as a job (``POST /jobs/ROUTE``): the answer is then the job as ``GET /jobs/ID``
    #: gives it once it has finished (or the refusal, when the job was not taken).
    job: bool = False

    def content(self) -> bytes:
        if "body" not in self.model_fields_set:
            return b""
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, ensure_ascii=False).encode()


class RouteAnswer(_Model):
    """What the front answers a request: its status, the body (exact or a pattern), headers."""

    status: int = Field(default=200, ge=100, le=599)
    #: The body parsed from JSON (text that is not JSON stays a string); ``pattern:`` matches it.
    body: _JsonValue = None
    #: Headers the answer has (names in any case; other headers are not compared).
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("body")
    @classmethod
    def _pattern_is_valid(cls, value: Any) -> Any:
        if _is_pattern(value):
            try:
                Pattern(value["pattern"])
            except PatternError as exc:
                raise ValueError(str(exc)) from None
        return value


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
    #: A map to run over ``rows`` instead of its file.
    map: str | None = None
    #: The map's rows: row objects (a JSON Lines line each, or a CSV row of the header's columns),
    #: or the file's text as written.
    rows: Annotated[list[_JsonValue], Field(min_length=1)] | Annotated[str, Field(min_length=1)] | None = None
    #: What the map's summary must say.
    summary: MapSummaryExpectation | None = None
    #: An ``invoke`` route to send ``request`` to.
    route: str | None = None
    #: One request, or a list of them sent in order.
    request: Annotated[list[RouteRequest], BeforeValidator(_one_or_many), Field(min_length=1)] | None = None
    #: What the front answers: one answer for each request, in order.
    answer: Annotated[list[RouteAnswer], BeforeValidator(_one_or_many)] | None = None
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
    _as_lists(document)
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
    stages = _stages(config, set(built.pipes))
    addresses = set(built.targets) | set(stages)
    problems = []
    for index, case in enumerate(spec.tests):
        problems += _case_problems(document, ("tests", index), case, config)
        named = [("expect", a) for a in case.expect] + [("fail", a) for a in case.fail]
        for section, address in named:
            where = ("tests", index, section, address)
            reason = _address_problem(section, address, case, config, addresses, stages)
            if reason is not None:
                problems.append(document.problem(where, reason))
    if problems:
        raise ConfigErrors(problems)
    return spec, config


@dataclass(frozen=True, slots=True)
class _Stage:
    """A target address that belongs to a pipe, a map or a route rather than to a bus."""

    owner: Literal["pipe", "map", "route"]
    name: str
    #: The target's kind (``function``, ``sql``...), ``bus`` included.
    kind: str


def _stages(config: LoadedConfig, pipes: set[str]) -> dict[str, _Stage]:
    model = config.model
    found: dict[str, _Stage] = {}
    for name in pipes:
        for stage in ("target", "enrichment", "dead-letter"):
            found[f"pipe/{name}/{stage}"] = _Stage("pipe", name, "")
    for name, map_config in model.maps.items():
        for stage in ("target", "reduce", "dead_letter"):
            spec = getattr(map_config, stage)
            if spec is not None:
                found[f"map/{name}/{stage.replace('_', '-')}"] = _Stage("map", name, _kind(model, spec))
    for name, route in model.invoke.routes.items():
        found[f"invoke/{name}/target"] = _Stage("route", name, _kind(model, route.target))
    return found


def _kind(model: Any, spec: Any) -> str:
    """The kind of a target entry or config, ``{ref: NAME}`` followed."""
    kind = kind_of(spec)
    if kind == REF:
        kind = kind_of(model.targets.get(getattr(spec, REF)))
    return kind or str(getattr(type(spec), "kind", ""))


def _runs(case: ConfigTestCase) -> str:
    """What a case runs, in the words of a message."""
    if case.pipe is not None:
        return f"runs pipe {case.pipe!r}"
    if case.map is not None:
        return f"runs map {case.map!r}"
    if case.route is not None:
        return f"sends requests to route {case.route!r}"
    return "puts events on a bus"


def _runs_for_real(case: ConfigTestCase, address: str, stage: _Stage | None) -> bool:
    """Whether ``address`` is a function the case runs as the config says (not recorded): the
    row function of the map it runs, the target of the route it calls."""
    if stage is None or stage.kind != "function" or not address.endswith("/target"):
        return False
    return (stage.owner, stage.name) in (("map", case.map), ("route", case.route))


def _address_problem(
    section: str,
    address: str,
    case: ConfigTestCase,
    config: LoadedConfig,
    addresses: set[str],
    stages: dict[str, _Stage],
) -> str | None:
    if address not in addresses:
        return f"no target {address!r} in {config.file}{did_you_mean(address, addresses)}"
    stage = stages.get(address)
    if stage is None:
        return None
    if (case.map is not None and case.map not in config.model.maps) or (
        case.route is not None and case.route not in config.model.invoke.routes
    ):
        return None  # the unknown name is the problem reported
    if stage.owner == "pipe" and stage.name != case.pipe:
        return (
            f"{address} is a stage of pipe {stage.name!r}, which this case does not run (it {_runs(case)}); "
            f"test it in a case with `pipe: {stage.name}` and `records:`"
        )
    if stage.owner == "map" and stage.name != case.map:
        return (
            f"{address} is a stage of map {stage.name!r}, which this case does not run (it {_runs(case)}); "
            f"test it in a case with `map: {stage.name}` and `rows:`"
        )
    if stage.owner == "route" and stage.name != case.route:
        return (
            f"{address} is the target of route {stage.name!r}, which this case does not call (it {_runs(case)}); "
            f"test it in a case with `route: {stage.name}` and `request:`"
        )
    if section == "fail" and stage.owner != "pipe":
        what = (
            "a map's rows fail when its function raises: give it rows it refuses"
            if stage.owner == "map"
            else "a route's target fails when it raises on a request: send it one it refuses"
        )
        return f"`fail` applies to the targets of buses and pipes, not to {address}: {what}"
    if _runs_for_real(case, address, stage):
        where = "the summary and the reduce's results" if stage.owner == "map" else "`answer`"
        return (
            f"{address} is a function, which a {stage.owner} case runs for real rather than recording: "
            f"check what it answered in {where} instead"
        )
    return None


def _case_problems(
    document: Document, where: KeyPath, case: ConfigTestCase, config: LoadedConfig
) -> list[Problem]:
    """What the case gets wrong about its config, each with the fix."""
    problems: list[Problem] = []

    def problem(key: str | int | None, reason: str) -> None:
        problems.append(document.problem(where if key is None else (*where, key), reason))

    if _runs_map_or_route(case):
        return _map_or_route_problems(document, where, case, config)
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


def _runs_map_or_route(case: ConfigTestCase) -> bool:
    given = (case.map, case.rows, case.summary, case.route, case.request, case.answer)
    return any(item is not None for item in given)


def _map_or_route_problems(
    document: Document, where: KeyPath, case: ConfigTestCase, config: LoadedConfig
) -> list[Problem]:
    """What a map or route case gets wrong, each with the fix."""
    problems: list[Problem] = []

    def problem(key: str | int | None, reason: str) -> None:
        problems.append(document.problem(where if key is None else (*where, key), reason))

    runs_map = case.map is not None or (case.route is None and (case.rows is not None or case.summary is not None))
    kind, inputs = ("map", "rows") if runs_map else ("route", "request")
    if case.map is not None and case.route is not None:
        problem("route", "a case runs a map or a route, not both: split it into two cases")
        return problems
    for key in ("bus", "pipe", "events", "records", "enrichment"):
        if getattr(case, key) is not None:
            problem(
                key,
                f"a {kind} case sends `{inputs}` to its {kind}, not `{key}`: "
                f"drop `{key}`, or test the {'pipe' if key in ('pipe', 'records', 'enrichment') else 'bus'} "
                "in a case of its own",
            )
    model = config.model
    if runs_map:
        for key in ("request", "answer"):
            if getattr(case, key) is not None:
                problem(key, f"`{key}` belongs to a route case (`route: NAME`), not to a map case")
        problems += _named_problems(document, where, "map", case.map, model.maps, config.file, "rows")
        if case.map is None:
            return problems
        if case.rows is None:
            problem(None, f"`map: {case.map}` needs `rows`: row objects, or the text of its file as written")
        map_config = model.maps.get(case.map)
        if map_config is not None and case.rows is not None:
            try:
                _rows_text(map_config, case.rows)
            except _RowsProblem as exc:
                problems.append(document.problem((*where, "rows", *exc.where), str(exc)))
        return problems
    for key in ("rows", "summary"):
        if getattr(case, key) is not None:
            problem(key, f"`{key}` belongs to a map case (`map: NAME`), not to a route case")
    problems += _named_problems(document, where, "route", case.route, model.invoke.routes, config.file, "request")
    if case.route is None:
        return problems
    if case.request is None:
        problem(None, f"`route: {case.route}` needs `request`: a body, and the route's API key if it has keys")
    elif case.answer is not None:
        requests, answers = len(case.request), len(case.answer)
        if requests != answers:
            problem(
                "answer",
                f"`answer` gives one answer for each request, in order: {requests} request(s), "
                f"{answers} answer(s) given",
            )
    return problems


def _named_problems(
    document: Document,
    where: KeyPath,
    kind: str,
    name: str | None,
    declared: Any,
    file: str,
    inputs: str,
) -> list[Problem]:
    """``map: NAME`` or ``route: NAME`` naming nothing, or ``rows``/``request`` without it."""
    listed = ", ".join(sorted(declared)) or "none"
    if name is None:
        sent = "rows go" if inputs == "rows" else "a request goes"
        if declared:
            reason = f"{sent} to a {kind}: name it with `{kind}: NAME` ({file} declares {listed})"
        else:
            reason = f"{sent} to a {kind} and {file} declares none"
        return [document.problem((*where, inputs), reason)]
    if name not in declared:
        hint = did_you_mean(name, declared) or f"; it declares {listed}"
        return [document.problem((*where, kind), f"no {kind} named {name!r} in {file}{hint}")]
    return []


class _RowsProblem(ValueError):
    def __init__(self, where: KeyPath, reason: str) -> None:
        super().__init__(reason)
        self.where = where


def _rows_text(map_config: Any, rows: list[Any] | str) -> str:
    """The text of the file a map case's ``rows`` stand for, in the format the map reads.

    Text is the file as written. A list is one JSON Lines line a row, or, for a CSV map, a header
    (unless the source gives ``header``) and one CSV line a row, each row a mapping of its columns
    (all the header's, scalars: the map hands the function strings, as it would from the file).
    """
    from eventbus.errors import ConfigError
    from eventbus.pipes.sources.files import file_format

    source = map_config.source.file
    if isinstance(rows, str):
        return rows if rows.endswith("\n") else rows + "\n"
    try:
        form = file_format(Path(source.paths[0]), source.format)
    except ConfigError as exc:
        raise _RowsProblem((), str(exc)) from None
    if form == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    import csv
    import io

    columns = list(source.header) if source.header else None
    out = io.StringIO()
    writer = csv.writer(out, delimiter=source.delimiter, lineterminator="\n")
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise _RowsProblem(
                (index,),
                f"map reads CSV: each row is a mapping of its columns, not {_json_type(row)} "
                "(or give `rows` as the file's text)",
            )
        if columns is None:
            columns = list(row)
            writer.writerow(columns)
        if list(row) != columns and set(row) != set(columns):
            raise _RowsProblem(
                (index,),
                f"a CSV row has every column of the header ({', '.join(columns)}), this one has "
                f"{', '.join(map(str, row)) or 'none'}",
            )
        cells = []
        for column in columns:
            value = row[column]
            if isinstance(value, dict | list):
                raise _RowsProblem((index, column), "a CSV cell is a string, a number or a boolean, not a " + (
                    "mapping" if isinstance(value, dict) else "list"))
            cells.append("" if value is None else value if isinstance(value, str) else json.dumps(value))
        writer.writerow(cells)
    return out.getvalue()


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

    with tempfile.TemporaryDirectory(prefix="eventbus-case-") as folder:
        runtime = Runtime(
            [config],
            # Hermetic: a case never reads nor writes the state a config's runtime.backend names.
            backend=MemoryBackend(),
            target_factory=targets,
            pipes=[case.pipe] if case.pipe else False,
            adapt_pipe=adapt,
            adapt_bus=lambda name, settings: settings.model_copy(update={"backoff": CASE_BACKOFF}),
            maps=[case.map] if case.map else False,
            adapt_map=lambda name, settings: _case_map(settings, case.rows or [], Path(folder)),
        )
        async with runtime:
            if case.pipe is not None:
                pipe = runtime.pipes[case.pipe]
                if pipe.state != "RUNNING":
                    await pipe.start()
            elif case.map is not None:
                result.failures += await _run_map(runtime, case)
            elif case.route is not None:
                result.failures += await _send_requests(runtime, case)
            else:
                await _put_events(runtime.bus(case.bus), case.events or [], result)
            result.failures += await _settle(runtime, source)
    for address, recorder in sorted(targets.recorders.items()):
        received = recorder.payloads
        if address in case.expect:
            result.failures += _compare(address, case.expect[address], received)
        elif case.strict and received:
            result.failures.append(f"{address}: expected nothing, received {_show(received)}")


def _case_map(settings: MapConfig, rows: list[Any] | str, folder: Path) -> MapConfig:
    """The map reading a file of the case's rows, named as its own file is (results name it)."""
    source = settings.source.file
    path = folder / Path(source.paths[0]).name
    path.write_text(_rows_text(settings, rows), encoding=source.encoding)
    return settings.model_copy(
        update={
            "source": settings.source.model_copy(update={"file": source.model_copy(update={"path": str(path)})}),
            "backoff": CASE_BACKOFF,
            "progress": False,
            "log_level": "OFF",
        }
    )


async def _run_map(runtime: Runtime, case: ConfigTestCase) -> list[str]:
    """Wait for the map to end; how its summary differs from the case's ``summary``."""
    assert case.map is not None
    try:
        summary = (await runtime.wait_maps(CASE_TIMEOUT))[case.map]
    except TimeoutError:
        counts = ", ".join(f"{k} {v}" for k, v in runtime.maps[case.map].metrics().items() if v and k != "status")
        return [f"map {case.map}: not ended after {CASE_TIMEOUT:g} s ({counts})"]
    if case.summary is None:
        return []
    got = summary.to_dict()
    failures = []
    label = f"map/{case.map} summary"
    for key in sorted(case.summary.model_fields_set):
        want = getattr(case.summary, key)
        if key == "failures":
            shown = [{k: v for k, v in f.items() if k in _FAILURE_FIELDS} for f in got["failures"]]
            expected = [item if _is_pattern(item) else {"pattern": {k: [v] for k, v in item.items()}} for item in want]
            failures += _compare(f"{label}.failures", expected, shown)
        elif key == "output":
            failures += _compare(f"{label}.output", [want], [got["output"]])
        elif want != got[key]:
            failures.append(f"{label}.{key}: expected {json.dumps(want)}, got {json.dumps(got[key], default=str)}")
    return failures


#: The ``ManualClock`` a route case's front runs on starts here and never moves: within a case,
#: a rate limit's tokens do not come back and a cached answer does not expire.
ROUTE_CLOCK_START = datetime(2026, 1, 1, tzinfo=UTC)


async def _send_requests(runtime: Runtime, case: ConfigTestCase) -> list[str]:
    """Send each request through the front's own routes; how each answer differs from ``answer``."""
    # The server's floor, reached from here only when a case calls a route.
    from eventbus.server.invoke.direct import direct_front

    assert case.route is not None
    requests = case.request or []
    expected = case.answer or []
    failures: list[str] = []
    async with direct_front(runtime, clock=ManualClock(ROUTE_CLOCK_START)) as front:
        for index, request in enumerate(requests):
            headers = dict(request.headers)
            if request.key is not None:
                headers[front.key_header] = request.key
            if request.job:
                try:
                    answer = await front.job(case.route, request.content(), headers, timeout=CASE_TIMEOUT)
                except TimeoutError:
                    failures.append(f"route {case.route}, request {index + 1}: the job had not ended after {CASE_TIMEOUT:g} s")
                    continue
            else:
                answer = await front.invoke(case.route, request.content(), headers)
            if index < len(expected):
                failures += _compare_answer(f"route {case.route}, request {index + 1}", expected[index], answer)
    return failures


def _compare_answer(label: str, expected: RouteAnswer, answer: Any) -> list[str]:
    text = answer.body.decode("utf-8", "replace")
    try:
        body: Any = json.loads(text) if text else None
    except ValueError:
        body = text
    shown = f"{answer.status} {_show_one(body)}"
    failures = []
    if expected.status != answer.status:
        failures.append(f"{label}: expected status {expected.status}, answered {shown}")
    if "body" in expected.model_fields_set and not _matches(expected.body, body):
        lines = [f"{label}: expected the body to be {_want(expected.body)}; answered {shown}"]
        lines += _difference(expected.body, [body])
        failures.append("\n".join(lines))
    for name, value in expected.headers.items():
        got = answer.headers.get(name.lower())
        if got != value:
            failures.append(
                f"{label}: expected header {name}: {value}; "
                + (f"answered {name}: {got}" if got is not None else "the answer has no such header")
            )
    return failures


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
        #: The function that runs for real: the row function of the map a case runs, the
        #: target of the route it calls (what the case is about).
        self.real = {f"map/{case.map}/target", f"invoke/{case.route}/target"}
        self.reduce = None if case.map is None else f"map/{case.map}/reduce"
        self.recorders: dict[str, RecordingTarget] = {}

    def __call__(self, address: str, config: TargetConfig) -> Target:
        if address in self.real and config.kind == "function":
            return config.build()
        recorder = self.recorders[address] = RecordingTarget(address)
        record: Target = _BatchRecorder(recorder) if config.batches_in_pipes else recorder
        target: Target
        if address == self.reduce and config.kind == "function":
            # Given every result in one call, as the function would be (one list recorded).
            target = _RecordedReduceFunction(recorder)
        elif address == self.enrichment and self.source is not None:
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


class _RecordedReduceFunction:
    """A map's reduce function in a case: records the list of results it is given, answers null."""

    def __init__(self, recorder: RecordingTarget) -> None:
        self.recorder = recorder
        self.max_batch_size = recorder.max_batch_size

    async def invoke(self, results: Any) -> Any:
        await self.recorder.deliver([json.dumps(results)], DeliveryContext(kind="map", target_id="reduce"))
        return None

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> Any:
        return await self.recorder.deliver(payloads, context)

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
