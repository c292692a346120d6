"""/healthz, /readyz and /metrics (Prometheus text exposition) of a live server."""

from __future__ import annotations

import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from .helpers import LiveServer


def samples(server: LiveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(server.url + "/metrics", timeout=30).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_health_and_readiness(live: LiveServer) -> None:
    assert httpx.get(live.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(live.url + "/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "buses": ["default", "orders"]}


def test_metrics_count_per_bus_rule_and_target_and_time_deliveries(live: LiveServer) -> None:
    events = live.client("events")
    entries = [{"Source": "shop", "DetailType": "t", "Detail": "{}", "EventBusName": "orders"} for _ in range(4)]
    entries.append({"Source": "elsewhere", "DetailType": "t", "Detail": "{}", "EventBusName": "orders"})
    events.put_events(Entries=entries)
    deadline = time.monotonic() + 30
    while True:
        found = samples(live)
        delivered = value(found, "eventbus_target_deliveries_total", bus="orders", rule="from-config", target="log", outcome="delivered")
        outcomes = value(found, "eventbus_delivery_outcomes_total", bus="orders", rule="from-config", target="log", outcome="delivered")
        if (delivered >= 4 and outcomes >= 4) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert delivered == 4
    assert value(found, "eventbus_bus_events_total", bus="orders", counter="AcceptedEvents") == 5
    assert value(found, "eventbus_rule_events_total", bus="orders", rule="from-config", counter="MatchedEvents") == 4
    assert value(found, "eventbus_target_invocations_total", bus="orders", rule="from-config", target="log", counter="Invocations") == 4
    assert value(found, "eventbus_target_delivery_seconds_count", bus="orders", rule="from-config", target="log") >= 1
    assert ("eventbus_bus_pending_events", (("bus", "orders"),)) in found
    assert outcomes == 4  # read from bus.outcomes()
    assert value(found, "eventbus_pipe_running", pipe="from-config") == 1
    assert ("eventbus_pipe_records_total", (("counter", "received"), ("pipe", "from-config"))) in found
    assert value(found, "eventbus_api_requests_total", api="events", operation="PutEvents", code="OK") >= 1
