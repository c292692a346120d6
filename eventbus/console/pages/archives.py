"""Archives and replays: the list, a replay started over a window, its progress, cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from eventbus._logger import get_logger
from eventbus.console.services import UNAVAILABLE_ARCHIVES
from eventbus.console.site import Context, Site, base, wants_json
from eventbus.console.text import when
from eventbus.server.errors import ApiError

_log = get_logger("eventbus.console")

__all__ = ["ArchivesPage"]


class ArchivesPage:
    def __init__(self, site: Site, server: Any) -> None:
        self.site = site
        self.server = server

    def routes(self) -> list[BaseRoute]:
        page = self.site.page
        return [
            Route("/archives", page(self.archives_page)),
            Route("/api/replays", page(self.replays_json, kind="json")),
            Route("/replays", page(self.start_replay, kind="action"), methods=["POST"]),
            Route("/replays/{name}/cancel", page(self.cancel_replay, kind="action"), methods=["POST"]),
        ]

    def _bus(self, name: str) -> Any:
        return self.server.state.buses.get(name)

    def _archives(self) -> Any:
        return getattr(self.server.archives, "service", None)

    async def archives_page(self, request: Request, context: Context) -> Response:
        service = self._archives()
        archives = list(service.list_archives()) if service is not None else []
        replays = [_replay(r) for r in service.list_replays()] if service is not None else []
        buses = sorted(e.bus.name for e in self.server.state.buses.entries())
        return self.site.render(
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
        if wants_json(request):
            return JSONResponse(answer)
        return RedirectResponse(f"{base(request)}/archives", status_code=303)

    async def cancel_replay(self, request: Request, context: Context) -> Response:
        if self._archives() is None:
            raise ApiError("OperationDisabledException", UNAVAILABLE_ARCHIVES, 404)
        name = request.path_params["name"]
        answer = await self.server.archives.cancel_replay({"ReplayName": name})
        _log.info("replay cancelled from the console", replay=name)
        if wants_json(request):
            return JSONResponse(answer)
        return RedirectResponse(f"{base(request)}/archives", status_code=303)


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
    replayed, total = getattr(info, "replayed", 0), getattr(info, "total", None)
    if info.state == "COMPLETED":
        progress = 100
    elif total:
        # The window's events counted when the replay started: the share of them put back.
        progress = int(min(1.0, replayed / total) * 100)
    elif last is None:
        progress = 0
    else:
        # No count: how far into the window the last replayed event's time is.
        span = (end - start).total_seconds()
        progress = int(max(0.0, min(1.0, (last - start).total_seconds() / span)) * 100) if span > 0 else 100
    count = f"{replayed} of {total} events" if total is not None else (f"{replayed} events" if replayed else "")
    if count and last is not None:
        count += " ·"
    return {
        "name": info.name,
        "archive": info.archive_arn.rsplit("/", 1)[-1],
        "state": info.state,
        "reason": info.state_reason or "",
        "start": when(start),
        "end": when(end),
        "last": f"last event {when(last)}" if last is not None else "",
        "count": count,
        "progress": progress,
        "cancellable": info.state in ("STARTING", "RUNNING"),
    }
