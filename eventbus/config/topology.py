"""The topology a config declares, as nodes and edges: sources to pipes and maps, buses to rules to
targets, invocation routes to the targets they run.

``eventbus graph`` renders it as Mermaid or DOT; anything else can walk ``Topology`` itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from eventbus import redact
from eventbus.config.schema import REF, kind_of
from eventbus.config.validate import LoadedConfig, target_id

__all__ = ["Edge", "Node", "Topology", "topology"]

NodeKind = Literal["source", "pipe", "map", "bus", "rule", "target", "route"]


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    kind: NodeKind
    label: str


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    label: str = ""
    dashed: bool = False


@dataclass(slots=True)
class Topology:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    #: Node id -> what it stands for at run time: ``bus``, ``bus/rule``, ``bus/rule/target id``,
    #: ``pipe/NAME`` (a named target several rules share stands for each of their addresses);
    #: a console reads each node's live counters through them.
    refs: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: NodeKind, key: str, label: str, ref: str | None = None) -> str:
        node_id = re.sub(r"\W", "_", f"{kind}_{key}")
        self.nodes.setdefault(node_id, Node(node_id, kind, label))
        if ref is not None:
            refs = self.refs.setdefault(node_id, [])
            if ref not in refs:
                refs.append(ref)
        return node_id

    def to_mermaid(self) -> str:
        shapes = {
            "source": ('[/"', '"/]'),
            "pipe": ('[["', '"]]'),
            "map": ('[["', '"]]'),
            "bus": ('[("', '")]'),
            "rule": ('{{"', '"}}'),
            "target": ('["', '"]'),
            "route": ('>"', '"]'),
        }
        lines = ["flowchart LR"]
        for node in self.nodes.values():
            left, right = shapes[node.kind]
            lines.append(f"  {node.id}{left}{_mermaid_text(node.label)}{right}")
        for edge in self.edges:
            arrow = "-.->" if edge.dashed else "-->"
            label = f"|{_mermaid_text(edge.label)}|" if edge.label else ""
            lines.append(f"  {edge.source} {arrow}{label} {edge.target}")
        return "\n".join(lines)

    def to_dot(self) -> str:
        shapes = {
            "source": "invhouse",
            "pipe": "box3d",
            "map": "box3d",
            "bus": "cylinder",
            "rule": "diamond",
            "target": "box",
            "route": "cds",
        }
        lines = ["digraph eventbus {", "  rankdir=LR;"]
        for node in self.nodes.values():
            lines.append(f"  {node.id} [label={json.dumps(node.label)}, shape={shapes[node.kind]}];")
        for edge in self.edges:
            attrs = []
            if edge.label:
                attrs.append(f"label={json.dumps(edge.label)}")
            if edge.dashed:
                attrs.append("style=dashed")
            suffix = f" [{', '.join(attrs)}]" if attrs else ""
            lines.append(f"  {edge.source} -> {edge.target}{suffix};")
        lines.append("}")
        return "\n".join(lines)


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("|", "#124;").replace("\n", "<br/>")


def topology(configs: Iterable[LoadedConfig]) -> Topology:
    graph = Topology()
    for config in configs:
        model = config.model
        for pipe_name, pipe in model.pipes.items():
            _add_pipe(graph, model, pipe_name, pipe)
        for map_name, spec in model.maps.items():
            _add_map(graph, model, map_name, spec)
        for route_name, route in model.invoke.routes.items():
            _add_route(graph, model, route_name, route)
        for bus_name, bus in model.buses.items():
            bus_node = graph.add("bus", bus_name, f"bus: {bus_name}", ref=bus_name)
            for rule_name, rule in bus.rules.items():
                detail = f"schedule {rule.schedule}" if rule.schedule else "pattern"
                state = "" if rule.state == "ENABLED" else " (disabled)"
                rule_node = graph.add(
                    "rule", f"{bus_name}/{rule_name}", f"rule: {rule_name}{state}\n{detail}", ref=f"{bus_name}/{rule_name}"
                )
                graph.edges.append(Edge(bus_node, rule_node))
                for index, entry in enumerate(rule.targets):
                    tid = target_id(entry, index, rule.targets)
                    address = f"{bus_name}/{rule_name}/{tid}"
                    node = _add_target(graph, model, address, entry)
                    graph.edges.append(Edge(rule_node, node, _input_label(entry)))
                    dead = entry.dead_letter if entry.dead_letter is not None else model.defaults.dead_letter
                    if dead is not None:
                        dead_node = _add_target(graph, model, f"{address}/dead-letter", dead)
                        graph.edges.append(Edge(node, dead_node, "dead letter", dashed=True))
    return graph


def _input_label(entry: Any) -> str:
    if entry.input_transformer is not None:
        return "input transformer"
    if entry.input_path is not None:
        return f"input path {entry.input_path}"
    if entry.input is not None:
        return "constant input"
    return ""


def _add_target(graph: Topology, model: Any, address: str, entry: Any) -> str:
    kind = kind_of(entry)
    key = address
    if kind == REF:
        name = getattr(entry, REF)
        key = f"named/{name}"
        entry = model.targets.get(name)
        kind = kind_of(entry) if entry is not None else "missing"
    config = getattr(entry, kind, None) if entry is not None and kind else None
    node = graph.add("target", key, f"{kind}: {_describe(kind, config, key)}", ref=address)
    if kind == "bus" and config is not None:
        graph.edges.append(Edge(node, graph.add("bus", config.bus, f"bus: {config.bus}"), dashed=True))
    return node


def _describe(kind: str | None, config: Any, key: str) -> str:
    # A short, secret-free hint of where the target points.
    for attribute in ("endpoint", "function", "path", "name", "subject", "bus", "schedule_expression"):
        value = getattr(config, attribute, None)
        if isinstance(value, str) and value:
            if attribute == "endpoint":
                value = redact.redact_url(value.split("?", 1)[0])
            return redact.mask(value)
    if kind == "command" and config is not None:
        return str(config.command[0])
    return key


def _add_pipe(graph: Topology, model: Any, name: str, pipe: Any) -> None:
    pipe_node = graph.add("pipe", name, f"pipe: {name}", ref=f"pipe/{name}")
    source = getattr(pipe, "source", None)
    if source is not None:
        kind = getattr(source, "kind", "") or type(source).__name__
        label = f"source: {kind} {_describe(kind, source, '')}".rstrip()
        filters = len(getattr(pipe, "filter", []) or [])
        edge_label = f"{filters} filter(s)" if filters else ""
        graph.edges.append(Edge(graph.add("source", f"{name}/source", label), pipe_node, edge_label))
    for stage in ("enrichment", "target", "dead_letter"):
        config = getattr(pipe, stage, None)
        if config is None:
            continue
        kind = getattr(config, "kind", "") or type(config).__name__
        node = graph.add("target", f"pipe/{name}/{stage}", f"{kind}: {_describe(kind, config, stage)}")
        label = {"enrichment": "enrichment", "dead_letter": "dead letter"}.get(stage, "")
        graph.edges.append(Edge(pipe_node, node, label, dashed=stage == "dead_letter"))
        if kind == "bus" and isinstance(getattr(config, "bus", None), str):
            graph.edges.append(Edge(node, graph.add("bus", config.bus, f"bus: {config.bus}"), dashed=True))


def _add_map(graph: Topology, model: Any, name: str, spec: Any) -> None:
    node = graph.add("map", name, f"map: {name}\nmax_concurrency {spec.max_concurrency}")
    files = spec.source.file.paths
    label = f"source: file {redact.mask(files[0])}" + (f" (+{len(files) - 1})" if len(files) > 1 else "")
    graph.edges.append(Edge(graph.add("source", f"map/{name}/source", label), node, "rows"))
    for stage in ("target", "reduce", "dead_letter"):
        config = getattr(spec, stage, None)
        if config is None:
            continue
        if kind_of(config) == REF:
            target = _add_target(graph, model, f"map/{name}/{stage}", config)
        else:
            kind = getattr(config, "kind", "") or type(config).__name__
            target = graph.add("target", f"map/{name}/{stage}", f"{kind}: {_describe(kind, config, stage)}")
        label = {"target": "each row", "reduce": "results", "dead_letter": "dead letter"}[stage]
        graph.edges.append(Edge(node, target, label, dashed=stage == "dead_letter"))


def _add_route(graph: Topology, model: Any, name: str, route: Any) -> None:
    paths = f"POST /invoke/{name}" + (f"\nPOST /jobs/{name}" if route.jobs else "")
    guards = [
        f"{len(route.api_keys)} key(s)" if route.api_keys else "",
        f"rate {route.rate_limit.per_second:g}/s" if route.rate_limit is not None else "",
        f"cache {route.cache.ttl:g} s" if route.cache is not None else "",
        f"{route.max_concurrency} at once",
    ]
    node = graph.add("route", name, f"route: {name}\n{paths}")
    target = _add_target(graph, model, f"route/{name}/target", route.target)
    graph.edges.append(Edge(node, target, ", ".join(g for g in guards if g)))
