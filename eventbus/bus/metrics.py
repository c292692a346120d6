"""Counters a bus keeps, named after EventBridge's CloudWatch metrics.

Plain integer counters in dicts: incrementing one is a dict update on the hot path, and
``snapshot()`` copies them out for ``EventBus.metrics()``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Final

__all__ = ["BUS_METRICS", "RULE_METRICS", "TARGET_METRICS", "Metrics"]

#: Per rule, as EventBridge reports them.
RULE_METRICS: Final = (
    "MatchedEvents",
    "TriggeredRules",
    "Invocations",
    "FailedInvocations",
    "InvocationsSentToDLQ",
    "InvocationsFailedToBeSentToDLQ",
    "ThrottledRules",
)
#: Per target (keyed ``"<rule>/<target id>"``); ThrottledRules is a rule-level notion.
TARGET_METRICS: Final = (*RULE_METRICS[2:6], "RetriedInvocations", "DroppedInvocations")
#: Bus-wide counters of our own (EventBridge has no equivalent for most of them).
BUS_METRICS: Final = (
    "PutEventsEntries",
    "PutEventsFailedEntries",
    "PutEventsThrottledEntries",
    "AcceptedEvents",
    "LoopedEvents",
    "TransformFailures",
    "DroppedInvocations",
    "UndeliveredAtShutdown",
    "UnroutableEvents",
)


class Metrics:
    """Counters per bus, per rule and per target."""

    def __init__(self) -> None:
        self.bus: dict[str, int] = dict.fromkeys(BUS_METRICS, 0)
        self.rules: defaultdict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(RULE_METRICS, 0))
        self.targets: defaultdict[str, dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(TARGET_METRICS, 0)
        )

    def count_bus(self, name: str, n: int = 1) -> None:
        self.bus[name] += n

    def count_rule(self, rule: str, name: str, n: int = 1) -> None:
        self.rules[rule][name] += n

    def count_target(self, rule: str, target_id: str, name: str, n: int = 1) -> None:
        """Count on the target and roll up to its rule where the rule has that metric."""
        self.targets[f"{rule}/{target_id}"][name] += n
        counters = self.rules[rule]
        if name in counters:
            counters[name] += n

    def snapshot(self) -> dict[str, dict[str, int] | dict[str, dict[str, int]]]:
        return {
            "bus": dict(self.bus),
            "rules": {k: dict(v) for k, v in self.rules.items()},
            "targets": {k: dict(v) for k, v in self.targets.items()},
        }
