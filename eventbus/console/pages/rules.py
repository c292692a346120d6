"""Rules: the list with their switches, and one rule's pattern against the last events."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from eventbus._logger import get_logger
from eventbus.console.site import Context, Site, base, next_path, wants_json
from eventbus.console.text import pretty
from eventbus.console.watch import Watch
from eventbus.server.errors import ApiError, from_library

_log = get_logger("eventbus.console")

#: How many recent events a rule's page explains by default (and at most: ``Watch.keep``).
EXPLAINED = 20

__all__ = ["RulesPage"]


class RulesPage:
    def __init__(self, site: Site, server: Any, watch: Watch) -> None:
        self.site = site
        self.server = server
        self.watch = watch

    def routes(self) -> list[BaseRoute]:
        page = self.site.page
        return [
            Route("/rules", page(self.rules_page)),
            Route("/rules/{bus:path}/{rule}/state", page(self.rule_state, kind="action"), methods=["POST"]),
            Route("/rules/{bus:path}/{rule}", page(self.rule_page)),
        ]

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
        return self.site.render(request, context, "rules.html", {"title": "Rules", "rows": rows}, page="/rules")

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
        return self.site.render(
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
        if wants_json(request):
            return JSONResponse({"bus": bus.name, "rule": name, "state": wanted})
        back = str(context.form.get("back") or "")
        return RedirectResponse(next_path(back, request, default=f"{base(request)}/rules"), status_code=303)
