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

Every target (dead letters included) is swapped for a recording one, so nothing real is called.
Pipes are not run: their sources are outside the process; test them with ``eventbus run``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from eventbus.config.build import Runtime
from eventbus.config.entries import to_entry
from eventbus.config.errors import ConfigErrors
from eventbus.config.load import load_document
from eventbus.config.validate import LoadedConfig, did_you_mean, load_config, problems_from
from eventbus.errors import EventBusError, InvalidEventError, PatternError
from eventbus.patterns import Pattern
from eventbus.targets.base import Target, TargetConfig
from eventbus.targets.recording import RecordingTarget

__all__ = [
    "CaseResult",
    "ConfigTestCase",
    "ConfigTestFile",
    "find_test_files",
    "is_test_file",
    "load_test_file",
    "run_test_file",
]

#: How long a case waits for its events to reach the recording targets.
CASE_TIMEOUT = 10.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigTestCase(_Model):
    name: str = Field(min_length=1)
    bus: str | None = None
    events: list[dict[str, Any]] = Field(min_length=1)
    expect: dict[str, list[Any]] = Field(default_factory=dict)
    strict: bool = False

    @field_validator("events")
    @classmethod
    def _events_are_entries(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for item in value:
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
        from eventbus.config.errors import Problem

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
    addresses = set(Runtime([config], target_factory=_recorder, pipes=False).targets)
    problems = []
    for index, case in enumerate(spec.tests):
        if case.bus is not None and case.bus not in config.model.buses:
            problems.append(
                document.problem(("tests", index, "bus"), f"no bus named {case.bus!r} in {config.file}")
            )
        for address in case.expect:
            if address not in addresses:
                reason = f"no target {address!r} in {config.file}{did_you_mean(address, addresses)}"
                problems.append(document.problem(("tests", index, "expect", address), reason))
    if problems:
        raise ConfigErrors(problems)
    return spec, config


def run_test_file(path: str | Path) -> list[CaseResult]:
    """Run every case of one test file (``ConfigErrors`` if it or its config is invalid)."""
    spec, config = load_test_file(path)
    return anyio.run(_run_cases, spec, config)


def _recorder(address: str, config: TargetConfig) -> Target:
    return RecordingTarget(address)


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
    runtime = Runtime([config], target_factory=_recorder, pipes=False)
    bus = runtime.bus(case.bus)
    entries = [to_entry(event) for event in case.events]
    async with runtime:
        step = bus.config.max_entries_per_put
        for start in range(0, len(entries), step):
            response = await bus.put_events(entries[start : start + step])
            for entry in response["Entries"]:
                if "ErrorCode" in entry:
                    result.failures.append(
                        f"PutEvents refused an event: {entry['ErrorCode']}: {entry['ErrorMessage']}"
                    )
        if not await runtime.wait_idle(CASE_TIMEOUT):
            result.failures.append(f"events still undelivered after {CASE_TIMEOUT:g} s")
    for address, target in sorted(runtime.targets.items()):
        assert isinstance(target, RecordingTarget)
        received = target.payloads
        if address in case.expect:
            result.failures += _compare(address, case.expect[address], received)
        elif case.strict and received:
            result.failures.append(f"{address}: expected nothing, received {_show(received)}")


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
