"""Testing helpers for users of eventbus: hypothesis strategies, ``check_rules``, ``capture_logs``,
a pytest plugin, the contract suites for event logs and delivery queues (``contracts``), and
``running_server`` (``eventbus serve`` in a thread, for boto3 tests).

Names load on first use: the pytest plugin (``eventbus.testing.plugin``) is imported by every
pytest run in a project that has eventbus installed, and importing this package must stay cheap
for those runs (hypothesis is only imported once a strategy is asked for).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventbus.testing._logs import capture_logs
    from eventbus.testing._settle import settle
    from eventbus.testing.check import Overlap, RuleCheck, RuleCheckReport, check_rules
    from eventbus.testing.contracts import ArchiveStoreContract, DeliveryQueueContract, EventLogContract
    from eventbus.testing.server import RunningServer, running_server
    from eventbus.testing.strategies import (
        OPERATORS,
        entry_from_event,
        events,
        matching_events,
        non_matching_events,
        patterns,
        put_events_entries,
    )

__all__ = [
    "OPERATORS",
    "ArchiveStoreContract",
    "DeliveryQueueContract",
    "EventLogContract",
    "Overlap",
    "RuleCheck",
    "RuleCheckReport",
    "RunningServer",
    "capture_logs",
    "check_rules",
    "entry_from_event",
    "events",
    "matching_events",
    "non_matching_events",
    "patterns",
    "put_events_entries",
    "running_server",
    "settle",
]

_HOME = {
    "OPERATORS": "eventbus.testing.strategies",
    "ArchiveStoreContract": "eventbus.testing.contracts",
    "DeliveryQueueContract": "eventbus.testing.contracts",
    "EventLogContract": "eventbus.testing.contracts",
    "Overlap": "eventbus.testing.check",
    "RuleCheck": "eventbus.testing.check",
    "RuleCheckReport": "eventbus.testing.check",
    "RunningServer": "eventbus.testing.server",
    "running_server": "eventbus.testing.server",
    "capture_logs": "eventbus.testing._logs",
    "check_rules": "eventbus.testing.check",
    "entry_from_event": "eventbus.testing.strategies",
    "events": "eventbus.testing.strategies",
    "matching_events": "eventbus.testing.strategies",
    "non_matching_events": "eventbus.testing.strategies",
    "patterns": "eventbus.testing.strategies",
    "put_events_entries": "eventbus.testing.strategies",
    "settle": "eventbus.testing._settle",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'eventbus.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
