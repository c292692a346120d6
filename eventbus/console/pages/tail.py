"""The live tail's page and its WebSocket (tail.py serves the stream)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from eventbus.console.site import Context, Site, raw_path
from eventbus.console.tail import Tail

__all__ = ["TailPage"]


class TailPage:
    def __init__(self, site: Site, server: Any, tail: Tail) -> None:
        self.site = site
        self.server = server
        self.tail = tail

    def routes(self) -> list[BaseRoute]:
        return [Route("/tail", self.site.page(self.tail_page)), WebSocketRoute("/ws/tail", self.tail_socket)]

    async def tail_page(self, request: Request, context: Context) -> Response:
        buses = sorted(e.bus.name for e in self.server.state.buses.entries())
        return self.site.render(
            request,
            context,
            "tail.html",
            {"title": "Live tail", "buses": buses, "max_rows": self.tail.max_rows},
            page="/tail",
        )

    async def tail_socket(self, websocket: WebSocket) -> None:
        session, _ = self.site.session(websocket)
        by_header = self.site.guard.header_auth("GET", raw_path(websocket), websocket.url.query, websocket.headers)
        allowed = (by_header is True) or (by_header is None and session.signed_in)
        if not allowed or not self.site.guard.same_origin(websocket.headers, websocket.url.scheme):
            # Accepted, then closed as a policy violation (1008): the page learns it must sign
            # in again instead of retrying; nothing is sent.
            await websocket.accept()
            await websocket.close(code=1008, reason="sign in to the console first")
            return
        await self.tail.serve(websocket)
