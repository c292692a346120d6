"""The topology page's model: ``eventbus graph``'s ``Topology`` of the served configs, plus the
buses, rules, targets and pipes the API created, laid out left to right, with each node's live
counters.

The layout is a small layered drawing: a node's column is the length of the longest path that
reaches it (sources and buses first, targets last), rows within a column are ordered by the mean
row of their parents (two sweeps), and every column is centred. It is enough for the tens of
nodes a config has, and needs no library in the browser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from eventbus.config.topology import Edge, Topology, topology
from eventbus.console.watch import Watch

__all__ = ["Drawing", "Placed", "compact", "counters", "draw", "live_topology"]

NODE_WIDTH = 210
NODE_HEIGHT = 78
COLUMN_GAP = 120
ROW_GAP = 22
MARGIN = 16


@dataclass(frozen=True, slots=True)
class Placed:
    id: str
    kind: str
    lines: tuple[str, ...]
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class Drawing:
    nodes: tuple[Placed, ...]
    #: (path data, label, dashed, label x, label y)
    edges: tuple[tuple[str, str, bool, int, int], ...]
    width: int
    height: int
    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT


def live_topology(server: Any) -> Topology:
    """The configs' topology, with what the API added to the running server."""
    graph = topology(server.state.runtime.configs)
    for entry in server.state.buses.entries():
        bus = entry.bus
        bus_node = graph.add("bus", bus.name, f"bus: {bus.name}", ref=bus.name)
        for rule in bus.list_rules():
            address = f"{bus.name}/{rule.name}"
            rule_id = f"rule_{address}"
            known = _node_id(graph, rule_id) in graph.nodes
            detail = f"schedule {rule.schedule_expression}" if rule.schedule_expression else "pattern"
            state = "" if rule.state == "ENABLED" else " (disabled)"
            label = f"rule: {rule.name}{state}\n{detail}"
            rule_node = graph.add("rule", address, label, ref=address)
            # The label follows the rule's state now (a config rule disabled from the console).
            graph.nodes[rule_node] = replace(graph.nodes[rule_node], label=label)
            if not known:
                graph.edges.append(Edge(bus_node, rule_node))
            for target in rule.targets:
                target_address = f"{address}/{target.id}"
                if any(target_address in refs for refs in graph.refs.values()):
                    continue
                what = type(target.target).__name__.removesuffix("Target").lower() or "target"
                shown = getattr(target.target, "arn", None) or target.arn or target.id
                node = graph.add("target", target_address, f"{what}: {shown}", ref=target_address)
                graph.edges.append(Edge(rule_node, node))
                if target.dead_letter is not None:
                    dead = graph.add(
                        "target",
                        f"{target_address}/dead-letter",
                        f"dead letter: {type(target.dead_letter).__name__}",
                        ref=f"{target_address}/dead-letter",
                    )
                    graph.edges.append(Edge(node, dead, "dead letter", dashed=True))
    for name in server.pipes.all_pipes():
        known = _node_id(graph, f"pipe_{name}") in graph.nodes
        node = graph.add("pipe", name, f"pipe: {name}", ref=f"pipe/{name}")
        if not known:
            target = graph.add("target", f"pipe/{name}/target", "target", ref=None)
            graph.edges.append(Edge(node, target))
    return graph


def _node_id(graph: Topology, raw: str) -> str:
    return re.sub(r"\W", "_", raw)


def counters(server: Any, watch: Watch, graph: Topology) -> dict[str, dict[str, int]]:
    """Node id -> its counters now."""
    buses = {e.bus.name: e.bus for e in server.state.buses.entries()}
    pipes = server.pipes.all_pipes()
    out: dict[str, dict[str, int]] = {}
    metrics = {name: bus.metrics() for name, bus in buses.items()}
    for node_id, refs in graph.refs.items():
        node = graph.nodes[node_id]
        total: dict[str, int] = {}
        for ref in refs:
            for key, value in _counts_of(node.kind, ref, buses, metrics, pipes, watch).items():
                total[key] = total.get(key, 0) + value
        if total:
            out[node_id] = total
    return out


def _counts_of(
    kind: str,
    ref: str,
    buses: Mapping[str, Any],
    metrics: Mapping[str, Any],
    pipes: Mapping[str, Any],
    watch: Watch,
) -> dict[str, int]:
    if kind == "bus":
        bus = buses.get(ref)
        if bus is None:
            return {}
        counts = metrics[ref]["bus"]
        return {"accepted": counts.get("AcceptedEvents", 0), "pending": bus.pending()}
    if kind == "pipe":
        pipe = pipes.get(ref.removeprefix("pipe/"))
        if pipe is None:
            return {}
        counts = pipe.metrics()
        return {
            key: counts.get(name, 0)
            for key, name in (
                ("received", "received"),
                ("delivered", "delivered"),
                ("failed", "failed"),
                ("dead-lettered", "dead_lettered"),
                ("retrying", "retried"),
            )
        }
    if kind == "rule":
        bus_name, _, rule = ref.rpartition("/")
        if bus_name not in buses:
            return {}
        matched = metrics[bus_name]["rules"].get(rule, {}).get("MatchedEvents", 0)
        return {"matched": matched, **watch.rule_counts(bus_name, rule)}
    if kind == "target":
        dead = ref.endswith("/dead-letter")
        parts = ref.removesuffix("/dead-letter").rsplit("/", 2)
        if len(parts) != 3 or parts[0] not in buses:
            return {}
        bus_name, rule, target_id = parts
        counts = watch.target_counts(bus_name, f"{rule}/{target_id}")
        if dead:
            return {"received": counts["dead-lettered"]}
        return counts
    return {}


def compact(counts: Mapping[str, int]) -> list[str]:
    """A node's counters in its box: the first four, then any other that is not zero, two a line
    (console.js draws the refreshed ones the same way)."""
    shown = [f"{key} {value}" for index, (key, value) in enumerate(counts.items()) if index < 4 or value]
    return [" · ".join(shown[i : i + 2]) for i in range(0, min(len(shown), 6), 2)]


def draw(graph: Topology) -> Drawing:
    """Coordinates for every node and a path for every edge."""
    ids = list(graph.nodes)
    parents: dict[str, list[str]] = {i: [] for i in ids}
    children: dict[str, list[str]] = {i: [] for i in ids}
    for edge in graph.edges:
        if edge.source in parents and edge.target in parents and edge.source != edge.target:
            parents[edge.target].append(edge.source)
            children[edge.source].append(edge.target)
    column = _columns(ids, parents, children)
    by_column: dict[int, list[str]] = {}
    for node_id in ids:
        by_column.setdefault(column[node_id], []).append(node_id)
    order: dict[str, float] = {}
    for col in sorted(by_column):
        for index, node_id in enumerate(by_column[col]):
            order[node_id] = index
    for _ in range(2):  # barycentre sweeps: children sit near their parents
        for col in sorted(by_column)[1:]:
            members = by_column[col]
            members.sort(key=lambda n: _mean([order[p] for p in parents[n] if column[p] < col], order[n]))
            for index, node_id in enumerate(members):
                order[node_id] = index
    tallest = max((len(m) for m in by_column.values()), default=0)
    height = MARGIN * 2 + tallest * NODE_HEIGHT + max(tallest - 1, 0) * ROW_GAP
    placed: dict[str, Placed] = {}
    for col, members in by_column.items():
        span = len(members) * NODE_HEIGHT + max(len(members) - 1, 0) * ROW_GAP
        top = (height - span) // 2
        for index, node_id in enumerate(members):
            node = graph.nodes[node_id]
            placed[node_id] = Placed(
                node_id,
                node.kind,
                tuple(node.label.split("\n")),
                MARGIN + col * (NODE_WIDTH + COLUMN_GAP),
                top + index * (NODE_HEIGHT + ROW_GAP),
            )
    columns = (max(by_column) + 1) if by_column else 0
    width = MARGIN * 2 + columns * NODE_WIDTH + max(columns - 1, 0) * COLUMN_GAP
    edges = []
    for edge in graph.edges:
        a, b = placed.get(edge.source), placed.get(edge.target)
        if a is None or b is None:
            continue
        x1, y1 = a.x + NODE_WIDTH, a.y + NODE_HEIGHT // 2
        x2, y2 = b.x, b.y + NODE_HEIGHT // 2
        if x2 <= x1:  # backwards (a bus target feeding an earlier bus): loop below
            low = max(a.y, b.y) + NODE_HEIGHT + ROW_GAP // 2
            path = f"M{x1},{y1} C{x1 + 40},{low} {x2 - 40},{low} {x2},{y2}"
            label_x, label_y = (x1 + x2) // 2, low
        else:
            middle = (x1 + x2) // 2
            path = f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}"
            label_x, label_y = middle, (y1 + y2) // 2 - 4
        edges.append((path, edge.label, edge.dashed, label_x, label_y))
    return Drawing(tuple(placed[i] for i in ids), tuple(edges), width, max(height, NODE_HEIGHT + 2 * MARGIN))


def _columns(ids: list[str], parents: dict[str, list[str]], children: dict[str, list[str]]) -> dict[str, int]:
    """Each node's column: the longest path reaching it, once a depth-first walk from the roots
    has set aside the edges that close a cycle (bus targets feeding each other's buses)."""
    roots = [i for i in ids if not parents[i]]
    state: dict[str, int] = {}  # 1: on the walk's path, 2: done
    finished: list[str] = []
    forward: dict[str, list[str]] = {i: [] for i in ids}
    for start in roots + ids:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(children[start]))]
        while stack:
            node_id, pending = stack[-1]
            child = next(pending, None)
            if child is None:
                state[node_id] = 2
                finished.append(node_id)
                stack.pop()
                continue
            seen = state.get(child)
            if seen == 1:
                continue  # closes a cycle: not used for columns
            forward[node_id].append(child)
            if seen is None:
                state[child] = 1
                stack.append((child, iter(children[child])))
    column = dict.fromkeys(ids, 0)
    for node_id in reversed(finished):  # a topological order of the forward edges
        for child in forward[node_id]:
            column[child] = max(column[child], column[node_id] + 1)
    return column


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default
