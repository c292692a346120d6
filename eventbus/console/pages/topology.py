"""The topology page, and the JSON its counters are refreshed from."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from eventbus.console.graph import counters, draw, live_topology
from eventbus.console.site import Context, Site
from eventbus.console.watch import Watch

__all__ = ["TopologyPage"]


class TopologyPage:
    def __init__(self, site: Site, server: Any, watch: Watch) -> None:
        self.site = site
        self.server = server
        self.watch = watch

    def routes(self) -> list[BaseRoute]:
        page = self.site.page
        return [
            Route("/", page(self.topology_page)),
            Route("/api/topology", page(self.topology_json, kind="json")),
        ]

    async def topology_page(self, request: Request, context: Context) -> Response:
        graph = live_topology(self.server)
        drawing = draw(graph)
        values = counters(self.server, self.watch, graph)
        return self.site.render(
            request,
            context,
            "topology.html",
            {"title": "Topology", "drawing": drawing, "counters": values, "version": _version(graph)},
            page="/",
        )

    async def topology_json(self, request: Request, context: Context) -> Response:
        graph = live_topology(self.server)
        return JSONResponse({"version": _version(graph), "counters": counters(self.server, self.watch, graph)})


def _version(graph: Any) -> str:
    """Changes when nodes or edges do: the page offers to redraw itself then."""
    text = json.dumps([sorted(graph.nodes), [(e.source, e.target) for e in graph.edges]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
