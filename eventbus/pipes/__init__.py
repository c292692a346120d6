"""EventBridge Pipes: source -> filter -> enrichment -> target, with batching and retries.

``PipeConfig`` declares a pipe (in Python or a config file), ``Pipe`` runs one. Sources live in
``eventbus.pipes.sources`` and are plug-ins like targets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventbus.pipes.config import LogLevel, PipeConfig, PipeRetryPolicy, PipeState, TargetRef
from eventbus.pipes.pipe import COUNTERS, Pipe
from eventbus.pipes.records import SourceRecord
from eventbus.pipes.sources import BufferedSource, Source, SourceConfig
from eventbus.pipes.sources.registry import build_source
from eventbus.pipes.sources.registry import config_class as source_config_class
from eventbus.pipes.sources.registry import kinds as source_kinds
from eventbus.pipes.sources.registry import register as register_source
from eventbus.pipes.stages import BatchItemFailure, PipeTransformError

if TYPE_CHECKING:
    from eventbus.pipes.sources.directory import DirectorySource, DirectorySourceConfig
    from eventbus.pipes.sources.files import FileSource, FileSourceConfig
    from eventbus.pipes.sources.nats import NatsSource, NatsSourceConfig
    from eventbus.pipes.sources.queue import QueueSource, QueueSourceConfig
    from eventbus.pipes.sources.schedule import ScheduleSource, ScheduleSourceConfig
    from eventbus.pipes.sources.webhook import WebhookSource, WebhookSourceConfig

__all__ = [
    "COUNTERS",
    "BatchItemFailure",
    "BufferedSource",
    "DirectorySource",
    "DirectorySourceConfig",
    "FileSource",
    "FileSourceConfig",
    "LogLevel",
    "NatsSource",
    "NatsSourceConfig",
    "Pipe",
    "PipeConfig",
    "PipeRetryPolicy",
    "PipeState",
    "PipeTransformError",
    "QueueSource",
    "QueueSourceConfig",
    "ScheduleSource",
    "ScheduleSourceConfig",
    "Source",
    "SourceConfig",
    "SourceRecord",
    "TargetRef",
    "WebhookSource",
    "WebhookSourceConfig",
    "build_source",
    "register_source",
    "source_config_class",
    "source_kinds",
]


def __getattr__(name: str) -> Any:
    # Source classes load with their module on first use (see eventbus.pipes.sources).
    from eventbus.pipes import sources

    return getattr(sources, name)
