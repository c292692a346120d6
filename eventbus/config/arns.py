"""What a config declares that ARNs can name: functions (Lambda ARNs) and queues (SQS ARNs).

``resolver_for(configs, ...)`` is the ``ArnResolver`` of those configs; the server adds its API
destinations and buses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from eventbus.config.validate import LoadedConfig
from eventbus.targets.arns import ArnResolver
from eventbus.targets.base import TargetConfig

__all__ = ["config_functions", "config_queues", "resolver_for"]


def resolver_for(
    configs: Sequence[LoadedConfig],
    *,
    destination: Callable[[str, Mapping[str, Any]], TargetConfig | None] = lambda name, params: None,
    bus_exists: Callable[[str], bool] = lambda name: True,
) -> ArnResolver:
    functions: dict[str, TargetConfig] = {}
    queues: dict[str, TargetConfig] = {}
    for loaded in configs:
        functions.update(config_functions(loaded.model))
        queues.update(config_queues(loaded.model))
    return ArnResolver(functions=functions, queues=queues, destination=destination, bus_exists=bus_exists)


def config_functions(model: Any) -> dict[str, TargetConfig]:
    """``functions:``, by name."""
    return dict(getattr(model, "functions", {}))


def config_queues(model: Any) -> dict[str, TargetConfig]:
    """The queues a config declares, by the name an SQS ARN gives: named ``queue`` targets by
    their key, memory queues by their ``name``, SQLite queues by their file's stem."""
    from pathlib import PurePath

    from eventbus.targets.queue import QueueTargetConfig

    found: dict[str, TargetConfig] = {}

    def add(config: QueueTargetConfig) -> None:
        if config.type == "memory" and config.name:
            found.setdefault(config.name, config)
        elif config.path:
            found.setdefault(PurePath(config.path).stem, config)

    def walk(value: Any) -> None:
        if isinstance(value, QueueTargetConfig):
            add(value)
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(getattr(type(value), "model_fields", None), dict):
            for field in type(value).model_fields:
                walk(getattr(value, field, None))

    for name, entry in getattr(model, "targets", {}).items():
        queue = getattr(entry, "queue", None)
        if isinstance(queue, QueueTargetConfig):
            found[name] = queue
    walk(getattr(model, "buses", {}))
    walk(getattr(model, "defaults", None))
    return found
