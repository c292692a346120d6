"""A target as data, and back: what a rule bucket shared by many processes stores.

``describe(target)`` answers ``{kind: options}``, the form a config file writes, for a target that
can be built again anywhere from it: one built from a ``TargetConfig`` (``HttpTarget.create``,
a config file's targets), a ``FunctionTarget`` of a function importable by name
(``module:qualname``), a ``BusTarget`` by name. It answers ``None`` for a target only this process
can hold (a lambda, a ``RecordingTarget`` in memory). ``build(description)`` makes the target.

Secrets in a config (passwords, API keys) are part of its description: a bucket holding
descriptions must be guarded like the config file they came from.
"""

from __future__ import annotations

import contextlib
import importlib
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, SecretStr

from eventbus.targets import registry
from eventbus.targets.base import Target, TargetConfig

__all__ = ["build", "describe", "remember"]


def remember(target: object, config: TargetConfig) -> None:
    """Note that ``target`` was built from ``config`` (for ``describe``)."""
    # A class with __slots__ takes no new attribute: such a target stays undescribed.
    with contextlib.suppress(AttributeError, TypeError):
        target.described_by = config  # type: ignore[attr-defined]


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it (secrets revealed), or raise ``TypeError``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, BaseModel):
        return _plain(value.model_dump(exclude_unset=True))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    raise TypeError(f"{type(value).__name__} cannot be stored")


def _config_of(target: object) -> TargetConfig | None:
    for attribute in ("described_by", "config"):
        config = getattr(target, attribute, None)
        if isinstance(config, TargetConfig) and config.kind:
            return config
    return None


def _function_ref(func: Any) -> str | None:
    module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    return f"{module}:{qualname}" if found is func else None


def describe(target: object) -> dict[str, Any] | None:
    """``{kind: options}`` that builds ``target`` again, or ``None`` if nothing can."""
    config = _config_of(target)
    if config is not None:
        try:
            return {config.kind: _plain(config.model_dump(exclude_unset=True))}
        except TypeError:
            return None
    # Late imports: the kinds below import this module's neighbours.
    from eventbus.targets.bus import BusTarget
    from eventbus.targets.function import FunctionTarget

    if isinstance(target, BusTarget):
        return {"bus": {"bus": target.bus_name}}
    if isinstance(target, FunctionTarget):
        ref = _function_ref(target.func)
        if ref is None:
            return None
        options: dict[str, Any] = {"function": ref}
        if target.invocation_type != "REQUEST_RESPONSE":
            options["invocation_type"] = target.invocation_type
        if target.timeout is not None:
            options["timeout"] = target.timeout
        if target.max_concurrency is not None:
            options["max_concurrency"] = target.max_concurrency
        return {"function": options}
    return None


def build(description: dict[str, Any]) -> Target:
    """The target ``description`` (``{kind: options}``) stands for; ``ConfigError`` if none."""
    [(kind, options)] = description.items()
    config = registry.config_class(kind).model_validate(options)
    target = config.build()
    remember(target, config)
    return target
