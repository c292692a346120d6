"""``GET /metrics``: Prometheus text exposition (``prometheus-client``), per bus, rule and target.

The counters are the library's own (``bus.metrics()``, ``pipe.metrics()``), read when Prometheus
scrapes, so serving them costs the event path nothing. What the library does not count is
measured by a thin wrapper around each target (``instrument``): deliveries that succeeded or
failed, and how long each call to the target took (a histogram).

| metric | labels | from |
| --- | --- | --- |
| ``eventbus_bus_events_total`` | bus, counter (``AcceptedEvents``, ``PutEventsEntries``...) | ``bus.metrics()["bus"]`` |
| ``eventbus_bus_pending_events`` | bus | events accepted and not yet delivered (the log's depth) |
| ``eventbus_rule_events_total`` | bus, rule, counter (``MatchedEvents``, ``TriggeredRules``, ``Invocations``...) | ``bus.metrics()["rules"]`` |
| ``eventbus_target_invocations_total`` | bus, rule, target, counter (``Invocations``, ``FailedInvocations``, ``RetriedInvocations``, ``InvocationsSentToDLQ``...) | ``bus.metrics()["targets"]`` |
| ``eventbus_delivery_outcomes_total`` | bus, rule, target, outcome (``delivered``, ``failed``, ``retry-scheduled``, ``dead-lettered``, ``dropped``) | ``bus.outcomes()`` |
| ``eventbus_target_deliveries_total`` | bus, rule, target, outcome (``delivered``/``failed``) | each call to a target |
| ``eventbus_target_delivery_seconds`` | bus, rule, target | histogram of those calls' durations |
| ``eventbus_pipe_records_total`` | pipe, counter (``received``, ``delivered``, ``dead_lettered``...) | ``pipe.metrics()`` |
| ``eventbus_pipe_in_flight_records`` | pipe | records taken and not settled |
| ``eventbus_api_requests_total`` | api, operation, code | every API answer |
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from eventbus.targets.base import DeliveryContext, Target

__all__ = ["CONTENT_TYPE", "ServerMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Delivery latency buckets, seconds: from an in-process function to a slow HTTP endpoint.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServerMetrics:
    """One registry for one server (tests run several in a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.deliveries = Counter(
            "eventbus_target_deliveries",
            "Calls to a target, by outcome",
            ["bus", "rule", "target", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "eventbus_target_delivery_seconds",
            "How long each call to a target took",
            ["bus", "rule", "target"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.outcomes = Counter(
            "eventbus_delivery_outcomes",
            "What happened to deliveries (bus.outcomes()): delivered, failed, retry-scheduled, dead-lettered, dropped",
            ["bus", "rule", "target", "outcome"],
            registry=self.registry,
        )
        self.outcomes_lost = Counter(
            "eventbus_delivery_outcomes_lost",
            "Outcomes the metrics reader missed because it fell behind (the counts above are then low)",
            ["bus"],
            registry=self.registry,
        )
        self.requests = Counter(
            "eventbus_api_requests",
            "API requests answered, by operation and code (OK or the error code)",
            ["api", "operation", "code"],
            registry=self.registry,
        )
        self._sources: list[Callable[[], tuple[Mapping[str, Any], Mapping[str, Any]]]] = []
        self._answered: dict[tuple[str, str, str], Any] = {}

    def watch(self, buses: Callable[[], Mapping[str, Any]], pipes: Callable[[], Mapping[str, Any]]) -> None:
        """Read counters from ``buses()`` and ``pipes()`` (name -> bus, name -> pipe) at each scrape."""
        self.registry.register(_Library(buses, pipes))

    def instrument(self, address: str, target: Target) -> Target:
        """``target``, timed and counted under ``address`` (``bus/rule/id``, ``pipe/NAME/stage``)."""
        return _Timed(target, self, _labels(address))

    async def follow(self, bus: Any) -> None:
        """Count ``bus.outcomes()`` until the bus stops (run it in a task)."""
        async with bus.outcomes() as stream:
            async for outcome in stream:
                self.outcomes.labels(outcome.bus, outcome.rule, outcome.target_id, outcome.kind).inc()
                if outcome.lost_before:
                    self.outcomes_lost.labels(outcome.bus).inc(outcome.lost_before)

    def answered(self, api: str, operation: str, code: str) -> None:
        # The labelled child kept: looking it up costs more than counting, thousands of times a second.
        key = (api, operation, code)
        child = self._answered.get(key)
        if child is None:
            child = self._answered[key] = self.requests.labels(api, operation, code)
        child.inc()

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))


def _labels(address: str) -> tuple[str, str, str]:
    parts = address.split("/")
    if parts[0] == "pipe" and len(parts) >= 3:
        return ("", f"pipe/{parts[1]}", "/".join(parts[2:]))
    if len(parts) >= 3:
        return parts[0], parts[1], "/".join(parts[2:])
    return address, "", ""


class _Timed:
    """Delivers through ``target``, counting and timing each call."""

    def __init__(self, target: Target, metrics: ServerMetrics, labels: tuple[str, str, str]) -> None:
        self.target = target
        self.max_batch_size = target.max_batch_size
        self.per_payload_calls = bool(getattr(target, "per_payload_calls", False))
        arn = getattr(target, "arn", None)
        if isinstance(arn, str):
            self.arn = arn
        self._delivered = metrics.deliveries.labels(*labels, "delivered")
        self._failed = metrics.deliveries.labels(*labels, "failed")
        self._latency = metrics.latency.labels(*labels)

    def __repr__(self) -> str:
        return repr(self.target)

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> Any:
        start = time.perf_counter()
        try:
            response = await self.target.deliver(payloads, context)
        except BaseException:
            self._failed.inc(len(payloads))
            raise
        finally:
            self._latency.observe(time.perf_counter() - start)
        self._delivered.inc(len(payloads))
        return response

    async def aclose(self) -> None:
        await self.target.aclose()


class _Library(Collector):
    """The library's counters, read at scrape time."""

    def __init__(self, buses: Callable[[], Mapping[str, Any]], pipes: Callable[[], Mapping[str, Any]]) -> None:
        self.buses = buses
        self.pipes = pipes

    def describe(self) -> Iterable[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        bus_counts = CounterMetricFamily("eventbus_bus_events", "A bus's counters", labels=["bus", "counter"])
        pending = GaugeMetricFamily("eventbus_bus_pending_events", "Events accepted and not yet delivered", labels=["bus"])
        rules = CounterMetricFamily("eventbus_rule_events", "A rule's counters", labels=["bus", "rule", "counter"])
        targets = CounterMetricFamily(
            "eventbus_target_invocations", "A rule target's counters", labels=["bus", "rule", "target", "counter"]
        )
        for name, bus in sorted(self.buses().items()):
            snapshot = bus.metrics()
            for counter, value in sorted(snapshot["bus"].items()):
                bus_counts.add_metric([name, counter], value)
            pending.add_metric([name], bus.pending())
            for rule, counters in sorted(snapshot["rules"].items()):
                for counter, value in sorted(counters.items()):
                    rules.add_metric([name, rule, counter], value)
            for address, counters in sorted(snapshot["targets"].items()):
                rule, _, target = address.partition("/")
                for counter, value in sorted(counters.items()):
                    targets.add_metric([name, rule, target, counter], value)
        records = CounterMetricFamily("eventbus_pipe_records", "A pipe's per-stage counters", labels=["pipe", "counter"])
        in_flight = GaugeMetricFamily("eventbus_pipe_in_flight_records", "Records taken and not settled", labels=["pipe"])
        running = GaugeMetricFamily("eventbus_pipe_running", "1 when the pipe is RUNNING", labels=["pipe"])
        for name, pipe in sorted(self.pipes().items()):
            for counter, value in sorted(pipe.metrics().items()):
                records.add_metric([name, counter], value)
            in_flight.add_metric([name], pipe.in_flight)
            running.add_metric([name], 1 if pipe.state == "RUNNING" else 0)
        return [bus_counts, pending, rules, targets, records, in_flight, running]
