"""``check_rules``: every rule's generated matching events reach its targets, non-matching ones do not.

The check never touches the real targets. It copies each bus (same name, account, region and
rules, same target input per target) into a private bus whose targets are recording ones, plus
one probe target per rule that receives the raw event, and sends it events generated from each
rule's own pattern (``matching_events`` / ``non_matching_events``, pinned to the bus's account and
region). Deliveries are told apart by event id, so the verdict is exact:

* a matching event of rule R must reach every target of R (the probe tells a rule that did not
  match from a target input that failed);
* a non-matching event of R must reach none of them;
* an event generated for R that another rule also matched is an *overlap*: information, not a
  failure, because overlapping rules are often intended;
* a rule no event on its bus can match (it wants another account or region, or a replay) fails:
  a bus stamps its own account and region on every entry put and every event forwarded to it,
  so such a rule never fires (a rule ported from AWS usually wants the bus's ``account`` set).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eventbus.bus import EventBus
from eventbus.bus.rules import Rule, RuleTarget
from eventbus.errors import PatternError
from eventbus.patterns.pattern import Pattern
from eventbus.targets.recording import RecordingTarget
from eventbus.testing._analysis import Analysis, pattern_text
from eventbus.testing._layout import EnvelopeSpec
from eventbus.testing._sample import sample
from eventbus.testing.strategies import entry_from_event, matching_events, non_matching_events

__all__ = ["Overlap", "RuleCheck", "RuleCheckReport", "check_rules"]

#: The probe target's id; a suffix is added if a rule already uses it.
PROBE_ID = "eventbus-check-probe"


def _show(event: Mapping[str, Any], limit: int = 300) -> str:
    text = json.dumps(event, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(slots=True)
class RuleCheck:
    """The verdict on one rule."""

    bus: str
    rule: str
    targets: tuple[str, ...] = ()
    matching_sent: int = 0
    non_matching_sent: int = 0
    #: Problems: the check fails when any rule has one.
    failures: list[str] = field(default_factory=list)
    #: Information: why a rule was skipped or only half checked.
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def name(self) -> str:
        return f"{self.bus}/{self.rule}"


@dataclass(frozen=True, slots=True)
class Overlap:
    """Events generated for ``rule`` that ``other`` matched too: ``count`` of ``sent``."""

    bus: str
    rule: str
    other: str
    count: int
    sent: int
    example: Mapping[str, Any]

    def describe(self) -> str:
        return (
            f"{self.bus}/{self.rule} overlaps {self.bus}/{self.other}: {self.count} of {self.sent} "
            f"events matching {self.rule} also matched {self.other}, e.g. {_show(self.example, 200)}"
        )


@dataclass(slots=True)
class RuleCheckReport:
    """What ``check_rules`` found; ``str(report)`` is a readable summary."""

    rules: list[RuleCheck] = field(default_factory=list)
    overlaps: list[Overlap] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rules)

    @property
    def failures(self) -> list[str]:
        return [f"{r.name}: {f}" for r in self.rules for f in r.failures]

    def rule(self, name: str) -> RuleCheck:
        """The verdict on rule ``name`` (``bus/rule`` when several buses were checked)."""
        for r in self.rules:
            if name in (r.rule, r.name):
                return r
        raise KeyError(f"no rule {name!r} in this report; it has {', '.join(r.name for r in self.rules)}")

    def summary(self) -> str:
        failed = sum(1 for r in self.rules if not r.ok)
        skipped = sum(1 for r in self.rules if r.ok and not (r.matching_sent or r.non_matching_sent))
        passed = len(self.rules) - failed - skipped
        head = (
            f"check_rules: {passed} passed, {failed} failed, {skipped} skipped, {len(self.overlaps)} overlaps"
        )
        lines = [head]
        for r in self.rules:
            idle = not r.matching_sent and not r.non_matching_sent
            status = "FAIL" if r.failures else "skip" if idle else "ok"
            sent = f"{r.matching_sent} matching / {r.non_matching_sent} non-matching events"
            lines.append(f"  [{status}] {r.name} ({sent})")
            lines += [f"      - {f}" for f in r.failures]
            lines += [f"      note: {n}" for n in r.notes]
        if self.overlaps:
            lines.append("  overlaps (information):")
            lines += [f"      {o.describe()}" for o in self.overlaps]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def raise_on_failure(self) -> None:
        if not self.ok:
            raise AssertionError(self.summary())


@dataclass(slots=True)
class _Sent:
    rule: str
    matching: bool
    event: dict[str, Any]
    accepted: bool = False


async def check_rules(
    subject: Any,
    *,
    examples: int = 10,
    seed: int = 0,
    timeout: float = 10.0,
    raise_on_failure: bool = True,
) -> RuleCheckReport:
    """Check every enabled pattern rule of ``subject`` with ``examples`` generated matching and
    ``examples`` non-matching events each.

    ``subject`` is an ``EventBus`` (running or not; it is only read), a config ``Runtime`` or
    ``LoadedConfig`` (``eventbus.config``), or the path of a config file. The same ``seed``
    gives the same events. Raises ``AssertionError`` with the summary when a rule fails, unless
    ``raise_on_failure=False``; returns the ``RuleCheckReport`` otherwise.
    """
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 1:
        raise ValueError(f"examples must be a positive integer, not {examples!r}")
    report = RuleCheckReport()
    for bus in _buses(subject):
        await _check_bus(bus, report, examples=examples, seed=seed, timeout=timeout)
    if raise_on_failure:
        report.raise_on_failure()
    return report


def _buses(subject: Any) -> list[EventBus]:
    if isinstance(subject, EventBus):
        return [subject]
    buses = getattr(subject, "buses", None)
    if isinstance(buses, Mapping):
        return [b for b in buses.values() if isinstance(b, EventBus)]
    if isinstance(subject, str | Path) or hasattr(subject, "model"):
        # A config: build its buses (with recording targets, so nothing real is constructed).
        from eventbus.config import Runtime, load_config
        from eventbus.config.backends import MemoryBackend

        loaded = load_config(subject) if isinstance(subject, str | Path) else subject
        runtime = Runtime(
            [loaded],
            target_factory=lambda address, config: RecordingTarget(address),
            maps=False,
            backend=MemoryBackend(),
        )
        return list(runtime.buses.values())
    raise TypeError(
        f"check_rules takes an EventBus, a config Runtime or LoadedConfig, or a config path; "
        f"not {type(subject).__name__}"
    )


_copies = itertools.count(1)


def _shadow_name(name: str) -> str:
    return f"{name[:200]}.check-{next(_copies)}"


def _probe_id(rule: Rule) -> str:
    ids = {t.id for t in rule.targets}
    probe = PROBE_ID
    while probe in ids:
        probe += "-"
    return probe


async def _check_bus(
    bus: EventBus, report: RuleCheckReport, *, examples: int, seed: int, timeout: float
) -> None:
    spec = EnvelopeSpec(account=bus.config.account, region=bus.config.region, replay=False)
    rules = bus.list_rules()
    checks: dict[str, RuleCheck] = {}
    sent: list[_Sent] = []
    routed: list[Rule] = []
    for index, rule in enumerate(rules):
        check = RuleCheck(bus.name, rule.name, tuple(t.id for t in rule.targets))
        report.rules.append(check)
        if rule.event_pattern is None:
            check.notes.append("schedule rule without an event pattern: not checked")
            continue
        if not rule.enabled:
            check.notes.append("disabled: not checked")
            continue
        try:
            pattern = Pattern(rule.event_pattern)
        except PatternError as exc:  # pragma: no cover - the bus validated it already
            check.failures.append(str(exc))
            continue
        routed.append(rule)
        analysis = Analysis(pattern.parsed, spec)
        if "id" in analysis.paths:
            check.notes.append("the pattern tests the event id, which the bus assigns: not checked")
            continue
        checks[rule.name] = check
        if analysis.matchable:
            found = sample(matching_events(pattern, **_pins(spec)), examples, seed + index)
            sent += [_Sent(rule.name, True, e) for e in found]
        elif Analysis(pattern.parsed, EnvelopeSpec()).matchable:
            # Some envelope matches, but none this bus makes: it stamps its account and region on
            # every entry put and every event forwarded to it, and never sets replay-name. (Only an
            # Event envelope handed to put_events keeps its own; too rare to trust a rule to it.)
            wants = " or ".join(analysis.unmatchable_fields())
            check.failures.append(
                f"no event on bus {bus.name} can match it: it wants {wants}, but the bus gives every "
                f"event account {spec.account} and region {spec.region}, and never a replay-name "
                "(if the rule is right, set the bus's account or region)"
            )
        else:
            check.failures.append(
                f"no event can ever match {pattern_text(pattern.parsed)}: {analysis.why_unmatchable()}"
            )
        if not rule.targets:
            check.notes.append("no targets: only its matching is checked")
        if analysis.static_violation is not None:
            found = sample(non_matching_events(pattern, **_pins(spec)), examples, seed + index + 7919)
            sent += [_Sent(rule.name, False, e) for e in found]
        else:
            check.notes.append(
                f"every event matches it, so no non-matching events: {analysis.why_unrefutable()}"
            )
    if not sent:
        return
    received = await _run_shadow(bus, routed, sent, checks, timeout)
    _judge(bus, routed, sent, checks, received, report)


def _pins(spec: EnvelopeSpec) -> dict[str, Any]:
    # Arrays too: the point is to test the bus's matcher, array membership included.
    return {"account": spec.account, "region": spec.region, "allow_replay_name": spec.replay, "arrays": True}


async def _run_shadow(
    bus: EventBus,
    routed: list[Rule],
    sent: list[_Sent],
    checks: dict[str, RuleCheck],
    timeout: float,
) -> dict[str, dict[str, set[str]]]:
    """Send ``sent`` through a copy of ``bus`` with recording targets; for each rule and target id,
    the event ids delivered. Ids are filled into ``sent`` events as PutEvents assigns them."""
    config = bus.config.model_copy(
        update={
            "max_targets_per_rule": bus.config.max_targets_per_rule + 1,
            "max_rules": max(bus.config.max_rules, len(routed)),
            "trace_events": False,
            # Generated events must never be throttled away: wait for room instead.
            "when_full": "wait",
        }
    )
    # Bus names are registered process-wide (bus-to-bus targets find each other by name), so the
    # copy needs a name of its own; only rule ARNs seen by input templates show it.
    shadow = EventBus(_shadow_name(bus.name), config=config)
    recorders: dict[str, dict[str, RecordingTarget]] = {}
    for rule in routed:
        shadow.put_rule(rule.name, rule.event_pattern)
        probe = _probe_id(rule)
        recorders[rule.name] = {probe: RecordingTarget(f"{bus.name}/{rule.name}/{probe}")}
        targets = [RuleTarget(id=probe, target=recorders[rule.name][probe])]
        for t in rule.targets:
            recorder = RecordingTarget(f"{bus.name}/{rule.name}/{t.id}")
            recorders[rule.name][t.id] = recorder
            targets.append(
                RuleTarget(
                    id=t.id,
                    target=recorder,
                    input=t.input,
                    input_path=t.input_path,
                    input_transformer=t.input_transformer,
                )
            )
        shadow.put_targets(rule.name, targets)
    async with shadow:
        step = config.max_entries_per_put
        for start in range(0, len(sent), step):
            chunk = sent[start : start + step]
            response = await shadow.put_events([entry_from_event(s.event) for s in chunk])
            for item, answer in zip(chunk, response["Entries"], strict=True):
                if "EventId" in answer:
                    item.event["id"] = answer["EventId"]
                    item.accepted = True
                else:
                    check = checks[item.rule]
                    check.failures.append(
                        f"PutEvents refused a generated event ({answer['ErrorCode']}: "
                        f"{answer['ErrorMessage']}): {_show(item.event)}"
                    )
        if not await shadow.wait_idle(timeout):
            for check in checks.values():
                check.failures.append(f"events were still undelivered after {timeout:g} s")
    out: dict[str, dict[str, set[str]]] = {}
    for rule_name, by_id in recorders.items():
        out[rule_name] = {}
        for target_id, recorder in by_id.items():
            delivered: set[str] = set()
            for payloads, context in recorder.deliveries:
                delivered.update(context.event_ids[: len(payloads)])
            out[rule_name][target_id] = delivered
    return out


def _judge(
    bus: EventBus,
    routed: list[Rule],
    sent: list[_Sent],
    checks: dict[str, RuleCheck],
    received: dict[str, dict[str, set[str]]],
    report: RuleCheckReport,
) -> None:
    probes = {rule.name: _probe_id(rule) for rule in routed}
    matched_by = {name: received[name][probes[name]] for name in received}
    rules = {rule.name: rule for rule in routed}
    overlaps: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for name, check in checks.items():
        mine = [s for s in sent if s.rule == name and s.accepted]
        good = [s.event for s in mine if s.matching]
        bad = [s.event for s in mine if not s.matching]
        check.matching_sent, check.non_matching_sent = len(good), len(bad)
        pattern = Pattern(rules[name].event_pattern or {})
        missed = [e for e in good if e["id"] not in matched_by[name]]
        if missed:
            check.failures.append(
                f"{len(missed)} of {len(good)} matching events were not matched by the bus, "
                f"e.g. {_show(missed[0])}"
            )
        for target in rules[name].targets:
            lost = [
                e for e in good if e["id"] in matched_by[name] and e["id"] not in received[name][target.id]
            ]
            if lost:
                check.failures.append(
                    f"{len(lost)} of {len(good)} matching events did not reach target {target.id!r} "
                    f"(the rule matched them; its target input failed), e.g. {_show(lost[0])}"
                )
        leaked = [e for e in bad if any(e["id"] in ids for ids in received[name].values())]
        if leaked:
            why = "; ".join(pattern.explain(leaked[0])) or "the reference matcher says it matches"
            check.failures.append(
                f"{len(leaked)} of {len(bad)} non-matching events reached its targets, "
                f"e.g. {_show(leaked[0])} (should not match: {why})"
            )
        for event in good:
            for other, ids in matched_by.items():
                if other != name and event["id"] in ids:
                    overlaps.setdefault((name, other), []).append(event)
    for (name, other), events in sorted(overlaps.items()):
        total = checks[name].matching_sent
        report.overlaps.append(Overlap(bus.name, name, other, len(events), total, events[0]))
