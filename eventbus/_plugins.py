"""Kinds by name for one family of config classes: built-in ones, ones registered from code, and
ones other packages advertise through an entry-point group.

Targets and sources each keep one ``PluginRegistry``; their ``registry`` modules delegate to it,
so the two behave and word their errors alike.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from eventbus.errors import ConfigError

__all__ = ["PluginRegistry", "describe_validation_error"]

C = TypeVar("C", bound=BaseModel)


class PluginRegistry(Generic[C]):
    """Config classes of one family by kind.

    ``noun`` names the family in messages ("Target"), ``base`` is the class every kind's config
    subclasses, ``group`` the entry-point group, and ``builtin`` maps kinds to
    ``"module:Class"`` references, imported only when their kind is first used.
    """

    def __init__(self, noun: str, base: type[C], group: str, builtin: Mapping[str, str]) -> None:
        self.noun = noun
        self.base = base
        self.group = group
        self.builtin = dict(builtin)
        #: Kinds registered from code and kinds already resolved; checked before anything else.
        self.classes: dict[str, type[C]] = {}
        self._entry_points: dict[str, EntryPoint] = {}
        self._entry_points_path: tuple[str, ...] | None = None

    def register(self, config_cls: type[C], *, kind: str | None = None, replace: bool = False) -> None:
        """Make ``config_cls`` available under ``kind`` (default: its ``kind`` class attribute)."""
        if not (isinstance(config_cls, type) and issubclass(config_cls, self.base)):
            raise ConfigError(f"{config_cls!r} is not a {self.base.__name__} subclass")
        name = kind or getattr(config_cls, "kind", "")
        if not name:
            raise ConfigError(f"{config_cls.__name__} has no kind: set the class attribute 'kind'")
        if not replace and name in self._known_names() and self._current(name) is not config_cls:
            raise ConfigError(
                f"{self.noun} kind {name!r} is already registered; pass replace=True to override it"
            )
        self.classes[name] = config_cls

    def kinds(self) -> list[str]:
        """Every kind that can be built: built-in, registered, and advertised by entry points."""
        return sorted(self._known_names())

    def config_class(self, kind: str) -> type[C]:
        """The config model of ``kind``; an unknown kind is a ``ConfigError`` naming the known ones."""
        if kind in self.classes:
            return self.classes[kind]
        if kind in self.builtin:
            module_name, _, attr = self.builtin[kind].partition(":")
            try:
                cls: Any = getattr(importlib.import_module(module_name), attr)
            except ImportError as exc:
                # Usually an optional dependency that is not installed: a config naming the
                # kind is what cannot be used, so it is a ConfigError like an unknown kind.
                raise ConfigError(f"{self.noun} kind {kind!r} cannot be used: {exc}") from exc
        elif kind in self._discover():
            entry = self._discover()[kind]
            try:
                cls = entry.load()
            except Exception as exc:
                raise ConfigError(
                    f"{self.noun} kind {kind!r} comes from entry point {entry.value!r}, "
                    f"which failed to load: {type(exc).__name__}: {exc}"
                ) from exc
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise ConfigError(
                    f"Entry point {kind!r} in group {self.group!r} must name a {self.base.__name__} "
                    f"subclass, got {cls!r}"
                )
        else:
            known = self.kinds()
            close = difflib.get_close_matches(kind, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"Unknown {self.noun.lower()} kind {kind!r}.{hint} Known kinds: {', '.join(known)}"
            )
        self.classes[kind] = cls
        return cls  # type: ignore[no-any-return]

    def parse(self, kind: str, options: dict[str, Any]) -> C:
        """Validate ``options`` against the kind's config model."""
        cls = self.config_class(kind)
        try:
            return cls.model_validate(options)
        except ValidationError as exc:
            # Not chained: pydantic's own message quotes the input values, which may be secrets.
            raise ConfigError(
                f"Invalid options for {self.noun.lower()} kind {kind!r}: {describe_validation_error(exc)}"
            ) from None

    def _current(self, kind: str) -> type[C] | None:
        # What ``kind`` names now, resolved if need be: registering a built-in's own class again
        # is a no-op whether or not the kind has been used yet.
        try:
            return self.config_class(kind)
        except ConfigError:
            return None

    def _known_names(self) -> set[str]:
        return set(self.builtin) | set(self.classes) | set(self._discover())

    def _discover(self) -> dict[str, EntryPoint]:
        # Distributions are found along sys.path, so a changed path may advertise other kinds.
        path = tuple(sys.path)
        if path != self._entry_points_path:
            self._entry_points = {ep.name: ep for ep in entry_points(group=self.group)}
            self._entry_points_path = path
        return self._entry_points


def describe_validation_error(exc: ValidationError) -> str:
    """A pydantic error as one line: ``field.path: message; ...`` (no input values: they may be secret)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"]) or "(options)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
