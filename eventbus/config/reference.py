"""The config reference in Markdown, generated from the JSON Schema (``eventbus schema --markdown``).

docs/config.md embeds this output between markers, and a test keeps the two in step.
"""

from __future__ import annotations

import json
from typing import Any

from eventbus.config.schema import json_schema

__all__ = ["markdown_reference"]

# The sections in reading order: (title, $defs name or "" for the top level, fields to leave out).
_SECTIONS: list[tuple[str, str, set[str]]] = [
    ("The file", "", set()),
    ("runtime", "RuntimeSettings", set()),
    ("runtime.backend: memory", "MemoryBackend", set()),
    ("runtime.backend: sqlite", "SqliteBackend", set()),
    ("runtime.backend: jetstream", "JetStreamBackend", set()),
    ("defaults", "DefaultSettings", set()),
    ("buses.NAME", "Bus", set()),
    ("buses.NAME.settings and defaults.bus", "BusConfig", set()),
    ("buses.NAME.settings.backoff", "Backoff", set()),
    ("buses.NAME.rules.NAME", "Rule", set()),
    ("buses.NAME.archives.NAME", "ArchiveSpec", set()),
    ("A rule's target", "LogRuleTarget", {"log"}),
    ("retry_policy", "RetryPolicy", set()),
    ("input_transformer", "InputTransformer", set()),
    ("connections.NAME", "Connection", set()),
    ("auth: API_KEY", "ApiKeyAuth", set()),
    ("auth: BASIC", "BasicAuth", set()),
    ("auth: OAUTH_CLIENT_CREDENTIALS", "OAuthClientCredentials", set()),
    ("invocation_http_parameters", "HttpParameters", set()),
    ("A secret parameter value", "Parameter", set()),
    ("pipes.NAME", "PipeConfig", {"name"}),
    ("pipes.NAME.retry_policy", "PipeRetryPolicy", set()),
    ("server", "ServerSettings", set()),
    ("server.credentials[]", "AccessKey", set()),
    ("maps.NAME", "MapConfig", {"name"}),
    ("maps.NAME.source", "MapSource", set()),
    ("maps.NAME.source.file", "MapFileSource", set()),
    ("maps.NAME.retry_policy", "MapRetryPolicy", set()),
    ("invoke", "Invoke", set()),
    ("invoke.routes.NAME", "InvokeRoute", set()),
    ("invoke.routes.NAME.rate_limit", "RateLimit", set()),
    ("invoke.routes.NAME.cache", "CacheSettings", set()),
    ("invoke.jobs", "JobStoreSettings", set()),
]


def markdown_reference() -> str:
    schema = json_schema()
    defs: dict[str, Any] = schema.get("$defs", {})
    out: list[str] = []
    for title, name, skip in _SECTIONS:
        node = schema if not name else defs.get(name)
        if node is None:
            continue
        out += _section(title, node, skip)
    kinds = sorted(n[: -len("TargetConfig")] for n in defs if n.endswith("TargetConfig"))
    for kind_name in kinds:
        node = defs[f"{kind_name}TargetConfig"]
        key = _kind_key(kind_name)
        out += _section(f"Target kind `{key}`", node, set())
    for name in sorted(n for n in defs if n.endswith("SourceConfig") and n != "SourceConfig"):
        stem = name[: -len("SourceConfig")]
        out += _section(f"Source kind `{stem.lower()}`", defs[name], {"clock"})
    return "\n".join(out).rstrip() + "\n"


def _kind_key(class_stem: str) -> str:
    # The wrapper model's property is the kind: find it on the rule-target model of this kind.
    defs = json_schema().get("$defs", {})
    wrapper = defs.get(f"{class_stem}RuleTarget", {})
    for key, value in wrapper.get("properties", {}).items():
        if value.get("$ref", "").endswith(f"/{class_stem}TargetConfig"):
            return str(key)
    return class_stem.lower()


def _section(title: str, node: dict[str, Any], skip: set[str]) -> list[str]:
    lines = [f"### {title}", ""]
    description = (node.get("description") or "").strip()
    if description and title != "The file":
        lines += [" ".join(description.replace("``", "`").split()), ""]
    required = set(node.get("required", []))
    lines += ["| key | type | default |", "|---|---|---|"]
    for key, prop in node.get("properties", {}).items():
        if key in skip:
            continue
        default = "required" if key in required else _default(prop)
        lines.append(f"| `{key}` | {_type(prop)} | {default} |")
    lines.append("")
    return lines


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return ""
    value = prop["default"]
    if value in ({}, []) or value is None:
        return "—" if value is None else f"`{json.dumps(value)}`"
    return f"`{json.dumps(value)}`"


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "enum" in prop:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    branches = prop.get("anyOf") or prop.get("oneOf")
    if branches:
        names = [_type(b) for b in branches]
        targets = [n for n in names if n.endswith("Target")]
        if len(targets) > 2:
            rest = [n for n in names if not n.endswith("Target")]
            ref = " or `{ref: NAME}`" if {"RefTarget", "RefRuleTarget"} & set(targets) else ""
            names = [f"a target (`{{KIND: options}}`{ref})", *rest]
        sources = [n for n in names if n.startswith("`{") and n.endswith("SourceConfig}`")]
        if len(sources) > 2:
            names = ["a source (`{KIND: options}`, see the source kinds below)"]
        return " or ".join(names)
    kind = prop.get("type")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object":
        keys = list(prop.get("properties", {}))
        if len(keys) == 1 and prop.get("additionalProperties") is False:
            return f"`{{{keys[0]}: {_type(prop['properties'][keys[0]])}}}`"
        extra = prop.get("additionalProperties")
        patterns = list(prop.get("patternProperties", {}).values())
        if not isinstance(extra, dict) and len(patterns) == 1:
            extra = patterns[0]  # a map whose keys are names of a given form
        return f"map of {_type(extra)}" if isinstance(extra, dict) else "mapping"
    if kind == "string" and prop.get("format") == "password":
        return "secret string"
    if isinstance(kind, str):
        return kind
    return "a target (`{kind: options}`)" if not prop else "any"
