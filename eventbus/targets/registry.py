"""Target kinds by name: the built-in ones and those other packages add through entry points.

A third-party package adds a kind with an entry point in the ``eventbus.targets`` group whose
name is the kind and whose value is its ``TargetConfig`` subclass::

    [project.entry-points."eventbus.targets"]
    sms = "my_package.sms:SmsTargetConfig"

Entry points are read the first time an unknown kind is asked for, and a class is imported only
when its kind is used, so a broken plug-in only breaks the configs that use it.
"""

from __future__ import annotations

from typing import Any

from eventbus._plugins import PluginRegistry
from eventbus.targets.base import Target, TargetConfig

__all__ = ["ENTRY_POINT_GROUP", "build_target", "config_class", "kinds", "register"]

ENTRY_POINT_GROUP = "eventbus.targets"

# Imported on first use so that, say, a program using only functions never imports httpx or nats.
_TARGETS = PluginRegistry(
    "Target",
    TargetConfig,
    ENTRY_POINT_GROUP,
    {
        "function": "eventbus.targets.function:FunctionTargetConfig",
        "command": "eventbus.targets.command:CommandTargetConfig",
        "http": "eventbus.targets.http:HttpTargetConfig",
        "queue": "eventbus.targets.queue:QueueTargetConfig",
        "bus": "eventbus.targets.bus:BusTargetConfig",
        "log": "eventbus.targets.log:LogTargetConfig",
        "file": "eventbus.targets.files:FileTargetConfig",
        "nats": "eventbus.targets.nats:NatsTargetConfig",
        "recording": "eventbus.targets.recording:RecordingTargetConfig",
        "sql": "eventbus.targets.sql:SqlTargetConfig",
        "cloudevents": "eventbus.targets.cloudevents:CloudEventsTargetConfig",
    },
)

# Kinds registered or already resolved; kept under this name so they can be forgotten again.
_registered = _TARGETS.classes


def register(config_cls: type[TargetConfig], *, kind: str | None = None, replace: bool = False) -> None:
    """Make ``config_cls`` available under ``kind`` (default: its ``kind`` class attribute)."""
    _TARGETS.register(config_cls, kind=kind, replace=replace)


def kinds() -> list[str]:
    """Every kind that can be built: built-in, registered, and advertised by entry points."""
    return _TARGETS.kinds()


def config_class(kind: str) -> type[TargetConfig]:
    """The config model of ``kind``; an unknown kind is a ``ConfigError`` naming the known ones."""
    return _TARGETS.config_class(kind)


def build_target(kind: str, options: dict[str, Any]) -> Target:
    """Validate ``options`` against the kind's config model and build the target."""
    return _TARGETS.parse(kind, options).build()
