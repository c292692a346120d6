"""Pipe sources: where a pipe's records come from, as plug-ins like targets.

Built-in kinds: ``queue`` (the memory and SQLite queues), ``nats`` (a JetStream durable pull
consumer), ``directory`` (files landing in a folder, as S3 "Object Created" events), ``file``
(CSV and JSON Lines rows), ``webhook`` (an ASGI app taking HTTP POSTs) and ``schedule`` (rate
and cron). Other packages add kinds through the ``eventbus.sources`` entry-point group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventbus.pipes.sources.base import BufferedSource, Source, SourceConfig
from eventbus.pipes.sources.registry import build_source, config_class, kinds, register

if TYPE_CHECKING:
    from eventbus.pipes.sources.directory import DirectorySource, DirectorySourceConfig
    from eventbus.pipes.sources.files import FileSource, FileSourceConfig
    from eventbus.pipes.sources.nats import NatsSource, NatsSourceConfig
    from eventbus.pipes.sources.queue import QueueSource, QueueSourceConfig
    from eventbus.pipes.sources.schedule import ScheduleSource, ScheduleSourceConfig
    from eventbus.pipes.sources.webhook import WebhookSource, WebhookSourceConfig

__all__ = [
    "BufferedSource",
    "DirectorySource",
    "DirectorySourceConfig",
    "FileSource",
    "FileSourceConfig",
    "NatsSource",
    "NatsSourceConfig",
    "QueueSource",
    "QueueSourceConfig",
    "ScheduleSource",
    "ScheduleSourceConfig",
    "Source",
    "SourceConfig",
    "WebhookSource",
    "WebhookSourceConfig",
    "build_source",
    "config_class",
    "kinds",
    "register",
]

# Each source module is imported when one of its names is first used, so a program that only
# reads a queue never imports nats or watchfiles.
_LAZY = {
    "DirectorySource": "directory",
    "DirectorySourceConfig": "directory",
    "FileSource": "files",
    "FileSourceConfig": "files",
    "NatsSource": "nats",
    "NatsSourceConfig": "nats",
    "QueueSource": "queue",
    "QueueSourceConfig": "queue",
    "ScheduleSource": "schedule",
    "ScheduleSourceConfig": "schedule",
    "WebhookSource": "webhook",
    "WebhookSourceConfig": "webhook",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
