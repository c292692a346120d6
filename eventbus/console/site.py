"""What every console page stands on: the gate each request passes (a session, authentication,
and for actions a CSRF token from the console's own origin), rendering with autoescaping, and the
headers every response carries.

A page handler is ``async (request, context) -> Response``; ``Site.page(handler, kind=...)`` makes
it a Starlette endpoint behind the gate. ``kind`` is ``page`` (HTML; a stranger is sent to sign
in), ``json`` (a stranger is answered 401) or ``action`` (a POST: its form is read, and a browser's
must carry the session's CSRF token and come from the console's own origin).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jinja2
from starlette.datastructures import FormData, UploadFile
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventbus.console.graph import compact
from eventbus.console.security import CSP, SESSION_COOKIE, SESSION_SECONDS, Guard, Session
from eventbus.console.text import pretty, when
from eventbus.server.errors import ApiError

__all__ = ["PAGES", "Context", "Handler", "SecurityHeaders", "Site", "base", "next_path", "raw_path", "wants_json"]

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


class Site:
    def __init__(self, guard: Guard, max_body_bytes: int) -> None:
        self.guard = guard
        self.max_body_bytes = max_body_bytes
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

    def page(self, handler: Handler, *, kind: str = "page", public: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind the console's checks: a session, authentication (unless ``public``),
        and for actions (``kind="action"``) a CSRF token and a same-origin browser."""

        async def endpoint(request: Request) -> Response:
            session, fresh = self.session(request)
            body = b""
            if request.method == "POST":
                read = await self._body(request)
                if read is None:
                    limit = self.max_body_bytes
                    return self.refuse(request, kind, 413, f"The request body exceeds the limit of {limit} bytes.")
                body = read
            by_header = self.guard.header_auth(
                request.method, raw_path(request), request.url.query, request.headers, body
            )
            if by_header is False:
                return self.refuse(request, kind, 403, "The credentials in the Authorization header are not valid.")
            if not public and by_header is None and not session.signed_in:
                if kind == "page":
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    response: Response = RedirectResponse(
                        f"{base(request)}/login?{urlencode({'next': target})}", status_code=303
                    )
                    return self.with_cookie(response, session, fresh, request)
                return self.refuse(request, kind, 401, "Sign in to the console first.")
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
                        return self.refuse(request, kind, 403, "This action must come from the console's own pages.")
                    if not self.guard.check_csrf(session, token if isinstance(token, str) else None):
                        return self.refuse(
                            request, kind, 403, "The form has expired or did not come from the console: reload the page and try again."
                        )
            context = Context(session, fresh, by_header is True, form)
            try:
                response = await handler(request, context)
            except ApiError as exc:
                response = self.refuse(request, kind, exc.status, exc.message, code=exc.code)
            return self.with_cookie(response, context.session, context.fresh, request)

        return endpoint

    async def _body(self, request: Request) -> bytes | None:
        """The body, read up to the server's ``max_body_bytes`` (``None`` past it)."""
        limit = self.max_body_bytes
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

    def session(self, conn: HTTPConnection) -> tuple[Session, bool]:
        found = self.guard.read_cookie(conn.cookies.get(SESSION_COOKIE))
        if found is not None:
            return found, False
        return self.guard.new_session(), True

    def with_cookie(self, response: Response, session: Session, fresh: bool, request: Request) -> Response:
        if fresh:
            response.set_cookie(
                SESSION_COOKIE,
                self.guard.cookie_value(session),
                max_age=SESSION_SECONDS,
                path=base(request) or "/",
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
        return response

    def refuse(self, request: Request, kind: str, status: int, message: str, *, code: str = "") -> Response:
        if kind == "json" or wants_json(request):
            return JSONResponse({"error": message, **({"code": code} if code else {})}, status_code=status)
        return self.render(request, None, "error.html", {"title": "Not allowed" if status in (401, 403) else "Error", "message": message, "code": code}, status=status)

    def render(
        self,
        request: Request,
        context: Context | None,
        template: str,
        values: Mapping[str, Any],
        *,
        status: int = 200,
        page: str = "",
    ) -> HTMLResponse:
        session = context.session if context is not None else self.session(request)[0]
        html = self.templates.get_template(template).render(
            base=base(request),
            csrf=self.guard.csrf_token(session),
            pages=PAGES,
            page=page,
            signed_in=session.signed_in and not self.guard.open,
            **values,
        )
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


class SecurityHeaders:
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


def wants_json(request: Request) -> bool:
    """A script's request (a browser's asks for HTML): answered with JSON."""
    return "text/html" not in request.headers.get("accept", "")


def base(conn: HTTPConnection) -> str:
    """Where the console is mounted (``/console``), as the browser sees it."""
    return str(conn.scope.get("root_path", "")).rstrip("/")


def raw_path(conn: HTTPConnection) -> str:
    raw = conn.scope.get("raw_path")
    return raw.decode("latin-1") if isinstance(raw, bytes) and raw else conn.url.path


def next_path(value: str | None, request: Request, default: str | None = None) -> str:
    """A console path to go to after an action; anything else (another site) is refused."""
    root = base(request)
    fallback = default if default is not None else f"{root}/"
    if not value or not value.startswith(f"{root}/") or value.startswith("//") or "\\" in value:
        return fallback
    return value
