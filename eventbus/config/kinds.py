"""The ``kind:`` spelling of targets and sources, read as the ``{KIND: options}`` form.

A target (or a pipe's source) is written as one key naming its kind, whose value is that kind's
options: ``{http: {endpoint: ...}}``. Many tools spell it with a ``kind`` field instead, and
people write it that way first::

    targets:
      - kind: http
        endpoint: https://example.com/hook
        id: hook                 # a rule target's own settings stay beside the kind

Such an entry is rewritten to the canonical form before validation, so it is checked exactly as
the canonical one (same models, same messages). The document remembers where each moved key was
written, so a problem still names the key path and line of the file as written.
"""

from __future__ import annotations

from typing import Any

from eventbus.config.errors import KeyPath, Problem
from eventbus.config.load import Document
from eventbus.config.schema import REF, RULE_TARGET_FIELDS, target_kinds

__all__ = ["KIND", "read_kind_spelling"]

#: The key of the alternative spelling.
KIND = "kind"


def read_kind_spelling(document: Document) -> list[Problem]:
    """Rewrite every ``kind:``-spelled target and source of ``document`` in place."""
    data = document.data
    problems: list[Problem] = []

    def rewrite(value: Any, path: KeyPath, *, rule_fields: bool = False) -> None:
        if not isinstance(value, dict) or KIND not in value:
            return
        kind = value[KIND]
        if not isinstance(kind, str) or not kind or kind == REF:
            hint = " (a named target is written {ref: NAME})" if kind == REF else ""
            problems.append(
                document.problem((*path, KIND), f"kind must name a kind, as a non-empty string{hint}")
            )
            return
        keep = {KIND} | (set(RULE_TARGET_FIELDS) if rule_fields else set())
        options = {key: item for key, item in value.items() if key not in keep}
        if rule_fields:
            cls = target_kinds().get(kind)
            both = sorted(set(value) & set(RULE_TARGET_FIELDS) & set(cls.model_fields if cls else ()))
            for key in both:
                problems.append(
                    document.problem(
                        (*path, key),
                        f"{key} is both a rule target setting and an option of kind {kind}: write the "
                        f"target as {{{kind}: {{...options}}}} and put {key} where you mean it",
                    )
                )
        settings = {key: item for key, item in value.items() if key in keep and key != KIND}
        value.clear()
        value[kind] = options
        value.update(settings)
        # Each option now sits one level down, under the kind.
        for key in options:
            document.aliases[(*path, kind, key)] = (*path, key)
        document.aliases[(*path, kind)] = (*path, KIND)

    targets = data.get("targets")
    if isinstance(targets, dict):
        for name, entry in targets.items():
            rewrite(entry, ("targets", name))
    defaults = data.get("defaults")
    if isinstance(defaults, dict):
        rewrite(defaults.get("dead_letter"), ("defaults", "dead_letter"))
    buses = data.get("buses")
    for bus_name, bus in buses.items() if isinstance(buses, dict) else ():
        rules = bus.get("rules") if isinstance(bus, dict) else None
        for rule_name, rule in rules.items() if isinstance(rules, dict) else ():
            entries = rule.get("targets") if isinstance(rule, dict) else None
            for index, entry in enumerate(entries if isinstance(entries, list) else ()):
                where: KeyPath = ("buses", bus_name, "rules", rule_name, "targets", index)
                rewrite(entry, where, rule_fields=True)
                if isinstance(entry, dict):
                    rewrite(entry.get("dead_letter"), (*where, "dead_letter"))
    pipes = data.get("pipes")
    for pipe_name, pipe in pipes.items() if isinstance(pipes, dict) else ():
        if isinstance(pipe, dict):
            for stage in ("source", "target", "enrichment", "dead_letter"):
                rewrite(pipe.get(stage), ("pipes", pipe_name, stage))
    maps = data.get("maps")
    for map_name, spec in maps.items() if isinstance(maps, dict) else ():
        if isinstance(spec, dict):
            for stage in ("source", "target", "reduce", "dead_letter"):
                rewrite(spec.get(stage), ("maps", map_name, stage))
    return problems
