"""The config schema: pydantic models composed from the ones the library already uses.

A file holds ``runtime``, ``defaults``, ``connections``, ``targets`` (named, reusable), ``buses``
(with their rules, schedules and targets), ``pipes`` and ``maps``; ``server``, ``functions`` and
``invoke`` are read by ``eventbus serve``. Targets are written as one key naming
their kind, whose value is that kind's own ``TargetConfig`` (``http: {endpoint: ...}``), next to
the rule-side settings EventBridge keeps on a target (``id``, ``input_transformer``,
``retry_policy``, ``dead_letter``...). The kinds come from ``eventbus.targets.registry``, so a
plug-in's kind is part of the schema as soon as it is installed. ``ref: NAME`` points at a named
target instead.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue

from eventbus.bus import BusConfig
from eventbus.bus.delivery.retry import RetryPolicy
from eventbus.config.backends import Backend, JetStreamBackend, MemoryBackend, SqliteBackend, backend_by_name
from eventbus.config.invoke import InvokeSettings, RouteName, RouteSpec
from eventbus.config.server import FunctionSpec, ServerSettings
from eventbus.errors import ConfigError, PatternError
from eventbus.patterns import Pattern
from eventbus.schedule import Schedule
from eventbus.targets import registry
from eventbus.targets.base import TargetConfig
from eventbus.targets.connection import Connection
from eventbus.transform import InputTransformer, TargetInput

__all__ = [
    "REF",
    "ArchiveSpec",
    "BusSpec",
    "Defaults",
    "JetStreamBackend",
    "MemoryBackend",
    "RuleSpec",
    "SqliteBackend",
    "RuntimeSettings",
    "config_model",
    "json_schema",
    "kind_of",
    "target_kinds",
]

#: The key of a target entry that points at a named target instead of declaring one.
REF = "ref"

#: Keys a rule's target entry may hold besides its kind (EventBridge's per-target settings).
RULE_TARGET_FIELDS = (
    "id",
    "input",
    "input_path",
    "input_transformer",
    "retry_policy",
    "dead_letter",
    "max_concurrency",
    "queue_size",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuntimeSettings(_Model):
    """How the process runs what the file declares."""

    #: Where buses keep events between PutEvents and delivery (``backends.py``). Unset, the
    #: command decides: ``eventbus run`` uses SQLite beside the config, ``put`` and ``test`` memory.
    backend: Backend | None = None
    #: Folders (relative to the config file) put on ``sys.path`` so ``function`` targets can
    #: name modules that live beside the config.
    python_path: list[str] = Field(default_factory=list)

    @field_validator("backend", mode="before")
    @classmethod
    def _backend_by_name(cls, value: Any) -> Any:
        return backend_by_name(value)


@functools.cache
def target_kinds() -> dict[str, type[TargetConfig]]:
    """Every target kind whose config model imports, by name."""
    found: dict[str, type[TargetConfig]] = {}
    for kind in registry.kinds():
        try:
            found[kind] = registry.config_class(kind)
        except (ConfigError, ImportError):
            continue
    return found


def kind_of(value: Any) -> str | None:
    """Which kind (or ``ref``) a target entry declares; ``None`` unless exactly one."""
    if isinstance(value, dict):
        keys = [k for k in value if k == REF or k in target_kinds()]
        return keys[0] if len(keys) == 1 else None
    tag = getattr(value, "_kind_tag", None)
    return tag if isinstance(tag, str) else None


class _TargetFields(_Model):
    """One key naming the target's kind (``http``, ``function``...; see the kinds below) with that
    kind's options, or ``ref: NAME`` for a named target, plus EventBridge's per-target settings.
    ``id`` defaults to the kind (numbered when a rule has several of it); at most one of
    ``input``, ``input_path`` and ``input_transformer``."""

    id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[\.\-_A-Za-z0-9]+$")
    input: str | None = None
    input_path: str | None = None
    input_transformer: InputTransformer | None = None
    retry_policy: RetryPolicy | None = None
    dead_letter: Any = None
    max_concurrency: int | None = Field(default=None, ge=1)
    queue_size: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _input_is_valid(self) -> _TargetFields:
        # PutTargets' own checks (one input form, placeholders, JSONPaths), with AWS's messages.
        if self.input is not None or self.input_path is not None or self.input_transformer is not None:
            TargetInput(
                self.id or kind_of(self) or "target",
                input=self.input,
                input_path=self.input_path,
                input_transformer=self.input_transformer,
            )
        return self


def _target_union(with_rule_fields: bool) -> Any:
    members: list[Any] = []
    base: type[BaseModel] = _TargetFields if with_rule_fields else _Model
    suffix = "RuleTarget" if with_rule_fields else "Target"
    dead_letter = (Annotated[_target_union(False) | None, Field(default=None)],) if with_rule_fields else ()
    for kind, cls in sorted(target_kinds().items()):
        fields: dict[str, Any] = {kind: (cls, ...)}
        if dead_letter:
            fields["dead_letter"] = (dead_letter[0], None)
        model = create_model(f"{_camel(kind)}{suffix}", __base__=base, __doc__=base.__doc__, **fields)
        setattr(model, "_kind_tag", kind)  # read back by kind_of  # noqa: B010
        members.append(Annotated[model, Tag(kind)])
    ref_fields: dict[str, Any] = {REF: (str, Field(min_length=1))}
    if dead_letter:
        ref_fields["dead_letter"] = (dead_letter[0], None)
    ref_model = create_model(f"Ref{suffix}", __base__=base, __doc__=base.__doc__, **ref_fields)
    setattr(ref_model, "_kind_tag", REF)  # noqa: B010
    members.append(Annotated[ref_model, Tag(REF)])
    union = functools.reduce(lambda a, b: a | b, members[1:], members[0]) if len(members) > 1 else members[0]
    return Annotated[
        union,
        Discriminator(
            kind_of,
            custom_error_type="target_kind",
            custom_error_message="a target needs exactly one kind key",
        ),
    ]


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


class RuleSpec(_Model):
    """A rule: an event pattern or a schedule (or both), and up to five targets."""

    description: str | None = Field(default=None, max_length=512)
    state: Literal["ENABLED", "DISABLED"] = "ENABLED"
    pattern: dict[str, Any] | None = None
    schedule: str | None = None
    targets: list[Any] = Field(default_factory=list)

    @field_validator("pattern")
    @classmethod
    def _pattern_is_valid(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                Pattern(value)
            except PatternError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule_is_valid(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Schedule.parse(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _pattern_or_schedule(self) -> RuleSpec:
        if self.pattern is None and self.schedule is None:
            raise ValueError("Parameter(s) EventPattern or ScheduleExpression must be specified.")
        return self


class ArchiveSpec(_Model):
    """An archive of the bus's events: those matching `pattern` (every event without one), kept
    `retention_days` (0: for ever). Names are unique across every bus of a state file."""

    pattern: dict[str, Any] | None = None
    retention_days: int = Field(default=0, ge=0)
    description: str | None = Field(default=None, max_length=512)

    @field_validator("pattern")
    @classmethod
    def _pattern_is_valid(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                Pattern(value)
            except PatternError as exc:
                raise ValueError(str(exc)) from None
        return value


class BusSpec(_Model):
    """A bus: its limits (``BusConfig``, over ``defaults.bus``), its rules and its archives by name."""

    settings: dict[str, Any] = Field(default_factory=dict)
    rules: dict[str, Any] = Field(default_factory=dict)
    archives: dict[str, ArchiveSpec] = Field(default_factory=dict)

    @field_validator("archives")
    @classmethod
    def _archive_names(cls, value: dict[str, ArchiveSpec]) -> dict[str, ArchiveSpec]:
        for name in value:
            if not re.fullmatch(r"[\.\-_A-Za-z0-9]{1,48}", name):
                raise ValueError(f"archive name {name!r}: 1 to 48 of A-Z a-z 0-9 . - _")
        return value

    @field_validator("settings")
    @classmethod
    def _settings_are_bus_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        BusConfig.model_validate(value)
        return value


class Defaults(_Model):
    """What every target gets unless it says otherwise."""

    retry_policy: RetryPolicy | None = None
    dead_letter: Any = None
    bus: dict[str, Any] = Field(default_factory=dict)


@functools.cache
def config_model() -> type[BaseModel]:
    """The whole file's model (built once, after the installed target kinds are known)."""
    target = _target_union(False)
    rule_target = _target_union(True)
    rule = create_model(
        "Rule",
        __base__=RuleSpec,
        __doc__=RuleSpec.__doc__,
        targets=(_list_of(rule_target), Field(default_factory=list)),
    )
    bus = create_model(
        "Bus",
        __base__=BusSpec,
        __doc__=BusSpec.__doc__,
        settings=(BusConfig, Field(default_factory=BusConfig)),
        rules=(_dict_of(rule), Field(default_factory=dict)),
    )
    defaults = create_model(
        "DefaultSettings",
        __base__=Defaults,
        __doc__=Defaults.__doc__,
        dead_letter=(target | None, None),
        bus=(BusConfig, Field(default_factory=BusConfig)),
    )
    route = create_model(
        "InvokeRoute",
        __base__=RouteSpec,
        __doc__=RouteSpec.__doc__,
        target=(target, ...),
    )
    invoke = create_model(
        "Invoke",
        __base__=InvokeSettings,
        __doc__=InvokeSettings.__doc__,
        routes=(dict[RouteName, route], Field(default_factory=dict)),
    )
    pipes: Any = dict[str, Any]
    pipe_config = _pipe_config()
    if pipe_config is not None:
        pipes = _dict_of(pipe_config)
    from eventbus.maps.config import MapConfig

    model: type[BaseModel] = create_model(
        "EventbusConfig",
        __base__=_Model,
        __doc__="An eventbus config file: buses, pipes, maps, targets, connections, defaults and runtime.",
        version=(Literal[1], 1),
        runtime=(RuntimeSettings, Field(default_factory=RuntimeSettings)),
        defaults=(defaults, Field(default_factory=defaults)),
        connections=(dict[str, Connection], Field(default_factory=dict)),
        targets=(_dict_of(target), Field(default_factory=dict)),
        buses=(_dict_of(bus), Field(default_factory=dict)),
        pipes=(pipes, Field(default_factory=dict)),
        functions=(dict[str, FunctionSpec], Field(default_factory=dict)),
        server=(ServerSettings, Field(default_factory=ServerSettings)),
        maps=(_dict_of(MapConfig), Field(default_factory=dict)),
        invoke=(invoke, Field(default_factory=invoke)),
    )
    return model


def _dict_of(value: Any) -> Any:
    return dict[str, value]


def _list_of(value: Any) -> Any:
    return list[value]


def pipes_available() -> bool:
    """Whether this installation has ``eventbus.pipes.PipeConfig`` to validate pipes with."""
    return _pipe_config() is not None


def _pipe_config() -> type[BaseModel] | None:
    # Pipes land after this module; until then a file that declares one is told so.
    try:
        from eventbus import pipes
    except Exception:  # pragma: no cover - a half-installed pipes package must not break configs
        return None
    found = getattr(pipes, "PipeConfig", None)
    return found if isinstance(found, type) and issubclass(found, BaseModel) else None


class _SchemaGenerator(GenerateJsonSchema):
    # A ``function`` target takes a callable from Python code; a file can only name one.
    def callable_schema(self, schema: Any) -> JsonSchemaValue:
        return {"description": "a Python callable (from Python code only)"}


@functools.cache
def json_schema() -> dict[str, Any]:
    """The config file's JSON Schema (what ``eventbus schema`` prints), for editor completion."""
    schema = config_model().model_json_schema(schema_generator=_SchemaGenerator)
    _describe_pipe_stages(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "eventbus config"
    return schema


def _describe_pipe_stages(schema: dict[str, Any]) -> None:
    """Give a pipe's stages their real shape in the JSON Schema, for editor completion.

    ``PipeConfig`` validates its source, enrichment, target and dead letter itself (each is
    ``{kind: options}`` resolved through a registry), so pydantic can only say "anything" there.
    Targets reuse the ``{kind: options}`` models above; sources get the same treatment here.
    """
    defs = schema.get("$defs", {})
    targets = [{"$ref": f"#/$defs/{_camel(kind)}Target"} for kind in [*sorted(target_kinds()), REF]]
    targets = [ref for ref in targets if ref["$ref"].rsplit("/", 1)[-1] in defs]
    # A map's stages are targets too (its source has a model of its own).
    mapped = defs.get("MapConfig", {}).get("properties", {})
    for stage in ("target", "reduce", "dead_letter"):
        if stage in mapped and targets:
            mapped[stage] = {**mapped[stage], "anyOf": [*targets, {"type": "null"}] if stage != "target" else targets}
    pipe = defs.get("PipeConfig")
    if pipe is None:
        return
    props = pipe.get("properties", {})
    for stage in ("target", "enrichment", "dead_letter"):
        if stage in props and targets:
            props[stage] = {
                **props[stage],
                "anyOf": [*targets, {"type": "null"}] if stage != "target" else targets,
            }
    try:
        from eventbus.pipes.sources import registry as sources
    except Exception:  # pragma: no cover - pipes not installed
        return
    branches = []
    for kind in sources.kinds():
        try:
            cls = sources.config_class(kind)
            options = cls.model_json_schema(schema_generator=_SchemaGenerator, ref_template="#/$defs/{model}")
        except Exception:  # a broken plug-in leaves its kind out of the schema, not the schema out
            continue
        defs.update(options.pop("$defs", {}))
        name = f"{_camel(kind)}SourceConfig"
        defs[name] = options
        branches.append(
            {
                "type": "object",
                "properties": {kind: {"$ref": f"#/$defs/{name}"}},
                "required": [kind],
                "additionalProperties": False,
            }
        )
    if branches and "source" in props:
        props["source"] = {**props["source"], "anyOf": branches}
