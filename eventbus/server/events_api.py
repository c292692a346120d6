"""The EventBridge operations on buses, rules, targets and events, over the library's ``EventBus``.

Each handler takes the request's JSON object and returns the response's. Validation and error
messages are the library's own (``EventBus.put_rule`` judges a pattern, ``RuleTarget`` an input
transformer, ``Pattern`` a TestEventPattern); the handlers only translate between AWS's request
shapes and the library's calls, map target ARNs onto targets (``arns.py``), and record what the
API created in the ``ResourceStore``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from eventbus import EventBus, Pattern, Rule, RuleTarget
from eventbus._logger import get_logger
from eventbus.bus.rules import rule_arn
from eventbus.server.awsjson import Handler
from eventbus.server.buses import bus_name
from eventbus.server.errors import ApiError
from eventbus.server.model import timestamp
from eventbus.server.paging import page
from eventbus.server.state import ServerState
from eventbus.server.tags_api import TagsApi
from eventbus.targets.arns import UnmappableArnError

_log = get_logger("eventbus.server")

__all__ = ["EventsApi"]

#: Fields TestEventPattern's Event must have (AWS refuses an event without them).
EVENT_FIELDS = ("id", "account", "source", "time", "region", "detail-type")


class EventsApi:
    """Handlers for PutEvents, the bus, rule and target operations, and TestEventPattern."""

    def __init__(self, state: ServerState, tags: TagsApi | None = None) -> None:
        self.state = state
        #: Where CreateEventBus and PutRule put their ``Tags`` (and deletes forget them).
        self.tags = tags

    def handlers(self) -> dict[str, Handler]:
        return {
            "PutEvents": self.put_events,
            "CreateEventBus": self.create_event_bus,
            "DeleteEventBus": self.delete_event_bus,
            "DescribeEventBus": self.describe_event_bus,
            "ListEventBuses": self.list_event_buses,
            "PutRule": self.put_rule,
            "DeleteRule": self.delete_rule,
            "DescribeRule": self.describe_rule,
            "ListRules": self.list_rules,
            "EnableRule": self.enable_rule,
            "DisableRule": self.disable_rule,
            "ListRuleNamesByTarget": self.list_rule_names_by_target,
            "PutTargets": self.put_targets,
            "RemoveTargets": self.remove_targets,
            "ListTargetsByRule": self.list_targets_by_rule,
            "TestEventPattern": self.test_event_pattern,
        }

    # -- PutEvents ---------------------------------------------------------------------------

    async def put_events(self, params: dict[str, Any]) -> dict[str, Any]:
        entries = params["Entries"]
        buses = self.state.buses
        names = {entry.get("EventBusName") for entry in entries}
        if len(names) == 1:
            # The usual call: every entry for one bus, which judges them all.
            (name,) = names
            try:
                bus = buses.get(name)
            except ApiError as exc:
                return _all_failed(len(entries), exc)
            return await bus.put_events(_for_bus(entries, bus))
        results: list[dict[str, Any]] = [{} for _ in entries]
        groups: dict[str, list[int]] = {}
        for index, entry in enumerate(entries):
            try:
                groups.setdefault(buses.get(entry.get("EventBusName")).name, []).append(index)
            except ApiError as exc:
                results[index] = {"ErrorCode": exc.code, "ErrorMessage": exc.message}
        for name, positions in groups.items():
            bus = buses.get(name)
            answer = await bus.put_events(_for_bus([entries[i] for i in positions], bus))
            for position, result in zip(positions, answer["Entries"], strict=True):
                results[position] = result
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}

    # -- buses -------------------------------------------------------------------------------

    async def create_event_bus(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("EventSourceName"):
            raise ApiError("ValidationException", "Partner event sources are not served by eventbus.")
        entry = await self.state.buses.create(params["Name"], params.get("Description"))
        self.state.store.save("bus", params["Name"], _only(params, "Name", "Description"))
        if params.get("Tags") and self.tags is not None:
            self.tags.set(entry.bus.arn, params["Tags"])
        return _clean({"EventBusArn": entry.bus.arn, "Description": entry.description})

    async def delete_event_bus(self, params: dict[str, Any]) -> None:
        name = params["Name"]
        entry = await self.state.buses.delete(name)
        if entry is None:
            return None
        self.state.store.delete("bus", name)
        if self.tags is not None:
            self.tags.forget_under(entry.bus.arn, rule_arn(entry.bus.config.region, entry.bus.config.account, name, ""))
        for key in [k for k in self.state.rule_docs if k[0] == name]:
            del self.state.rule_docs[key]
            self.state.store.delete("rule", f"{key[0]}/{key[1]}")
        for target in [k for k in self.state.target_docs if k[0] == name]:
            del self.state.target_docs[target]
        return None

    async def describe_event_bus(self, params: dict[str, Any]) -> dict[str, Any]:
        entry = self.state.buses.entry(params.get("Name"))
        return _clean(
            {
                "Name": entry.bus.name,
                "Arn": entry.bus.arn,
                "Description": entry.description,
                "CreationTime": timestamp(entry.created),
                "LastModifiedTime": timestamp(entry.created),
            }
        )

    async def list_event_buses(self, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("NamePrefix") or ""
        entries = [e for e in self.state.buses.entries() if e.bus.name.startswith(prefix)]
        chunk, token = page(entries, params, key=lambda e: e.bus.name)
        buses = [
            _clean(
                {
                    "Name": e.bus.name,
                    "Arn": e.bus.arn,
                    "Description": e.description,
                    "CreationTime": timestamp(e.created),
                    "LastModifiedTime": timestamp(e.created),
                }
            )
            for e in chunk
        ]
        return _clean({"EventBuses": buses, "NextToken": token})

    # -- rules -------------------------------------------------------------------------------

    async def put_rule(self, params: dict[str, Any]) -> dict[str, Any]:
        bus = self.state.buses.get(params.get("EventBusName"))
        name = params["Name"]
        self.state.check_api_rule(bus.name, name)
        existed = (bus.name, name) in self.state.rule_docs
        arn = bus.put_rule(
            name,
            params.get("EventPattern"),
            schedule_expression=params.get("ScheduleExpression"),
            state=params.get("State", "ENABLED"),
            description=params.get("Description"),
        )
        doc = _only(params, "Name", "EventPattern", "ScheduleExpression", "State", "Description", "RoleArn")
        self.state.rule_docs[(bus.name, name)] = doc
        self._save_rule(bus, name)
        if params.get("Tags") and not existed and self.tags is not None:
            # Tags are set when the rule is made; a PutRule that updates it leaves them (AWS).
            self.tags.set(arn, params["Tags"])
        return {"RuleArn": arn}

    async def delete_rule(self, params: dict[str, Any]) -> None:
        bus = self.state.buses.get(params.get("EventBusName"))
        name = params["Name"]
        self.state.check_api_rule(bus.name, name)
        bus.delete_rule(name, force=bool(params.get("Force", False)))
        arn = rule_arn(bus.config.region, bus.config.account, bus.name, name)
        if self.tags is not None:
            self.tags.forget(arn)
        self.state.rule_docs.pop((bus.name, name), None)
        for key in [k for k in self.state.target_docs if k[:2] == (bus.name, name)]:
            del self.state.target_docs[key]
        self.state.store.delete("rule", f"{bus.name}/{name}")
        return None

    async def describe_rule(self, params: dict[str, Any]) -> dict[str, Any]:
        bus = self.state.buses.get(params.get("EventBusName"))
        rule = bus.describe_rule(params["Name"])
        return {**self._rule(bus, rule), "CreatedBy": bus.config.account}

    async def list_rules(self, params: dict[str, Any]) -> dict[str, Any]:
        bus = self.state.buses.get(params.get("EventBusName"))
        rules = bus.list_rules(params.get("NamePrefix"))
        chunk, token = page(rules, params, key=lambda r: r.name)
        return _clean({"Rules": [self._rule(bus, r) for r in chunk], "NextToken": token})

    async def enable_rule(self, params: dict[str, Any]) -> None:
        bus = self.state.buses.get(params.get("EventBusName"))
        self.state.check_api_rule(bus.name, params["Name"])
        bus.enable_rule(params["Name"])
        self._set_state(bus, params["Name"], "ENABLED")
        return None

    async def disable_rule(self, params: dict[str, Any]) -> None:
        bus = self.state.buses.get(params.get("EventBusName"))
        self.state.check_api_rule(bus.name, params["Name"])
        bus.disable_rule(params["Name"])
        self._set_state(bus, params["Name"], "DISABLED")
        return None

    def _set_state(self, bus: EventBus, name: str, state: str) -> None:
        doc = self.state.rule_docs.get((bus.name, name))
        if doc is not None:
            doc["State"] = state
            self._save_rule(bus, name)

    async def list_rule_names_by_target(self, params: dict[str, Any]) -> dict[str, Any]:
        bus = self.state.buses.get(params.get("EventBusName"))
        arn = params["TargetArn"]
        names = [r.name for r in bus.list_rules() if any(self._target_arn(bus, r, t) == arn for t in r.targets)]
        chunk, token = page(names, params, key=lambda n: n)
        return _clean({"RuleNames": chunk, "NextToken": token})

    def _rule(self, bus: EventBus, rule: Rule) -> dict[str, Any]:
        doc = self.state.rule_docs.get((bus.name, rule.name), {})
        pattern = doc.get("EventPattern")
        if pattern is None and rule.event_pattern is not None:
            pattern = json.dumps(rule.event_pattern, separators=(",", ":"), ensure_ascii=False)
        return _clean(
            {
                "Name": rule.name,
                "Arn": rule.arn,
                "EventPattern": pattern,
                "ScheduleExpression": rule.schedule_expression,
                "State": rule.state,
                "Description": rule.description,
                "RoleArn": doc.get("RoleArn"),
                "EventBusName": bus.name,
            }
        )

    # -- targets -----------------------------------------------------------------------------

    async def put_targets(self, params: dict[str, Any]) -> dict[str, Any]:
        bus = self.state.buses.get(params.get("EventBusName"))
        rule = params["Rule"]
        bus.describe_rule(rule)  # ResourceNotFoundException before anything else
        self.state.check_api_rule(bus.name, rule)
        failed: list[dict[str, Any]] = []
        specs: list[dict[str, Any]] = []
        docs: dict[str, dict[str, Any]] = {}
        ids = [doc["Id"] for doc in params["Targets"]]
        if len(set(ids)) != len(ids):
            raise ApiError("ValidationException", "Target ids must be unique within a PutTargets request.")
        for doc in params["Targets"]:
            try:
                specs.append(self._rule_target(bus, rule, doc))
                docs[doc["Id"]] = dict(doc)
            except UnmappableArnError as exc:
                failed.append(_failure(doc["Id"], exc.error_code, str(exc)))
        if specs:
            # The library judges each target (its input forms, its retry policy) and answers
            # FailedEntries for those it refuses; the rest are put.
            answer = bus.put_targets(rule, specs)
            refused = {entry["TargetId"] for entry in answer["FailedEntries"]}
            failed += answer["FailedEntries"]
            for spec in specs:
                if spec["Id"] in refused:
                    for built in (spec["Target"], spec.get("DeadLetterTarget")):
                        if built is not None:
                            await built.aclose()
                else:
                    self.state.target_docs[(bus.name, rule, spec["Id"])] = docs[spec["Id"]]
            self._save_rule(bus, rule)
        order = {target_id: index for index, target_id in enumerate(ids)}
        failed.sort(key=lambda entry: order.get(entry["TargetId"], 0))
        return {"FailedEntryCount": len(failed), "FailedEntries": failed}

    async def rebuild_targets(self, arns: Collection[str]) -> None:
        """Put again every rule target whose ARN is one of ``arns`` (an API destination that
        changed): each is built anew from the Target document PutTargets was given."""
        wanted = set(arns)
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for (bus, rule, _), doc in list(self.state.target_docs.items()):
            if doc.get("Arn") in wanted:
                groups.setdefault((bus, rule), []).append(doc)
        for (bus, rule), docs in groups.items():
            answer = await self.put_targets({"Rule": rule, "EventBusName": bus, "Targets": docs})
            for entry in answer["FailedEntries"]:
                _log.error("a target could not be built again", bus=bus, rule=rule, target=entry["TargetId"], error=entry["ErrorMessage"])

    def _rule_target(self, bus: EventBus, rule: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        """The ``RuleTarget`` fields of an AWS ``Target``, its ARN mapped onto a built target."""
        state = self.state
        address = f"{bus.name}/{rule}/{doc['Id']}"
        config = state.resolver.target(doc["Arn"], doc.get("HttpParameters"))
        dead = (doc.get("DeadLetterConfig") or {}).get("Arn")
        dead_config = state.resolver.queue(dead) if dead else None
        spec: dict[str, Any] = {"Id": doc["Id"], "Arn": doc["Arn"]}
        for key in ("Input", "InputPath", "InputTransformer", "RetryPolicy"):
            if doc.get(key) is not None:
                spec[key] = doc[key]
        spec["Target"] = state.build(address, config)
        if dead_config is not None:
            spec["DeadLetterTarget"] = state.build(f"{address}/dead-letter", dead_config)
        return spec

    async def remove_targets(self, params: dict[str, Any]) -> dict[str, Any]:
        bus = self.state.buses.get(params.get("EventBusName"))
        rule = params["Rule"]
        bus.describe_rule(rule)
        self.state.check_api_rule(bus.name, rule)
        answer = bus.remove_targets(rule, params["Ids"])
        for target_id in params["Ids"]:
            self.state.target_docs.pop((bus.name, rule, target_id), None)
        self._save_rule(bus, rule)
        return answer

    async def list_targets_by_rule(self, params: dict[str, Any]) -> dict[str, Any]:
        bus = self.state.buses.get(params.get("EventBusName"))
        rule = bus.describe_rule(params["Rule"])
        chunk, token = page(list(rule.targets), params, key=lambda t: t.id)
        return _clean({"Targets": [self._target_doc(bus, rule, t) for t in chunk], "NextToken": token})

    def _target_doc(self, bus: EventBus, rule: Rule, target: RuleTarget) -> dict[str, Any]:
        doc = self.state.target_docs.get((bus.name, rule.name, target.id))
        if doc is not None:
            return doc
        policy = target.retry_policy
        return _clean(
            {
                "Id": target.id,
                "Arn": self._target_arn(bus, rule, target),
                "Input": target.input,
                "InputPath": target.input_path,
                "InputTransformer": target.input_transformer,
                "RetryPolicy": {
                    "MaximumRetryAttempts": policy.maximum_retry_attempts,
                    "MaximumEventAgeInSeconds": policy.maximum_event_age_in_seconds,
                },
            }
        )

    def _target_arn(self, bus: EventBus, rule: Rule, target: RuleTarget) -> str:
        # As the dead letters report it (TARGET_ARN): the given ARN, the target's own, or the rule's.
        doc = self.state.target_docs.get((bus.name, rule.name, target.id))
        if doc is not None:
            return str(doc["Arn"])
        own = getattr(target.target, "arn", None)
        return target.arn or (own if isinstance(own, str) and own else f"{rule.arn}/target/{target.id}")

    def _save_rule(self, bus: EventBus, rule: str) -> None:
        doc = self.state.rule_docs.get((bus.name, rule))
        if doc is None:
            return  # a config rule: the file keeps it
        targets = [d for (b, r, _), d in self.state.target_docs.items() if (b, r) == (bus.name, rule)]
        self.state.store.save("rule", f"{bus.name}/{rule}", {"EventBusName": bus.name, **doc, "Targets": targets})

    # -- TestEventPattern --------------------------------------------------------------------

    async def test_event_pattern(self, params: dict[str, Any]) -> dict[str, Any]:
        pattern = Pattern(params["EventPattern"])
        try:
            event = json.loads(params["Event"])
        except (ValueError, RecursionError):
            raise ApiError("ValidationException", "Parameter Event is not valid.") from None
        if not isinstance(event, dict):
            raise ApiError("ValidationException", "Parameter Event is not valid.")
        missing = [name for name in EVENT_FIELDS if name not in event]
        if missing:
            raise ApiError(
                "ValidationException",
                f"Parameter Event is not valid. Reason: the event has no {', '.join(missing)}.",
            )
        return {"Result": pattern.matches(event)}


def _for_bus(entries: list[dict[str, Any]], bus: EventBus) -> list[dict[str, Any]]:
    """The entries as the bus takes them: ``EventBusName`` was used to find it (name or ARN)."""
    out = []
    for entry in entries:
        if "EventBusName" in entry:
            entry = {k: v for k, v in entry.items() if k != "EventBusName"}
        out.append(entry)
    return out


def _all_failed(count: int, error: ApiError) -> dict[str, Any]:
    return {
        "FailedEntryCount": count,
        "Entries": [{"ErrorCode": error.code, "ErrorMessage": error.message} for _ in range(count)],
    }


def _failure(target_id: str, code: str, message: str) -> dict[str, Any]:
    return {"TargetId": target_id, "ErrorCode": code, "ErrorMessage": message}


def _only(params: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: params[k] for k in keys if params.get(k) is not None}


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


def bus_of(params: Mapping[str, Any]) -> str:
    return bus_name(params.get("EventBusName"))
