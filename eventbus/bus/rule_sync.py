"""``RuleSync``: one rule table for every worker of a distributed bus.

Rules from the config (or from code run before the bus starts) are the same in every worker,
because every worker loads the same config. Rules and targets changed while the bus runs (Python
calls, the HTTP API: anything that drives the ``RuleTable``) are written to the backend's rule
bucket, one entry per rule, and every worker (the writer too) applies each entry to its table as
it comes: a rule added through one worker routes in all of them a moment later.

An entry describes the rule and its targets as data (``eventbus.targets.describe``). A target
put while the bus runs must be describable (a config's kind, a function importable by name), or
the other workers could not deliver to it: ``put_targets`` refuses it, naming the fix. A target
set before the bus started that cannot be described is written as ``{"Id": ..., "Local": true}``:
each worker keeps its own (every worker ran the same code).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import anyio

from eventbus._logger import get_logger
from eventbus.bus.delivery.retry import RetryPolicy
from eventbus.bus.rules import Rule, RuleTarget
from eventbus.bus.table import RuleTable
from eventbus.errors import BusValidationError
from eventbus.targets import describe

__all__ = ["RuleStore", "RuleSync", "rule_doc"]

_log = get_logger("eventbus.bus")


class RuleStore(Protocol):
    """Where a distributed backend keeps the rules put at run time (``RuleBucket`` on JetStream)."""

    async def put(self, name: str, doc: dict[str, Any]) -> None: ...

    async def delete(self, name: str) -> None: ...

    async def follow(self, apply: Callable[[str, dict[str, Any] | None], None], ready: anyio.Event) -> None: ...

    async def stop(self) -> None: ...


def _target_doc(target: RuleTarget) -> dict[str, Any]:
    described = describe.describe(target.target)
    if described is None:
        return {"Id": target.id, "Local": True}
    dead_letter = None
    if target.dead_letter is not None:
        dead_letter = describe.describe(target.dead_letter)
        if dead_letter is None:
            return {"Id": target.id, "Local": True}
    return {
        "Id": target.id,
        "Target": described,
        "Arn": target.arn,
        "Input": target.input,
        "InputPath": target.input_path,
        "InputTransformer": target.input_transformer,
        "RetryPolicy": target.retry_policy.model_dump(by_alias=True),
        "DeadLetterTarget": dead_letter,
        "MaxConcurrency": target.max_concurrency,
        "QueueSize": target.queue_size,
    }


def rule_doc(rule: Rule) -> dict[str, Any]:
    """The bucket entry of ``rule``: the rule and its targets as data (as JSON reads it back,
    so that an entry read from the store compares equal to the rule it was written from)."""
    doc = {
        "Name": rule.name,
        "EventPattern": rule.event_pattern,
        "ScheduleExpression": rule.schedule_expression,
        "State": rule.state,
        "Description": rule.description,
        "Targets": [_target_doc(t) for t in rule.targets],
    }
    loaded: dict[str, Any] = json.loads(json.dumps(doc))
    return loaded


def _rule_fields(doc: dict[str, Any]) -> tuple[Any, ...]:
    return (doc.get("EventPattern"), doc.get("ScheduleExpression"), doc.get("State"), doc.get("Description"))


class RuleSync:
    """Writes the rule changes of ``table`` to ``store`` and applies the store's entries to it."""

    def __init__(self, table: RuleTable, store: RuleStore) -> None:
        self.table = table
        self.store = store
        self.ready = anyio.Event()
        #: Rules changed here and not written yet, in order of change.
        self._pending: dict[str, None] = {}
        #: The last entry written for each rule (its echo from the store is not applied again).
        self._written: dict[str, dict[str, Any] | None] = {}
        self._wake = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()
        self._applying = False

    # -- this worker's changes -----------------------------------------------------------------

    def attach(self) -> None:
        """From now on, changes made to the table are written to the store."""
        self.table.on_change = self._changed
        self.table.vet_targets = self._vet

    def _vet(self, targets: Sequence[RuleTarget]) -> None:
        if self._applying:
            return
        for target in targets:
            for role, value in (("target", target.target), ("dead-letter target", target.dead_letter)):
                if value is not None and describe.describe(value) is None:
                    raise BusValidationError(
                        f"Target {target.id}: the {role} {value!r} lives in this process only, and "
                        f"bus {self.table.name} is shared by several workers, which must all deliver to "
                        "it. Put a target that can be described as data (a config kind such as "
                        "HttpTarget.create(url), or a FunctionTarget of a module-level function), or "
                        "put this one before the bus starts, in code every worker runs."
                    )

    def _changed(self, name: str) -> None:
        if self._applying:
            return
        self._pending[name] = None
        self._idle = anyio.Event() if self._idle.is_set() else self._idle
        self._wake.set()

    async def flush(self) -> None:
        """Until every change made here is written to the store."""
        await self._idle.wait()

    async def write(self) -> None:
        """Write the changes as they come (runs until cancelled)."""
        while True:
            if not self._pending:
                self._idle.set()
                self._wake = anyio.Event()
                await self._wake.wait()
                continue
            name = next(iter(self._pending))
            entry = self.table.rules.get(name)
            doc = None if entry is None else rule_doc(entry.rule)
            try:
                if doc is None:
                    await self.store.delete(name)
                else:
                    await self.store.put(name, doc)
            except Exception as exc:
                _log.warning("rule change not stored yet; trying again", bus=self.table.name, rule=name, error=str(exc))
                await anyio.sleep(1.0)
                continue
            self._written[name] = doc
            # Changed again while it was written: it stays pending, and is written again.
            if self.table.rules.get(name) is entry and (entry is None or rule_doc(entry.rule) == doc):
                self._pending.pop(name, None)

    # -- every worker's changes ------------------------------------------------------------------

    async def follow(self) -> None:
        await self.store.follow(self.apply, self.ready)

    def apply(self, name: str, doc: dict[str, Any] | None) -> None:
        """Make rule ``name`` of the table what ``doc`` says (``None``: deleted)."""
        if name in self._pending:
            return  # changed here since: this worker's write comes next, and wins
        if name in self._written and self._written[name] == doc:
            return  # the echo of this worker's own write
        self._applying = True
        try:
            self._apply(name, doc)
        except Exception as exc:
            _log.error("rule from the rules bucket not applied", bus=self.table.name, rule=name, error=str(exc))
        finally:
            self._applying = False

    def _apply(self, name: str, doc: dict[str, Any] | None) -> None:
        table = self.table
        current = table.rules.get(name)
        if doc is None:
            if current is not None:
                table.delete_rule(name, force=True)
            return
        if current is not None and rule_doc(current.rule) == doc:
            return
        if current is None or _rule_fields(rule_doc(current.rule)) != _rule_fields(doc):
            table.put_rule(
                name,
                doc.get("EventPattern"),
                schedule_expression=doc.get("ScheduleExpression"),
                state=doc.get("State") or "ENABLED",
                description=doc.get("Description"),
            )
        have = {t.id: t for t in table.rules[name].rule.targets}
        want = {t["Id"]: t for t in doc.get("Targets") or []}
        gone = [tid for tid in have if tid not in want]
        if gone:
            table.remove_targets(name, gone)
        put = []
        for tid, target_doc in want.items():
            if target_doc.get("Local"):
                if tid not in have:
                    _log.warning(
                        "target set in another process only; not delivered from this one",
                        bus=table.name,
                        rule=name,
                        target=tid,
                    )
                continue
            if tid in have and json.loads(json.dumps(_target_doc(have[tid]))) == target_doc:
                continue
            try:
                put.append(_rule_target(target_doc))
            except Exception as exc:
                _log.error(
                    "target from the rules bucket cannot be built here", bus=table.name, rule=name, target=tid, error=str(exc)
                )
        if put:
            table.put_targets(name, put)


def _rule_target(doc: dict[str, Any]) -> RuleTarget:
    dead_letter = doc.get("DeadLetterTarget")
    return RuleTarget(
        id=doc["Id"],
        target=describe.build(doc["Target"]),
        arn=doc.get("Arn"),
        input=doc.get("Input"),
        input_path=doc.get("InputPath"),
        input_transformer=doc.get("InputTransformer"),
        retry_policy=RetryPolicy.model_validate(doc.get("RetryPolicy") or {}),
        dead_letter=describe.build(dead_letter) if dead_letter else None,
        max_concurrency=doc.get("MaxConcurrency"),
        queue_size=doc.get("QueueSize"),
    )
