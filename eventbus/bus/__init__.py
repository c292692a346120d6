"""The event bus: PutEvents, rules, routing, schedules and delivery.

The modules read as an event's journey through one bus: ``bus.py`` (``EventBus``: PutEvents,
lifecycle) over ``router.py`` (log -> rules -> delivery queue), ``table.py`` (the rule table),
``rules.py`` (the rule models), ``entries.py``, ``scheduler.py``, ``delivery/`` (dispatchers, the
retry decision, dead letters), ``routed.py`` (what each event matched and each target got),
``outcomes.py`` (what happened to each delivery), both on ``feed.py``, ``logs/`` (the
event log and delivery queue seams, their in-memory and SQLite backends) and ``metrics.py``,
``config.py``, ``clock.py``, ``chain.py`` at the ground.

The names below load on first use, so importing one module of the package (the clock, say) does
not load the whole bus.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventbus.bus.bus import EventBus
    from eventbus.bus.clock import Clock, ManualClock, SystemClock
    from eventbus.bus.config import BusConfig
    from eventbus.bus.delivery.retry import Backoff, RetryPolicy
    from eventbus.bus.logs.memory import InMemoryDeliveryQueue, InMemoryEventLog
    from eventbus.bus.logs.protocol import Delivery, DeliveryQueue, EventLog, LogClosedError, LogRecord
    from eventbus.bus.logs.sqlite import SqliteEventLog
    from eventbus.bus.outcomes import Outcome, OutcomeStream
    from eventbus.bus.routed import RenderedInput, RoutedEvent, RoutedStream
    from eventbus.bus.rules import Rule, RuleState, RuleTarget

__all__ = [
    "Backoff",
    "BusConfig",
    "Clock",
    "Delivery",
    "DeliveryQueue",
    "EventBus",
    "EventLog",
    "InMemoryDeliveryQueue",
    "InMemoryEventLog",
    "LogClosedError",
    "LogRecord",
    "ManualClock",
    "Outcome",
    "OutcomeStream",
    "RenderedInput",
    "RetryPolicy",
    "RoutedEvent",
    "RoutedStream",
    "Rule",
    "RuleState",
    "RuleTarget",
    "SqliteEventLog",
    "SystemClock",
]

_HOME = {
    "Backoff": "eventbus.bus.delivery.retry",
    "BusConfig": "eventbus.bus.config",
    "Clock": "eventbus.bus.clock",
    "EventBus": "eventbus.bus.bus",
    "Delivery": "eventbus.bus.logs.protocol",
    "DeliveryQueue": "eventbus.bus.logs.protocol",
    "EventLog": "eventbus.bus.logs.protocol",
    "InMemoryDeliveryQueue": "eventbus.bus.logs.memory",
    "InMemoryEventLog": "eventbus.bus.logs.memory",
    "LogClosedError": "eventbus.bus.logs.protocol",
    "LogRecord": "eventbus.bus.logs.protocol",
    "ManualClock": "eventbus.bus.clock",
    "Outcome": "eventbus.bus.outcomes",
    "OutcomeStream": "eventbus.bus.outcomes",
    "RenderedInput": "eventbus.bus.routed",
    "RoutedEvent": "eventbus.bus.routed",
    "RoutedStream": "eventbus.bus.routed",
    "RetryPolicy": "eventbus.bus.delivery.retry",
    "Rule": "eventbus.bus.rules",
    "RuleState": "eventbus.bus.rules",
    "RuleTarget": "eventbus.bus.rules",
    "SqliteEventLog": "eventbus.bus.logs.sqlite",
    "SystemClock": "eventbus.bus.clock",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'eventbus.bus' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
