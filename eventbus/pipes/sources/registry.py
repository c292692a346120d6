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

import difflib
import importlib
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError

from eventbus.errors import ConfigError
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
_BUILTIN: dict[str, str] = {
    "queue": "eventbus.pipes.sources.queue:QueueSourceConfig",
    "nats": "eventbus.pipes.sources.nats:NatsSourceConfig",
    "directory": "eventbus.pipes.sources.directory:DirectorySourceConfig",
    "file": "eventbus.pipes.sources.files:FileSourceConfig",
    "webhook": "eventbus.pipes.sources.webhook:WebhookSourceConfig",
    "schedule": "eventbus.pipes.sources.schedule:ScheduleSourceConfig",
}

_registered: dict[str, type[SourceConfig]] = {}
_entry_points: dict[str, EntryPoint] | None = None


def register(config_cls: type[SourceConfig], *, kind: str | None = None, replace: bool = False) -> None:
    """Make ``config_cls`` available under ``kind`` (default: its ``kind`` class attribute)."""
    if not (isinstance(config_cls, type) and issubclass(config_cls, SourceConfig)):
        raise ConfigError(f"{config_cls!r} is not a SourceConfig subclass")
    name = kind or config_cls.kind
    if not name:
        raise ConfigError(f"{config_cls.__name__} has no kind: set the class attribute 'kind'")
    if not replace and name in _known_names() and _registered.get(name) is not config_cls:
        raise ConfigError(f"Source kind {name!r} is already registered; pass replace=True to override it")
    _registered[name] = config_cls


def kinds() -> list[str]:
    """Every kind that can be built: built-in, registered, and advertised by entry points."""
    return sorted(_known_names())


def config_class(kind: str) -> type[SourceConfig]:
    """The config model of ``kind``; an unknown kind is a ``ConfigError`` naming the known ones."""
    if kind in _registered:
        return _registered[kind]
    if kind in _BUILTIN:
        module_name, _, attr = _BUILTIN[kind].partition(":")
        cls: Any = getattr(importlib.import_module(module_name), attr)
    elif kind in _discover():
        entry = _discover()[kind]
        try:
            cls = entry.load()
        except Exception as exc:
            raise ConfigError(
                f"Source kind {kind!r} comes from entry point {entry.value!r}, "
                f"which failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, SourceConfig)):
            raise ConfigError(
                f"Entry point {kind!r} in group {ENTRY_POINT_GROUP!r} must name a SourceConfig subclass, "
                f"got {cls!r}"
            )
    else:
        known = kinds()
        close = difflib.get_close_matches(kind, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"Unknown source kind {kind!r}.{hint} Known kinds: {', '.join(known)}")
    _registered[kind] = cls
    return cls  # type: ignore[no-any-return]


def parse_source_config(kind: str, options: dict[str, Any]) -> SourceConfig:
    """Validate ``options`` against the kind's config model."""
    cls = config_class(kind)
    try:
        return cls.model_validate(options)
    except ValidationError as exc:
        raise ConfigError(
            f"Invalid options for source kind {kind!r}: {describe_validation_error(exc)}"
        ) from None


def build_source(kind: str, options: dict[str, Any]) -> Source:
    """Validate ``options`` against the kind's config model and build the source."""
    return parse_source_config(kind, options).build()


def describe_validation_error(exc: ValidationError) -> str:
    """A pydantic error as one line: ``field.path: message; ...`` (no input values: they may be secret)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"]) or "(options)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _known_names() -> set[str]:
    return set(_BUILTIN) | set(_registered) | set(_discover())


def _discover() -> dict[str, EntryPoint]:
    global _entry_points
    if _entry_points is None:
        _entry_points = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _entry_points
