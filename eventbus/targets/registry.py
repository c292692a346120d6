"""Target kinds by name: the built-in ones and those other packages add through entry points.

A third-party package adds a kind with an entry point in the ``eventbus.targets`` group whose
name is the kind and whose value is its ``TargetConfig`` subclass::

    [project.entry-points."eventbus.targets"]
    sms = "my_package.sms:SmsTargetConfig"

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
from eventbus.targets.base import Target, TargetConfig

__all__ = ["ENTRY_POINT_GROUP", "build_target", "config_class", "kinds", "register"]

ENTRY_POINT_GROUP = "eventbus.targets"

# Imported on first use so that, say, a program using only functions never imports httpx or nats.
_BUILTIN: dict[str, str] = {
    "function": "eventbus.targets.function:FunctionTargetConfig",
    "command": "eventbus.targets.command:CommandTargetConfig",
    "http": "eventbus.targets.http:HttpTargetConfig",
    "queue": "eventbus.targets.queue:QueueTargetConfig",
    "bus": "eventbus.targets.bus:BusTargetConfig",
    "log": "eventbus.targets.log:LogTargetConfig",
    "file": "eventbus.targets.files:FileTargetConfig",
    "nats": "eventbus.targets.nats:NatsTargetConfig",
    "recording": "eventbus.targets.recording:RecordingTargetConfig",
}

_registered: dict[str, type[TargetConfig]] = {}
_entry_points: dict[str, EntryPoint] | None = None


def register(config_cls: type[TargetConfig], *, kind: str | None = None, replace: bool = False) -> None:
    """Make ``config_cls`` available under ``kind`` (default: its ``kind`` class attribute)."""
    if not (isinstance(config_cls, type) and issubclass(config_cls, TargetConfig)):
        raise ConfigError(f"{config_cls!r} is not a TargetConfig subclass")
    name = kind or config_cls.kind
    if not name:
        raise ConfigError(f"{config_cls.__name__} has no kind: set the class attribute 'kind'")
    if not replace and name in _known_names() and _peek(name) is not config_cls:
        raise ConfigError(f"Target kind {name!r} is already registered; pass replace=True to override it")
    _registered[name] = config_cls


def kinds() -> list[str]:
    """Every kind that can be built: built-in, registered, and advertised by entry points."""
    return sorted(_known_names())


def config_class(kind: str) -> type[TargetConfig]:
    """The config model of ``kind``; an unknown kind is a ``ConfigError`` naming the known ones."""
    if kind in _registered:
        return _registered[kind]
    if kind in _BUILTIN:
        try:
            cls = _import(_BUILTIN[kind], kind)
        except ImportError as exc:
            raise ConfigError(f"Target kind {kind!r} cannot be used: {exc}") from exc
    elif kind in _discover():
        try:
            cls = _discover()[kind].load()
        except Exception as exc:
            raise ConfigError(
                f"Target kind {kind!r} comes from entry point {_discover()[kind].value!r}, "
                f"which failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, TargetConfig)):
            raise ConfigError(
                f"Entry point {kind!r} in group {ENTRY_POINT_GROUP!r} must name a TargetConfig subclass, "
                f"got {cls!r}"
            )
    else:
        known = kinds()
        close = difflib.get_close_matches(kind, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"Unknown target kind {kind!r}.{hint} Known kinds: {', '.join(known)}")
    _registered[kind] = cls
    return cls


def build_target(kind: str, options: dict[str, Any]) -> Target:
    """Validate ``options`` against the kind's config model and build the target."""
    cls = config_class(kind)
    try:
        config = cls.model_validate(options)
    except ValidationError as exc:
        raise ConfigError(f"Invalid options for target kind {kind!r}: {_describe(exc)}") from exc
    return config.build()


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"]) or "(options)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _peek(name: str) -> type[TargetConfig] | None:
    return _registered.get(name)


def _known_names() -> set[str]:
    return set(_BUILTIN) | set(_registered) | set(_discover())


def _import(ref: str, kind: str) -> type[TargetConfig]:
    module_name, _, attr = ref.partition(":")
    cls: type[TargetConfig] = getattr(importlib.import_module(module_name), attr)
    return cls


def _discover() -> dict[str, EntryPoint]:
    global _entry_points
    if _entry_points is None:
        _entry_points = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _entry_points
