"""The console's pages, JSON endpoints and live tail, as a Starlette app mounted on the server.

``mount_console(server)`` puts it at ``/console`` of an ``EventbusServer`` (``eventbus serve``
does) and has the server start its per-bus ``Watch`` with each bus. Pages are rendered on the
server by Jinja2 with autoescaping on, so every value from an event is text, never markup; the
one script (``static/console.js``) adds the live parts: counters polled from JSON, the tail over a
WebSocket, replay progress.

| path | what |
| --- | --- |
| ``/`` | the topology, its counters refreshed from ``/api/topology`` |
| ``/tail`` (``/ws/tail``) | the live tail |
| ``/rules``, ``/rules/{bus}/{rule}`` | rules; one rule's pattern against the last events |
| ``/dead-letters``, ``/dead-letters/{queue}`` | dead-letter queues, their entries, redrive |
| ``/archives`` (``/api/replays``) | archives, replays: start, progress, cancel |
| ``/sandbox`` | pattern and input transformer sandbox |
| ``/login``, ``/logout`` | signing in with a credential the API takes |
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from eventbus._logger import get_logger
from eventbus.console.graph import compact, counters, draw, live_topology
from eventbus.console.sandbox import check_pattern, check_transform
from eventbus.console.security import CSP, SESSION_COOKIE, SESSION_SECONDS, Guard, Session
from eventbus.console.services import UNAVAILABLE_ARCHIVES, UNAVAILABLE_DEAD_LETTERS, DeadLetterService
from eventbus.console.tail import Tail
from eventbus.console.text import pretty, when
from eventbus.console.watch import Watch
from eventbus.server.errors import ApiError, from_library

__all__ = ["Console", "mount_console"]

_log = get_logger("eventbus.console")

HERE = Path(__file__).resolve().parent

#: The pages, in the navigation's order: (path, title).
PAGES = (
    ("/", "Topology"),
    ("/tail", "Live tail"),
    ("/rules", "Rules"),
    ("/dead-letters", "Dead letters"),
    ("/archives", "Archives and replays"),
    ("/sandbox", "Sandbox"),
)

#: How many recent events a rule's page explains by default (and at most: ``Watch.keep``).
EXPLAINED = 20

_SAMPLE_EVENT = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "OrderPlaced",
    "source": "shop",
    "account": "123456789012",
    "time": "2026-01-01T12:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {"order": "o-1", "total": 150, "customer": {"tier": "gold"}},
}
_SAMPLE_PATTERN = {"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}}
_SAMPLE_TRANSFORMER = {
    "InputPathsMap": {"order": "$.detail.order", "total": "$.detail.total"},
    "InputTemplate": '{"order": <order>, "total": <total>, "rule": <aws.events.rule-name>}',
}


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler knows about the request it serves."""

    session: Session
    #: Whether the browser must be sent its session cookie (new, or signed in just now).
    fresh: bool
    #: Authenticated by an ``Authorization`` header (a script, not a browser session).
    by_header: bool
    form: FormData | None = None


Handler = Callable[[Request, Context], Awaitable[Response]]


class Console:
    """The console of one ``EventbusServer``; ``app`` is its ASGI app."""

    def __init__(
        self,
        server: Any,
        *,
        dead_letters: DeadLetterService | None = None,
        keep: int = 100,
    ) -> None:
        self.server = server
        self.dead_letters = dead_letters
        self.watch = Watch(keep)
        self.guard = Guard(server.settings, server.auth)
        self.tail = Tail(self)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(HERE / "templates")),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["pretty"] = pretty
        self.templates.filters["when"] = when
        self.templates.globals["compact"] = compact
        routes = [
            Route("/", self._page(self.topology_page)),
            Route("/api/topology", self._page(self.topology_json, kind="json")),
            Route("/tail", self._page(self.tail_page)),
            WebSocketRoute("/ws/tail", self.tail_socket),
            Route("/rules", self._page(self.rules_page)),
            Route("/rules/{bus:path}/{rule}/state", self._page(self.rule_state, kind="action"), methods=["POST"]),
            Route("/rules/{bus:path}/{rule}", self._page(self.rule_page)),
            Route("/dead-letters", self._page(self.dead_letters_page)),
            Route("/dead-letters/{queue}/redrive", self._page(self.redrive, kind="action"), methods=["POST"]),
            Route("/dead-letters/{queue}", self._page(self.dead_letter_queue_page)),
            Route("/archives", self._page(self.archives_page)),
            Route("/api/replays", self._page(self.replays_json, kind="json")),
            Route("/replays", self._page(self.start_replay, kind="action"), methods=["POST"]),
            Route("/replays/{name}/cancel", self._page(self.cancel_replay, kind="action"), methods=["POST"]),
            Route("/sandbox", self._page(self.sandbox_page)),
            Route("/sandbox", self._page(self.sandbox_run, kind="action"), methods=["POST"]),
            Route("/login", self._page(self.login_page, public=True)),
            Route("/login", self._page(self.login, kind="action", public=True), methods=["POST"]),
            Route("/logout", self._page(self.logout, kind="action", public=True), methods=["POST"]),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ]
        self.app: ASGIApp = _SecurityHeaders(Starlette(routes=routes))

    # -- the gate every request passes ---------------------------------------------------------

    def _page(self, handler: Handler, *, kind: str = "page", public: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind the console's checks: a session, authentication (unless ``public``),
        and for actions (``kind="action"``) a CSRF token and a same-origin browser."""

        async def endpoint(request: Request) -> Response:
            session, fresh = self._session(request)
            body = b""
            if request.method == "POST":
                read = await self._body(request)
                if read is None:
                    limit = self.server.settings.max_body_bytes
                    return self._refuse(request, kind, 413, f"The request body exceeds the limit of {limit} bytes.")
                body = read
            by_header = self.guard.header_auth(
                request.method, _raw_path(request), request.url.query, request.headers, body
            )
            if by_header is False:
                return self._refuse(request, kind, 403, "The credentials in the Authorization header are not valid.")
            if not public and by_header is None and not session.signed_in:
                if kind == "page":
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    response: Response = RedirectResponse(
                        f"{_base(request)}/login?{urlencode({'next': target})}", status_code=303
                    )
                    return self._with_cookie(response, session, fresh, request)
                return self._refuse(request, kind, 401, "Sign in to the console first.")
            form = None
            if kind == "action":
                # The console's forms are URL-encoded (no uploads): read from the body in hand.
                pairs: list[tuple[str, str | UploadFile]] = list(
                    parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
                )
                form = FormData(pairs)
                if by_header is None:
                    token = form.get("csrf_token") or request.headers.get("x-csrf-token")
                    if not self.guard.same_origin(request.headers, request.url.scheme):
                        return self._refuse(request, kind, 403, "This action must come from the console's own pages.")
                    if not self.guard.check_csrf(session, token if isinstance(token, str) else None):
                        return self._refuse(
                            request, kind, 403, "The form has expired or did not come from the console: reload the page and try again."
                        )
            context = Context(session, fresh, by_header is True, form)
            try:
                response = await handler(request, context)
            except ApiError as exc:
                response = self._refuse(request, kind, exc.status, exc.message, code=exc.code)
            return self._with_cookie(response, context.session, context.fresh, request)

        return endpoint

    async def _body(self, request: Request) -> bytes | None:
        """The body, read up to the server's ``max_body_bytes`` (``None`` past it)."""
        limit = self.server.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _session(self, conn: HTTPConnection) -> tuple[Session, bool]:
        found = self.guard.read_cookie(conn.cookies.get(SESSION_COOKIE))
        if found is not None:
            return found, False
        return self.guard.new_session(), True

    def _with_cookie(self, response: Response, session: Session, fresh: bool, request: Request) -> Response:
        if fresh:
            response.set_cookie(
                SESSION_COOKIE,
                self.guard.cookie_value(session),
                max_age=SESSION_SECONDS,
                path=_base(request) or "/",
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
        return response

    def _refuse(self, request: Request, kind: str, status: int, message: str, *, code: str = "") -> Response:
        if kind == "json" or _wants_json(request):
            return JSONResponse({"error": message, **({"code": code} if code else {})}, status_code=status)
        return self._render(request, None, "error.html", {"title": "Not allowed" if status in (401, 403) else "Error", "message": message, "code": code}, status=status)

    def _render(
        self,
        request: Request,
        context: Context | None,
        template: str,
        values: Mapping[str, Any],
        *,
        status: int = 200,
        page: str = "",
    ) -> HTMLResponse:
        session = context.session if context is not None else self._session(request)[0]
        html = self.templates.get_template(template).render(
            base=_base(request),
            csrf=self.guard.csrf_token(session),
            pages=PAGES,
            page=page,
            signed_in=session.signed_in and not self.guard.open,
            **values,
        )
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    # -- sign in -----------------------------------------------------------------------------

    async def login_page(self, request: Request, context: Context) -> Response:
        return self._render(
            request,
            context,
            "login.html",
            {"title": "Sign in", "next": _next(request.query_params.get("next"), request), "problem": "", "open": self.guard.open},
        )

    async def login(self, request: Request, context: Context) -> Response:
        form = context.form
        assert form is not None
        fields = {name: str(form.get(name) or "") for name in ("api_key", "access_key_id", "secret_access_key")}
        target = _next(str(form.get("next") or ""), request)
        if self.guard.open or self.guard.credential_ok(**fields):
            session = self.guard.new_session(signed_in=True)
            return self._with_cookie(RedirectResponse(target, status_code=303), session, True, request)
        _log.warning("console sign-in refused", client=request.client.host if request.client else None)
        return self._render(
            request,
            context,
            "login.html",
            {"title": "Sign in", "next": target, "problem": "That is not a credential this server accepts.", "open": False},
            status=403,
        )

    async def logout(self, request: Request, context: Context) -> Response:
        return self._with_cookie(RedirectResponse(f"{_base(request)}/login", status_code=303), self.guard.new_session(), True, request)

    # -- topology ------------------------------------------------------------------------------

    async def topology_page(self, request: Request, context: Context) -> Response:
        graph = live_topology(self.server)
        drawing = draw(graph)
        values = counters(self.server, self.watch, graph)
        return self._render(
            request,
            context,
            "topology.html",
            {"title": "Topology", "drawing": drawing, "counters": values, "version": _version(graph)},
            page="/",
        )

    async def topology_json(self, request: Request, context: Context) -> Response:
        graph = live_topology(self.server)
        return JSONResponse({"version": _version(graph), "counters": counters(self.server, self.watch, graph)})

    # -- live tail -----------------------------------------------------------------------------

    async def tail_page(self, request: Request, context: Context) -> Response:
        buses = sorted(e.bus.name for e in self.server.state.buses.entries())
        return self._render(
            request,
            context,
            "tail.html",
            {"title": "Live tail", "buses": buses, "max_rows": self.tail.max_rows},
            page="/tail",
        )

    async def tail_socket(self, websocket: WebSocket) -> None:
        session, _ = self._session(websocket)
        by_header = self.guard.header_auth("GET", _raw_path(websocket), websocket.url.query, websocket.headers)
        allowed = (by_header is True) or (by_header is None and session.signed_in)
        if not allowed or not self.guard.same_origin(websocket.headers, websocket.url.scheme):
            # Accepted, then closed as a policy violation (1008): the page learns it must sign
            # in again instead of retrying; nothing is sent.
            await websocket.accept()
            await websocket.close(code=1008, reason="sign in to the console first")
            return
        await self.tail.serve(websocket)

    # -- rules ---------------------------------------------------------------------------------

    def _bus(self, name: str) -> Any:
        return self.server.state.buses.get(name)

    async def rules_page(self, request: Request, context: Context) -> Response:
        rows = []
        for entry in sorted(self.server.state.buses.entries(), key=lambda e: e.bus.name):
            bus = entry.bus
            matched = bus.metrics()["rules"]
            for rule in bus.list_rules():
                rows.append(
                    {
                        "bus": bus.name,
                        "rule": rule,
                        "file": self.server.state.config_rules.get((bus.name, rule.name)),
                        "matched": matched.get(rule.name, {}).get("MatchedEvents", 0),
                        "pattern": json.dumps(rule.event_pattern, ensure_ascii=False) if rule.event_pattern else "",
                    }
                )
        return self._render(request, context, "rules.html", {"title": "Rules", "rows": rows}, page="/rules")

    async def rule_page(self, request: Request, context: Context) -> Response:
        bus = self._bus(request.path_params["bus"])
        name = request.path_params["rule"]
        entry = bus.rule_table.rules.get(name)
        if entry is None:
            raise ApiError("ResourceNotFoundException", f"Rule {name} does not exist on event bus {bus.name}.", 404)
        try:
            last = max(1, min(int(request.query_params.get("last", EXPLAINED)), self.watch.keep))
        except ValueError:
            last = EXPLAINED
        explained = []
        for routed in self.watch.recent(bus.name, last):
            reasons = entry.pattern.explain(routed.event) if entry.pattern is not None else []
            explained.append(
                {
                    "routed": routed,
                    "matched_then": name in routed.rules,
                    "matches_now": entry.pattern is not None and not reasons,
                    "reasons": reasons,
                }
            )
        return self._render(
            request,
            context,
            "rule.html",
            {
                "title": f"Rule {name}",
                "bus": bus.name,
                "rule": entry.rule,
                "file": self.server.state.config_rules.get((bus.name, name)),
                "pattern": pretty(entry.rule.event_pattern) if entry.rule.event_pattern else "",
                "explained": explained,
                "last": last,
                "keep": self.watch.keep,
            },
            page="/rules",
        )

    async def rule_state(self, request: Request, context: Context) -> Response:
        assert context.form is not None
        bus = self._bus(request.path_params["bus"])
        name = request.path_params["rule"]
        wanted = str(context.form.get("state") or "")
        if wanted not in ("ENABLED", "DISABLED"):
            raise ApiError("ValidationException", "state must be ENABLED or DISABLED.")
        if (bus.name, name) in self.server.state.config_rules and bus.name in self.server.state.runtime.buses:
            # A config rule: switched on the running bus; the file is not changed, so a restart
            # or reload puts back what it says.
            try:
                (bus.enable_rule if wanted == "ENABLED" else bus.disable_rule)(name)
            except Exception as exc:
                raise from_library(exc) from None
        else:
            params = {"Name": name, "EventBusName": bus.name}
            api = self.server.events
            try:
                await (api.enable_rule(params) if wanted == "ENABLED" else api.disable_rule(params))
            except Exception as exc:
                raise from_library(exc) from None
        _log.info("rule state changed from the console", bus=bus.name, rule=name, state=wanted)
        if _wants_json(request):
            return JSONResponse({"bus": bus.name, "rule": name, "state": wanted})
        back = str(context.form.get("back") or "")
        return RedirectResponse(_next(back, request, default=f"{_base(request)}/rules"), status_code=303)

    # -- dead letters ------------------------------------------------------------------------------

    async def dead_letters_page(self, request: Request, context: Context) -> Response:
        queues = await self.dead_letters.queues() if self.dead_letters is not None else []
        return self._render(
            request,
            context,
            "dead_letters.html",
            {"title": "Dead letters", "queues": queues, "unavailable": None if self.dead_letters else UNAVAILABLE_DEAD_LETTERS},
            page="/dead-letters",
        )

    async def dead_letter_queue_page(self, request: Request, context: Context) -> Response:
        if self.dead_letters is None:
            raise ApiError("OperationDisabledException", UNAVAILABLE_DEAD_LETTERS, 404)
        queue = request.path_params["queue"]
        entries = await self.dead_letters.entries(queue, 500)
        return self._render(
            request,
            context,
            "dead_letter_queue.html",
            {
                "title": f"Dead letters: {queue}",
                "queue": queue,
                "entries": entries,
                "sent": _count(request.query_params.get("sent")),
                "failed": _count(request.query_params.get("failed")),
            },
            page="/dead-letters",
        )

    async def redrive(self, request: Request, context: Context) -> Response:
        assert context.form is not None
        if self.dead_letters is None:
            raise ApiError("OperationDisabledException", UNAVAILABLE_DEAD_LETTERS, 404)
        queue = request.path_params["queue"]
        which = str(context.form.get("which") or "")
        one = str(context.form.get("one") or "")
        ids: list[str] | None
        if one:
            ids = [one]
        elif which == "all":
            ids = None
        else:
            ids = [str(v) for v in context.form.getlist("id") if str(v)]
            if not ids:
                raise ApiError("ValidationException", "Select at least one dead letter to redrive.")
        result = await self.dead_letters.redrive(queue, ids)
        _log.info("dead letters redriven from the console", queue=queue, sent=len(result.sent), failed=len(result.failed))
        if _wants_json(request):
            return JSONResponse({"sent": list(result.sent), "failed": [{"id": i, "reason": r} for i, r in result.failed]})
        query = urlencode({"sent": len(result.sent), "failed": len(result.failed)})
        return RedirectResponse(f"{_base(request)}/dead-letters/{quote(queue, safe='')}?{query}", status_code=303)

    # -- archives and replays ------------------------------------------------------------------------

    def _archives(self) -> Any:
        return getattr(self.server.archives, "service", None)

    async def archives_page(self, request: Request, context: Context) -> Response:
        service = self._archives()
        archives = list(service.list_archives()) if service is not None else []
        replays = [_replay(r) for r in service.list_replays()] if service is not None else []
        buses = sorted(e.bus.name for e in self.server.state.buses.entries())
        return self._render(
            request,
            context,
            "archives.html",
            {
                "title": "Archives and replays",
                "archives": archives,
                "replays": replays,
                "buses": buses,
                "unavailable": None if service is not None else UNAVAILABLE_ARCHIVES,
                "problem": "",
                "now": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            },
            page="/archives",
        )

    async def replays_json(self, request: Request, context: Context) -> Response:
        service = self._archives()
        if service is None:
            raise ApiError("OperationDisabledException", UNAVAILABLE_ARCHIVES, 404)
        return JSONResponse({"replays": [_replay(r) for r in service.list_replays()]})

    async def start_replay(self, request: Request, context: Context) -> Response:
        form = context.form
        assert form is not None
        if self._archives() is None:
            raise ApiError("OperationDisabledException", UNAVAILABLE_ARCHIVES, 404)
        archive = self._archives().describe_archive(str(form.get("archive") or ""))
        destination = str(form.get("destination") or archive.bus)
        rules = [r.strip() for r in str(form.get("rules") or "").split(",") if r.strip()]
        bus = self._bus(destination)
        params: dict[str, Any] = {
            "ReplayName": str(form.get("name") or ""),
            "EventSourceArn": archive.arn,
            "EventStartTime": _utc_text(form.get("start"), "start"),
            "EventEndTime": _utc_text(form.get("end"), "end"),
            "Destination": {"Arn": bus.arn, **({"FilterArns": [f"{bus.arn.replace(':event-bus/', ':rule/')}/{r}" for r in rules]} if rules else {})},
        }
        description = str(form.get("description") or "")
        if description:
            params["Description"] = description
        if not params["ReplayName"]:
            raise ApiError("ValidationException", "Give the replay a name.")
        answer = await self.server.archives.start_replay(params)
        _log.info("replay started from the console", replay=params["ReplayName"], archive=archive.name)
        if _wants_json(request):
            return JSONResponse(answer)
        return RedirectResponse(f"{_base(request)}/archives", status_code=303)

    async def cancel_replay(self, request: Request, context: Context) -> Response:
        if self._archives() is None:
            raise ApiError("OperationDisabledException", UNAVAILABLE_ARCHIVES, 404)
        name = request.path_params["name"]
        answer = await self.server.archives.cancel_replay({"ReplayName": name})
        _log.info("replay cancelled from the console", replay=name)
        if _wants_json(request):
            return JSONResponse(answer)
        return RedirectResponse(f"{_base(request)}/archives", status_code=303)

    # -- sandbox -------------------------------------------------------------------------------

    async def sandbox_page(self, request: Request, context: Context) -> Response:
        return self._sandbox(request, context, {})

    async def sandbox_run(self, request: Request, context: Context) -> Response:
        form = context.form
        assert form is not None
        test = str(form.get("test") or "")
        event = str(form.get("event") or "")
        values: dict[str, Any] = {"event": event}
        if test == "pattern":
            pattern = str(form.get("pattern") or "")
            verdict = check_pattern(event, pattern)
            values.update(pattern=pattern, pattern_verdict=verdict)
            answer: dict[str, Any] = {"matched": verdict.matched, "error": verdict.error, "explanation": verdict.explanation}
        elif test == "transform":
            transformer = str(form.get("transformer") or "")
            result = check_transform(event, transformer)
            values.update(transformer=transformer, transform_verdict=result)
            answer = {"output": result.output, "error": result.error}
        else:
            raise ApiError("ValidationException", "test must be pattern or transform.")
        if _wants_json(request):
            return JSONResponse(answer)
        return self._sandbox(request, context, values)

    def _sandbox(self, request: Request, context: Context, values: Mapping[str, Any]) -> Response:
        defaults = {
            "event": pretty(_SAMPLE_EVENT),
            "pattern": pretty(_SAMPLE_PATTERN),
            "transformer": pretty(_SAMPLE_TRANSFORMER),
            "pattern_verdict": None,
            "transform_verdict": None,
        }
        return self._render(request, context, "sandbox.html", {"title": "Sandbox", **defaults, **values}, page="/sandbox")


def mount_console(
    server: Any,
    path: str = "/console",
    *,
    dead_letters: DeadLetterService | None = None,
) -> Console:
    """Serve the console of ``server`` (an ``EventbusServer``) at ``path``.

    Call it before the server starts: the console follows each bus from then on. The console is
    also ``server.app.state.console``. ``dead_letters`` is what the dead-letter pages drive: the
    SQLite dead-letter queues of the served rules unless given (where the durable state has them).
    """
    if dead_letters is None:
        from eventbus.console.dead_letters import sqlite_dead_letters

        dead_letters = sqlite_dead_letters(server)
    console = Console(server, dead_letters=dead_letters)
    server.bus_followers.append(console.watch.follow)
    server.app.router.routes.append(Mount(path, app=console.app))
    server.app.state.console = console
    return console


# -- helpers ----------------------------------------------------------------------------------


class _SecurityHeaders:
    """Every response of the console (pages, JSON, static files) says what the browser may do."""

    HEADERS = (
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
        (b"cross-origin-opener-policy", b"same-origin"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _wants_json(request: Request) -> bool:
    """A script's request (a browser's asks for HTML): answered with JSON."""
    return "text/html" not in request.headers.get("accept", "")


def _base(conn: HTTPConnection) -> str:
    """Where the console is mounted (``/console``), as the browser sees it."""
    return str(conn.scope.get("root_path", "")).rstrip("/")


def _raw_path(conn: HTTPConnection) -> str:
    raw = conn.scope.get("raw_path")
    return raw.decode("latin-1") if isinstance(raw, bytes) and raw else conn.url.path


def _next(value: str | None, request: Request, default: str | None = None) -> str:
    """A console path to go to after an action; anything else (another site) is refused."""
    base = _base(request)
    fallback = default if default is not None else f"{base}/"
    if not value or not value.startswith(f"{base}/") or value.startswith("//") or "\\" in value:
        return fallback
    return value


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() and len(value) < 10 else None


def _version(graph: Any) -> str:
    import hashlib

    text = json.dumps([sorted(graph.nodes), [(e.source, e.target) for e in graph.edges]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _utc_text(value: Any, what: str) -> str:
    text = str(value or "").strip()
    if not text:
        raise ApiError("ValidationException", f"Give the replay's {what} time.")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError("ValidationException", f"The {what} time {text!r} is not a date and time (YYYY-MM-DDTHH:MM:SS, UTC).") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


def _replay(info: Any) -> dict[str, Any]:
    start, end, last = info.event_start, info.event_end, info.last_replayed
    if info.state == "COMPLETED":
        progress = 100
    elif last is None:
        progress = 0
    else:
        span = (end - start).total_seconds()
        progress = int(max(0.0, min(1.0, (last - start).total_seconds() / span)) * 100) if span > 0 else 100
    return {
        "name": info.name,
        "archive": info.archive_arn.rsplit("/", 1)[-1],
        "state": info.state,
        "reason": info.state_reason or "",
        "start": when(start),
        "end": when(end),
        "last": when(last),
        "progress": progress,
        "cancellable": info.state in ("STARTING", "RUNNING"),
    }
