"""From parsed documents to a validated config, with every problem reported at once.

Steps: ``${...}`` references are filled in, targets written ``kind: NAME`` are read as
``{NAME: options}``, named connections are put in place, the schema
validates the whole file, and cross-references (named targets, rule and bus names, target ids)
are checked. Pydantic's errors are turned into ``Problem``s whose key paths read as the file is
written (``targets[0].http.endpoint``), and unknown keys get a did-you-mean from the schema.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from eventbus import redact
from eventbus.bus import EventBus
from eventbus.bus.rules import check_rule_name
from eventbus.config.errors import ConfigErrors, KeyPath, Problem
from eventbus.config.kinds import read_kind_spelling
from eventbus.config.load import Document, load_document
from eventbus.config.schema import (
    REF,
    RULE_TARGET_FIELDS,
    config_model,
    json_schema,
    kind_of,
    pipes_available,
    target_kinds,
)
from eventbus.config.secrets import interpolate
from eventbus.errors import BusValidationError

__all__ = [
    "LoadedConfig",
    "did_you_mean",
    "load_config",
    "load_configs",
    "problems_from",
    "target_id",
    "validate_document",
]


@dataclass(slots=True)
class LoadedConfig:
    """A valid config file: its validated model and where it came from."""

    document: Document
    model: Any

    @property
    def file(self) -> str:
        return self.document.file

    def __repr__(self) -> str:
        # Not the document: its data holds every secret as the file (or ${ENV}) gave it.
        return redact.mask(f"LoadedConfig(file={self.file!r}, model={self.model!r})")


def load_config(
    path: str | Path, environ: Mapping[str, str] | None = None, *, import_functions: bool = True
) -> LoadedConfig:
    """Load and validate one file; ``ConfigErrors`` lists everything wrong with it.

    Function references (``module:function``) are imported and checked to name a callable;
    ``import_functions=False`` only checks that each module can be found, running none of them.
    """
    return validate_document(load_document(path), environ, import_functions=import_functions)


def load_configs(
    paths: Sequence[str | Path], environ: Mapping[str, str] | None = None, *, import_functions: bool = True
) -> list[LoadedConfig]:
    """Load several files that run together; a bus or pipe may be declared in only one of them."""
    problems: list[Problem] = []
    loaded: list[LoadedConfig] = []
    for path in paths:
        try:
            loaded.append(load_config(path, environ, import_functions=import_functions))
        except ConfigErrors as exc:
            problems.extend(exc.problems)
    seen: dict[tuple[str, str], str] = {}
    for config in loaded:
        for section in ("buses", "pipes", "maps"):
            for name in getattr(config.model, section):
                where = seen.setdefault((section, name), config.file)
                if where != config.file:
                    problems.append(config.document.problem((section, name), f"already declared in {where}"))
        for name in config.model.invoke.routes:
            where = seen.setdefault(("invoke", name), config.file)
            if where != config.file:
                problems.append(
                    config.document.problem(("invoke", "routes", name), f"already declared in {where}")
                )
    if problems:
        raise ConfigErrors(problems)
    return loaded


def validate_document(
    document: Document, environ: Mapping[str, str] | None = None, *, import_functions: bool = True
) -> LoadedConfig:
    if not isinstance(document.data, dict):
        raise ConfigErrors([document.problem((), "the top level must be a mapping of sections")])
    problems = interpolate(document, environ)
    spelled = read_kind_spelling(document)
    problems += spelled + _put_connections(document)
    model = None
    try:
        model = config_model().model_validate(document.data)
    except ValidationError as exc:
        # A target whose ``kind:`` was unusable is reported once, by the spelling check.
        broken = [p.path[:-1] for p in spelled if p.path[-1:] == ("kind",)]
        problems += [
            p for p in problems_from(document, exc) if not any(p.path[: len(b)] == b for b in broken)
        ]
    if model is not None:
        problems += _cross_check(document, model)
        problems += _check_functions(document, model, import_functions)
    if problems:
        raise ConfigErrors(_unique(problems))
    return LoadedConfig(document, model)


def _unique(problems: Iterable[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


# -- connections -----------------------------------------------------------------------------


def _put_connections(document: Document) -> list[Problem]:
    """``connection: NAME`` in an ``http`` target becomes the connection declared under that name."""
    data = document.data
    connections = data.get("connections")
    known = connections if isinstance(connections, dict) else {}
    problems: list[Problem] = []

    def walk(value: Any, path: KeyPath) -> None:
        if isinstance(value, dict):
            http = value.get("http")
            if isinstance(http, dict) and isinstance(http.get("connection"), str):
                name = http["connection"]
                where = (*path, "http", "connection")
                if name in known:
                    http["connection"] = known[name]
                else:
                    del http["connection"]
                    problems.append(
                        document.problem(where, f"no connection named {name!r}{did_you_mean(name, known)}")
                    )
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*path, index))

    for section in ("buses", "targets", "defaults", "pipes"):
        walk(data.get(section), (section,))
    return problems


# -- pydantic errors -------------------------------------------------------------------------


def problems_from(
    document: Document, exc: ValidationError, schema: dict[str, Any] | None = None, prefix: KeyPath = ()
) -> list[Problem]:
    """``exc``'s errors as problems in ``document``; ``schema`` (default: the config's) suggests keys."""
    return [
        _problem(document, error, schema, prefix)
        for error in exc.errors(include_url=False, include_input=False)
    ]


def _problem(
    document: Document, error: Any, schema: dict[str, Any] | None = None, prefix: KeyPath = ()
) -> Problem:
    path = (*prefix, *_file_path(tuple(error["loc"])))
    kind = error["type"]
    if kind == "extra_forbidden":
        parent, key = path[len(prefix) : -1], path[-1]
        allowed = _allowed_keys(parent, schema)
        reason = f"unknown key{did_you_mean(str(key), allowed)}"
    elif kind == "target_kind":
        reason = _kind_problem(_value_at(document.data, path))
    elif kind == "string_pattern_mismatch" and "https?://" in str(error.get("ctx", {}).get("pattern", "")):
        reason = "not a valid URL (it must start with http:// or https://)"
    else:
        reason = _reason(error["msg"])
    return document.problem(path, reason)


def _reason(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message.splitlines()[0] if message else "invalid"


def _file_path(loc: KeyPath) -> KeyPath:
    """Drop the union tags pydantic puts in locations (``targets[0].http.http.endpoint``)."""
    tags = set(target_kinds()) | {REF}
    out: list[str | int] = []
    for index, part in enumerate(loc):
        prev = loc[index - 1] if index else None
        in_slot = (
            (isinstance(prev, int) and index >= 2 and loc[index - 2] == "targets")
            or prev == "dead_letter"
            or (index == 2 and loc[0] == "targets")
        )
        if part in tags and in_slot and index + 1 < len(loc):
            continue
        out.append(part)
    return tuple(out)


def _kind_problem(value: Any) -> str:
    kinds = sorted(target_kinds())
    if not isinstance(value, dict):
        return f"a target must be a mapping with one kind key ({', '.join(kinds)}) or ref"
    found = [k for k in value if k in kinds or k == REF]
    if len(found) > 1:
        return f"a target has exactly one kind, found {', '.join(found)}"
    unknown = [k for k in value if k not in RULE_TARGET_FIELDS]
    if unknown:
        return f"unknown target kind {unknown[0]!r}{did_you_mean(unknown[0], [*kinds, REF])}"
    return f"a target needs a kind: one of {', '.join(kinds)}, or ref"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` (difflib), or ``""``."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _value_at(data: Any, path: KeyPath) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _allowed_keys(path: KeyPath, schema: dict[str, Any] | None = None) -> set[str]:
    """The keys the schema allows at ``path`` (all union branches together)."""
    schema = schema or json_schema()
    defs = schema.get("$defs", {})

    def expand(node: Any) -> list[dict[str, Any]]:
        if not isinstance(node, dict):
            return []
        if "$ref" in node:
            return expand(defs.get(node["$ref"].rsplit("/", 1)[-1]))
        branches = node.get("anyOf") or node.get("oneOf")
        if branches:
            return [b for branch in branches for b in expand(branch)]
        return [node]

    nodes = expand(schema)
    for part in path:
        nxt: list[dict[str, Any]] = []
        for node in nodes:
            if isinstance(part, int):
                nxt += expand(node.get("items"))
            elif part in node.get("properties", {}):
                nxt += expand(node["properties"][part])
            elif isinstance(node.get("additionalProperties"), dict):
                nxt += expand(node["additionalProperties"])
        nodes = nxt
    return {key for node in nodes for key in node.get("properties", {})}


# -- cross-references ------------------------------------------------------------------------


def target_id(entry: Any, index: int, entries: Sequence[Any]) -> str:
    """A target's id: its own, else its kind (or ref name), numbered when the rule has several."""
    if entry.id:
        return str(entry.id)
    kind = kind_of(entry) or "target"
    base = getattr(entry, REF) if kind == REF else kind
    same = [
        e for e in entries if not e.id and kind_of(e) == kind and (kind != REF or getattr(e, REF) == base)
    ]
    return base if len(same) == 1 else f"{base}-{index + 1}"


def _cross_check(document: Document, model: Any) -> list[Problem]:
    problems: list[Problem] = []
    named = model.targets

    def check_ref(entry: Any, path: KeyPath) -> None:
        if entry is None:
            return
        if kind_of(entry) == REF and getattr(entry, REF) not in named:
            name = getattr(entry, REF)
            problems.append(
                document.problem((*path, REF), f"no target named {name!r}{did_you_mean(name, named)}")
            )
        check_ref(getattr(entry, "dead_letter", None), (*path, "dead_letter"))

    for name, entry in named.items():
        if kind_of(entry) == REF:
            problems.append(
                document.problem(("targets", name, REF), "a named target must declare a kind, not ref")
            )
    check_ref(model.defaults.dead_letter, ("defaults", "dead_letter"))
    for pipe_name, pipe in model.pipes.items():
        for stage in ("target", "enrichment", "dead_letter"):
            check_ref(getattr(pipe, stage, None), ("pipes", pipe_name, stage))
    for map_name, spec in model.maps.items():
        for stage in ("target", "reduce", "dead_letter"):
            check_ref(getattr(spec, stage, None), ("maps", map_name, stage))
    for route_name, route in model.invoke.routes.items():
        check_ref(route.target, ("invoke", "routes", route_name, "target"))
    if model.pipes and not pipes_available():
        problems.append(
            document.problem(("pipes",), "pipes are not available in this version of eventbus yet")
        )
    archived: dict[str, str] = {}
    for bus_name, bus in model.buses.items():
        try:
            EventBus(bus_name)
        except BusValidationError as exc:
            problems.append(document.problem(("buses", bus_name), str(exc)))
        for archive in getattr(bus, "archives", {}):
            if archive in archived:
                problems.append(
                    document.problem(
                        ("buses", bus_name, "archives", archive),
                        f"bus {archived[archive]} has an archive of that name: archive names are unique "
                        "across buses (as per account on AWS)",
                    )
                )
            archived.setdefault(archive, bus_name)
        for rule_name, rule in bus.rules.items():
            where: KeyPath = ("buses", bus_name, "rules", rule_name)
            try:
                check_rule_name(rule_name)
            except BusValidationError as exc:
                problems.append(document.problem(where, str(exc)))
            limit = model.defaults.bus.model_copy(update=dict(bus.settings)).max_targets_per_rule
            if len(rule.targets) > limit:
                problems.append(
                    document.problem(
                        (*where, "targets"),
                        f"a rule has at most {limit} targets, this one has {len(rule.targets)}",
                    )
                )
            ids: dict[str, int] = {}
            for index, entry in enumerate(rule.targets):
                check_ref(entry, (*where, "targets", index))
                tid = target_id(entry, index, rule.targets)
                if tid in ids:
                    problems.append(
                        document.problem(
                            (*where, "targets", index), f"target id {tid!r} is used twice in this rule"
                        )
                    )
                ids[tid] = index
    return problems


def _check_functions(document: Document, model: Any, import_functions: bool = True) -> list[Problem]:
    """Function references must name a module that can be found and, unless ``import_functions``
    is false, one that imports and holds a callable under that name: found here, a broken module
    is the same one line in ``validate``, ``put`` and ``run``, never a traceback when it runs."""
    import importlib

    from eventbus.targets.function import FunctionTargetConfig

    found: list[tuple[KeyPath, str]] = []

    def walk(value: Any, path: KeyPath) -> None:
        if isinstance(value, FunctionTargetConfig):
            if isinstance(value.function, str):
                found.append(((*path, "function"), value.function))
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name), (*path, name))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(item, (*path, index))

    walk(model, ())
    if not found:
        return []
    folders = [str((document.base_dir / p).resolve()) for p in model.runtime.python_path]
    saved = list(sys.path)
    sys.path[:0] = folders
    # A module written since the last import (an edit under ``run --watch``) must be seen.
    importlib.invalidate_caches()
    problems = []
    try:
        for path, ref in found:
            reason = _function_problem(ref, import_functions)
            if reason is not None:
                problems.append(document.problem(path, reason))
    finally:
        sys.path[:] = saved
    return problems


def _function_problem(ref: str, import_functions: bool) -> str | None:
    import importlib
    import importlib.util

    from eventbus.targets._common import import_failure

    module_name, _, attr_path = ref.partition(":")
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        spec = None
    except Exception as exc:
        # A parent package that fails as it is imported.
        return f"cannot import module {module_name!r}: {import_failure(exc)}"
    if spec is None:
        hint = " (is its folder in runtime.python_path?)" if "." not in module_name else ""
        return f"cannot find module {module_name!r}{hint}"
    if not import_functions:
        return None
    try:
        obj: Any = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:
        return f"cannot import module {module_name!r}: {import_failure(exc)}"
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            return f"module {module_name!r} has no attribute {attr_path!r}"
        except Exception as exc:
            return f"cannot read {attr_path!r} from module {module_name!r}: {import_failure(exc)}"
    if not callable(obj):
        return f"{attr_path!r} in module {module_name!r} is not callable (it is a {type(obj).__name__})"
    return None


def python_path(config: LoadedConfig) -> list[str]:
    """The folders ``runtime.python_path`` names, made absolute from the config file's folder."""
    return [str((config.document.base_dir / entry).resolve()) for entry in config.model.runtime.python_path]


def add_python_path(configs: Iterable[LoadedConfig]) -> None:
    for config in configs:
        for folder in python_path(config):
            if folder not in sys.path:
                sys.path.insert(0, folder)


def dump(config: LoadedConfig | BaseModel) -> dict[str, Any]:
    """The config as plain data that loads back to an equal config (secrets come out masked)."""
    model = config.model if isinstance(config, LoadedConfig) else config
    data: dict[str, Any] = model.model_dump(mode="json", exclude_unset=True, by_alias=False)
    # A pipe keeps its stages as bare config models; the file writes each as ``{kind: options}``.
    # So does a map (its source is already written that way).
    for section, stages in (
        ("pipes", ("source", "target", "enrichment", "dead_letter")),
        ("maps", ("target", "reduce", "dead_letter")),
    ):
        for name, item in getattr(model, section, {}).items():
            if not isinstance(item, BaseModel):
                continue
            for stage in stages:
                value = getattr(item, stage, None)
                kind = getattr(value, "kind", None)
                if kind_of(value) == REF:
                    data[section][name][stage] = {REF: getattr(value, REF)}
                elif isinstance(value, BaseModel) and isinstance(kind, str) and kind:
                    data[section][name][stage] = {kind: value.model_dump(mode="json", exclude_unset=True)}
    return data
