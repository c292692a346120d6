"""Dead letters: the queues, one queue's entries with their reasons, and redrive."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from eventbus._logger import get_logger
from eventbus.console.services import UNAVAILABLE_DEAD_LETTERS, DeadLetterService
from eventbus.console.site import Context, Site, base, wants_json
from eventbus.server.errors import ApiError

_log = get_logger("eventbus.console")

__all__ = ["DeadLettersPage"]


class DeadLettersPage:
    def __init__(self, site: Site, service: DeadLetterService | None) -> None:
        self.site = site
        #: What the pages drive (``None``: the page says what it needs).
        self.dead_letters = service

    def routes(self) -> list[BaseRoute]:
        page = self.site.page
        return [
            Route("/dead-letters", page(self.dead_letters_page)),
            Route("/dead-letters/{queue}/redrive", page(self.redrive, kind="action"), methods=["POST"]),
            Route("/dead-letters/{queue}", page(self.dead_letter_queue_page)),
        ]

    async def dead_letters_page(self, request: Request, context: Context) -> Response:
        queues = await self.dead_letters.queues() if self.dead_letters is not None else []
        return self.site.render(
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
        return self.site.render(
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
        if wants_json(request):
            return JSONResponse({"sent": list(result.sent), "failed": [{"id": i, "reason": r} for i, r in result.failed]})
        query = urlencode({"sent": len(result.sent), "failed": len(result.failed)})
        return RedirectResponse(f"{base(request)}/dead-letters/{quote(queue, safe='')}?{query}", status_code=303)


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() and len(value) < 10 else None
