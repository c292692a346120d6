"""eventbus: Amazon EventBridge's event model for any Python application.

The public API lives here, in one flat namespace over the modules that implement it. Only the
pattern language and the errors are imported eagerly; everything else loads on first use, so
``import eventbus`` (and the pytest plugin) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from eventbus.errors import (
    BackendError,
    BusClosedError,
    BusValidationError,
    ConfigError,
    DeliveryError,
    EventBusError,
    IllegalStatusError,
    InvalidEventError,
    LimitExceededError,
    LogClosedError,
    NonRetryableError,
    PatternError,
    ResourceAlreadyExistsError,
    ResourceMissingError,
    ResourceNotFoundError,
    RetryableError,
    RuleNotFoundError,
    StateError,
    StateLockedError,
    TargetPermissionError,
    TargetTimeoutError,
    ThrottledError,
    TransformError,
)
from eventbus.patterns import (
    Matcher,
    Pattern,
)

if TYPE_CHECKING:
    from eventbus.bus import EventBus
    from eventbus.bus.clock import ManualClock
    from eventbus.bus.config import BusConfig
    from eventbus.bus.delivery.retry import Backoff, RetryPolicy
    from eventbus.bus.logs.jetstream import JetStreamEventLog, JetStreamSettings
    from eventbus.bus.logs.memory import InMemoryDeliveryQueue, InMemoryEventLog
    from eventbus.bus.logs.protocol import Delivery, DeliveryQueue, EventLog
    from eventbus.bus.logs.sqlite import SqliteEventLog
    from eventbus.bus.outcomes import Outcome, OutcomeStream
    from eventbus.bus.routed import RenderedInput, RoutedEvent, RoutedStream
    from eventbus.bus.rules import Rule, RuleTarget
    from eventbus.config import ConfigErrors, load_config, load_configs
    from eventbus.envelope import (
        EntryError,
        EnvelopeDefaults,
        Event,
        PutEventsEntry,
        entry_size,
        event_from_entry,
        validate_entry,
    )
    from eventbus.maps import Map, MapConfig, MapSummary
    from eventbus.pipes import (
        Pipe,
        PipeConfig,
        PipeRetryPolicy,
        Source,
        SourceConfig,
        SourceRecord,
        build_source,
        register_source,
        source_kinds,
    )
    from eventbus.schedule import Schedule
    from eventbus.sync import SyncEventBus
    from eventbus.targets.base import DeliveryContext, Target, TargetConfig
    from eventbus.targets.bus import BusTarget, BusTargetConfig
    from eventbus.targets.command import CommandTarget, CommandTargetConfig
    from eventbus.targets.connection import (
        ApiKeyAuth,
        BasicAuth,
        Connection,
        HttpParameters,
        OAuthClientCredentials,
    )
    from eventbus.targets.files import FileTarget, FileTargetConfig
    from eventbus.targets.function import FunctionTarget, FunctionTargetConfig
    from eventbus.targets.http import HttpTarget, HttpTargetConfig
    from eventbus.targets.log import LogTarget, LogTargetConfig
    from eventbus.targets.nats import NatsTarget, NatsTargetConfig
    from eventbus.targets.queue import MemoryQueue, QueueMessage, QueueTarget, QueueTargetConfig, SqliteQueue
    from eventbus.targets.recording import RecordingTarget, RecordingTargetConfig
    from eventbus.targets.registry import build_target
    from eventbus.targets.registry import kinds as target_kinds
    from eventbus.targets.registry import register as register_target
    from eventbus.targets.sql import SqlColumn, SqlTarget, SqlTargetConfig
    from eventbus.transform import InputTransformer, PipeTemplate, TargetInput

__version__ = "0.1.0"

# Where each lazily loaded name lives: (module, attribute).
_LAZY: dict[str, tuple[str, str]] = {
    "EntryError": ("eventbus.envelope", "EntryError"),
    "EnvelopeDefaults": ("eventbus.envelope", "EnvelopeDefaults"),
    "Event": ("eventbus.envelope", "Event"),
    "PutEventsEntry": ("eventbus.envelope", "PutEventsEntry"),
    "entry_size": ("eventbus.envelope", "entry_size"),
    "event_from_entry": ("eventbus.envelope", "event_from_entry"),
    "validate_entry": ("eventbus.envelope", "validate_entry"),
    "Schedule": ("eventbus.schedule", "Schedule"),
    "InputTransformer": ("eventbus.transform", "InputTransformer"),
    "PipeTemplate": ("eventbus.transform", "PipeTemplate"),
    "TargetInput": ("eventbus.transform", "TargetInput"),
    "DeliveryContext": ("eventbus.targets.base", "DeliveryContext"),
    "Target": ("eventbus.targets.base", "Target"),
    "TargetConfig": ("eventbus.targets.base", "TargetConfig"),
    "FunctionTarget": ("eventbus.targets.function", "FunctionTarget"),
    "FunctionTargetConfig": ("eventbus.targets.function", "FunctionTargetConfig"),
    "CommandTarget": ("eventbus.targets.command", "CommandTarget"),
    "CommandTargetConfig": ("eventbus.targets.command", "CommandTargetConfig"),
    "HttpTarget": ("eventbus.targets.http", "HttpTarget"),
    "HttpTargetConfig": ("eventbus.targets.http", "HttpTargetConfig"),
    "ApiKeyAuth": ("eventbus.targets.connection", "ApiKeyAuth"),
    "BasicAuth": ("eventbus.targets.connection", "BasicAuth"),
    "Connection": ("eventbus.targets.connection", "Connection"),
    "HttpParameters": ("eventbus.targets.connection", "HttpParameters"),
    "OAuthClientCredentials": ("eventbus.targets.connection", "OAuthClientCredentials"),
    "MemoryQueue": ("eventbus.targets.queue", "MemoryQueue"),
    "QueueMessage": ("eventbus.targets.queue", "QueueMessage"),
    "QueueTarget": ("eventbus.targets.queue", "QueueTarget"),
    "QueueTargetConfig": ("eventbus.targets.queue", "QueueTargetConfig"),
    "SqliteQueue": ("eventbus.targets.queue", "SqliteQueue"),
    "BusTarget": ("eventbus.targets.bus", "BusTarget"),
    "BusTargetConfig": ("eventbus.targets.bus", "BusTargetConfig"),
    "LogTarget": ("eventbus.targets.log", "LogTarget"),
    "LogTargetConfig": ("eventbus.targets.log", "LogTargetConfig"),
    "FileTarget": ("eventbus.targets.files", "FileTarget"),
    "FileTargetConfig": ("eventbus.targets.files", "FileTargetConfig"),
    "NatsTarget": ("eventbus.targets.nats", "NatsTarget"),
    "NatsTargetConfig": ("eventbus.targets.nats", "NatsTargetConfig"),
    "RecordingTarget": ("eventbus.targets.recording", "RecordingTarget"),
    "RecordingTargetConfig": ("eventbus.targets.recording", "RecordingTargetConfig"),
    "SqlColumn": ("eventbus.targets.sql", "SqlColumn"),
    "SqlTarget": ("eventbus.targets.sql", "SqlTarget"),
    "SqlTargetConfig": ("eventbus.targets.sql", "SqlTargetConfig"),
    "build_target": ("eventbus.targets.registry", "build_target"),
    "register_target": ("eventbus.targets.registry", "register"),
    "target_kinds": ("eventbus.targets.registry", "kinds"),
    "Backoff": ("eventbus.bus.delivery.retry", "Backoff"),
    "RetryPolicy": ("eventbus.bus.delivery.retry", "RetryPolicy"),
    "Delivery": ("eventbus.bus.logs.protocol", "Delivery"),
    "DeliveryQueue": ("eventbus.bus.logs.protocol", "DeliveryQueue"),
    "EventLog": ("eventbus.bus.logs.protocol", "EventLog"),
    "InMemoryDeliveryQueue": ("eventbus.bus.logs.memory", "InMemoryDeliveryQueue"),
    "InMemoryEventLog": ("eventbus.bus.logs.memory", "InMemoryEventLog"),
    "SqliteEventLog": ("eventbus.bus.logs.sqlite", "SqliteEventLog"),
    "JetStreamEventLog": ("eventbus.bus.logs.jetstream", "JetStreamEventLog"),
    "JetStreamSettings": ("eventbus.bus.logs.jetstream", "JetStreamSettings"),
    "Outcome": ("eventbus.bus.outcomes", "Outcome"),
    "OutcomeStream": ("eventbus.bus.outcomes", "OutcomeStream"),
    "RenderedInput": ("eventbus.bus.routed", "RenderedInput"),
    "RoutedEvent": ("eventbus.bus.routed", "RoutedEvent"),
    "RoutedStream": ("eventbus.bus.routed", "RoutedStream"),
    "Rule": ("eventbus.bus.rules", "Rule"),
    "RuleTarget": ("eventbus.bus.rules", "RuleTarget"),
    "BusConfig": ("eventbus.bus.config", "BusConfig"),
    "ManualClock": ("eventbus.bus.clock", "ManualClock"),
    "EventBus": ("eventbus.bus", "EventBus"),
    "SyncEventBus": ("eventbus.sync", "SyncEventBus"),
    "Pipe": ("eventbus.pipes", "Pipe"),
    "PipeConfig": ("eventbus.pipes", "PipeConfig"),
    "PipeRetryPolicy": ("eventbus.pipes", "PipeRetryPolicy"),
    "SourceRecord": ("eventbus.pipes", "SourceRecord"),
    "Source": ("eventbus.pipes", "Source"),
    "SourceConfig": ("eventbus.pipes", "SourceConfig"),
    "build_source": ("eventbus.pipes", "build_source"),
    "register_source": ("eventbus.pipes", "register_source"),
    "source_kinds": ("eventbus.pipes", "source_kinds"),
    "Map": ("eventbus.maps", "Map"),
    "MapConfig": ("eventbus.maps", "MapConfig"),
    "MapSummary": ("eventbus.maps", "MapSummary"),
    "ConfigErrors": ("eventbus.config", "ConfigErrors"),
    "load_config": ("eventbus.config", "load_config"),
    "load_configs": ("eventbus.config", "load_configs"),
}

__all__ = [
    "ApiKeyAuth",
    "BackendError",
    "Backoff",
    "BasicAuth",
    "BusClosedError",
    "BusConfig",
    "BusTarget",
    "BusTargetConfig",
    "BusValidationError",
    "CommandTarget",
    "CommandTargetConfig",
    "ConfigError",
    "ConfigErrors",
    "Connection",
    "Delivery",
    "DeliveryContext",
    "DeliveryError",
    "DeliveryQueue",
    "EntryError",
    "EnvelopeDefaults",
    "Event",
    "EventBus",
    "EventBusError",
    "EventLog",
    "FileTarget",
    "FileTargetConfig",
    "FunctionTarget",
    "FunctionTargetConfig",
    "HttpParameters",
    "HttpTarget",
    "HttpTargetConfig",
    "InMemoryDeliveryQueue",
    "InMemoryEventLog",
    "InputTransformer",
    "IllegalStatusError",
    "InvalidEventError",
    "JetStreamEventLog",
    "JetStreamSettings",
    "LimitExceededError",
    "LogClosedError",
    "LogTarget",
    "LogTargetConfig",
    "ManualClock",
    "Map",
    "MapConfig",
    "MapSummary",
    "Matcher",
    "MemoryQueue",
    "NatsTarget",
    "NatsTargetConfig",
    "NonRetryableError",
    "OAuthClientCredentials",
    "Outcome",
    "OutcomeStream",
    "Pattern",
    "PatternError",
    "Pipe",
    "PipeConfig",
    "PipeRetryPolicy",
    "PipeTemplate",
    "PutEventsEntry",
    "QueueMessage",
    "QueueTarget",
    "QueueTargetConfig",
    "RecordingTarget",
    "RecordingTargetConfig",
    "RenderedInput",
    "ResourceAlreadyExistsError",
    "ResourceMissingError",
    "ResourceNotFoundError",
    "RetryPolicy",
    "RetryableError",
    "RoutedEvent",
    "RoutedStream",
    "Rule",
    "RuleNotFoundError",
    "RuleTarget",
    "Schedule",
    "Source",
    "SourceConfig",
    "SourceRecord",
    "SqlColumn",
    "SqlTarget",
    "SqlTargetConfig",
    "SqliteEventLog",
    "SqliteQueue",
    "StateError",
    "StateLockedError",
    "SyncEventBus",
    "Target",
    "TargetConfig",
    "TargetInput",
    "TargetPermissionError",
    "TargetTimeoutError",
    "ThrottledError",
    "TransformError",
    "__version__",
    "build_source",
    "build_target",
    "entry_size",
    "event_from_entry",
    "load_config",
    "load_configs",
    "register_source",
    "register_target",
    "source_kinds",
    "target_kinds",
    "validate_entry",
]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'eventbus' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # cache: the next lookup is an ordinary global
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
