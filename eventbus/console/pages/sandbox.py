"""The sandbox page: an event against a pattern, an event through an input transformer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from eventbus.console.sandbox import check_pattern, check_transform
from eventbus.console.site import Context, Site, wants_json
from eventbus.console.text import pretty
from eventbus.server.errors import ApiError

__all__ = ["SandboxPage"]

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


class SandboxPage:
    def __init__(self, site: Site) -> None:
        self.site = site

    def routes(self) -> list[BaseRoute]:
        page = self.site.page
        return [
            Route("/sandbox", page(self.sandbox_page)),
            Route("/sandbox", page(self.sandbox_run, kind="action"), methods=["POST"]),
        ]

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
        if wants_json(request):
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
        return self.site.render(request, context, "sandbox.html", {"title": "Sandbox", **defaults, **values}, page="/sandbox")
