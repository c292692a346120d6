"""The console of one server, as a Starlette app mounted on it.

``mount_console(server)`` puts it at ``/console`` of an ``EventbusServer`` (``eventbus serve``
does) and has the server start its per-bus ``Watch`` with each bus. Pages are rendered on the
server by Jinja2 with autoescaping on, so every value from an event is text, never markup; the
one script (``static/console.js``) adds the live parts: counters polled from JSON, the tail over a
WebSocket, replay progress.

| path | what |
| --- | --- |
| ``/`` (``/api/topology``) | the topology, its counters refreshed from JSON |
| ``/tail`` (``/ws/tail``) | the live tail |
| ``/rules``, ``/rules/{bus}/{rule}`` | rules; one rule's pattern against the last events |
| ``/dead-letters``, ``/dead-letters/{queue}`` | dead-letter queues, their entries, redrive |
| ``/archives`` (``/api/replays``) | archives, replays: start, progress, cancel |
| ``/sandbox`` | pattern and input transformer sandbox |
| ``/login``, ``/logout`` | signing in with a credential the API takes |
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from eventbus.console.pages.archives import ArchivesPage
from eventbus.console.pages.dead_letters import DeadLettersPage
from eventbus.console.pages.rules import RulesPage
from eventbus.console.pages.sandbox import SandboxPage
from eventbus.console.pages.signin import SignIn
from eventbus.console.pages.tail import TailPage
from eventbus.console.pages.topology import TopologyPage
from eventbus.console.security import Guard
from eventbus.console.services import DeadLetterService
from eventbus.console.site import HERE, SecurityHeaders, Site
from eventbus.console.tail import Tail
from eventbus.console.watch import Watch

__all__ = ["Console", "mount_console"]


class Console:
    """The console of one ``EventbusServer``; ``app`` is its ASGI app."""

    def __init__(self, server: Any, *, dead_letters: DeadLetterService | None = None, keep: int = 100) -> None:
        self.server = server
        #: What the console keeps of each bus (``keep`` recent events, outcome counts).
        self.watch = Watch(keep)
        self.site = Site(Guard(server.settings, server.auth), server.settings.max_body_bytes)
        self.tail = Tail(server)
        self._dead_letters = DeadLettersPage(self.site, dead_letters)
        pages = (
            TopologyPage(self.site, server, self.watch),
            TailPage(self.site, server, self.tail),
            RulesPage(self.site, server, self.watch),
            self._dead_letters,
            ArchivesPage(self.site, server),
            SandboxPage(self.site),
            SignIn(self.site),
        )
        routes = [route for page in pages for route in page.routes()]
        routes.append(Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"))
        self.app: ASGIApp = SecurityHeaders(Starlette(routes=routes))

    @property
    def dead_letters(self) -> DeadLetterService | None:
        """What the dead-letter pages drive (``None``: they say what they need)."""
        return self._dead_letters.dead_letters

    @dead_letters.setter
    def dead_letters(self, service: DeadLetterService | None) -> None:
        self._dead_letters.dead_letters = service


def mount_console(
    server: Any,
    path: str = "/console",
    *,
    dead_letters: DeadLetterService | None = None,
) -> Console:
    """Serve the console of ``server`` (an ``EventbusServer``) at ``path``.

    Call it before the server starts: the console follows each bus from then on. The console is
    also ``server.app.state.console``. ``dead_letters`` is what the dead-letter pages drive: the
    SQLite dead-letter queues of the served rules unless given.
    """
    if dead_letters is None:
        from eventbus.console.dead_letters import sqlite_dead_letters

        dead_letters = sqlite_dead_letters(server)
    console = Console(server, dead_letters=dead_letters)
    server.bus_followers.append(console.watch.follow)
    server.app.router.routes.append(Mount(path, app=console.app))
    server.app.state.console = console
    return console
