"""Signing in to the console with a credential the API accepts, and out again."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from eventbus._logger import get_logger
from eventbus.console.site import Context, Site, base, next_path

_log = get_logger("eventbus.console")

__all__ = ["SignIn"]


class SignIn:
    def __init__(self, site: Site) -> None:
        self.site = site

    def routes(self) -> list[BaseRoute]:
        page = self.site.page
        return [
            Route("/login", page(self.login_page, public=True)),
            Route("/login", page(self.login, kind="action", public=True), methods=["POST"]),
            Route("/logout", page(self.logout, kind="action", public=True), methods=["POST"]),
        ]

    async def login_page(self, request: Request, context: Context) -> Response:
        return self.site.render(
            request,
            context,
            "login.html",
            {"title": "Sign in", "next": next_path(request.query_params.get("next"), request), "problem": "", "open": self.site.guard.open},
        )

    async def login(self, request: Request, context: Context) -> Response:
        form = context.form
        assert form is not None
        fields = {name: str(form.get(name) or "") for name in ("api_key", "access_key_id", "secret_access_key")}
        target = next_path(str(form.get("next") or ""), request)
        if self.site.guard.open or self.site.guard.credential_ok(**fields):
            session = self.site.guard.new_session(signed_in=True)
            return self.site.with_cookie(RedirectResponse(target, status_code=303), session, True, request)
        _log.warning("console sign-in refused", client=request.client.host if request.client else None)
        return self.site.render(
            request,
            context,
            "login.html",
            {"title": "Sign in", "next": target, "problem": "That is not a credential this server accepts.", "open": False},
            status=403,
        )

    async def logout(self, request: Request, context: Context) -> Response:
        return self.site.with_cookie(RedirectResponse(f"{base(request)}/login", status_code=303), self.site.guard.new_session(), True, request)
