"""Source kinds by name: the built-in ones and those other packages add through entry points.

Works like the targets' registry. A package adds a kind with an entry point in the
``eventbus.sources`` group whose name is the kind and whose value is its ``SourceConfig``
subclass::

    [project.entry-points."eventbus.sources"]
    kafka = "my_package.kafka:KafkaSourceConfig"

Entry points are read the first time an unknown kind is asked for, and a class is imported only
when its kind is used, so a broken plug-in only breaks the configs that use it.
"""

from __future__ import annotations

from typing import Any

from eventbus._plugins import PluginRegistry, describe_validation_error
from eventbus.pipes.sources.base import Source, SourceConfig

__all__ = [
    "ENTRY_POINT_GROUP",
    "build_source",
    "config_class",
    "describe_validation_error",
    "kinds",
    "parse_source_config",
    "register",
]

ENTRY_POINT_GROUP = "eventbus.sources"

# Imported on first use: a pipe reading a folder never imports nats.
_SOURCES = PluginRegistry(
    "Source",
    SourceConfig,
    ENTRY_POINT_GROUP,
    {
        "queue": "eventbus.pipes.sources.queue:QueueSourceConfig",
        "nats": "eventbus.pipes.sources.nats:NatsSourceConfig",
        "directory": "eventbus.pipes.sources.directory:DirectorySourceConfig",
        "file": "eventbus.pipes.sources.files:FileSourceConfig",
        "webhook": "eventbus.pipes.sources.webhook:WebhookSourceConfig",
        "schedule": "eventbus.pipes.sources.schedule:ScheduleSourceConfig",
    },
)

# Kinds registered or already resolved; kept under this name so they can be forgotten again.
_registered = _SOURCES.classes


def register(config_cls: type[SourceConfig], *, kind: str | None = None, replace: bool = False) -> None:
    """Make ``config_cls`` available under ``kind`` (default: its ``kind`` class attribute)."""
    _SOURCES.register(config_cls, kind=kind, replace=replace)


def kinds() -> list[str]:
    """Every kind that can be built: built-in, registered, and advertised by entry points."""
    return _SOURCES.kinds()


def config_class(kind: str) -> type[SourceConfig]:
    """The config model of ``kind``; an unknown kind is a ``ConfigError`` naming the known ones."""
    return _SOURCES.config_class(kind)


def parse_source_config(kind: str, options: dict[str, Any]) -> SourceConfig:
    """Validate ``options`` against the kind's config model."""
    return _SOURCES.parse(kind, options)


def build_source(kind: str, options: dict[str, Any]) -> Source:
    """Validate ``options`` against the kind's config model and build the source."""
    return parse_source_config(kind, options).build()
