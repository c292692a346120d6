"""The live tail: routed events and their delivery outcomes, over a WebSocket, per browser.

Each connection reads ``bus.routed()`` and ``bus.outcomes()`` of the buses it watches (bounded
streams the bus never waits on) into a queue of its own of at most ``max_queued`` messages; one
task sends that queue to the browser. A browser that reads slowly (or a paused page on a slow
link) makes its queue drop the oldest messages, which it is told as a count; the bus is never
slowed, and other connections are not affected.

The browser may send ``{"type": "filter", "pattern": "..."}``: an EventBridge pattern (empty: no
filter). Only the events it matches are sent, with their outcomes; an invalid pattern is
answered with AWS's message and the previous filter stays.

Messages to the browser: ``hello`` (the buses watched), ``filter`` (``ok`` or ``error``),
``event`` (one routed event: its envelope, the rules it matched, each target's rendered input),
``outcome`` (one step of one delivery) and ``lost`` (messages dropped because the browser fell
behind, or events the streams lost).
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from typing import Any

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect

from eventbus.bus.outcomes import Outcome
from eventbus.bus.routed import RoutedEvent
from eventbus.console.text import pretty
from eventbus.errors import PatternError
from eventbus.patterns import Pattern

__all__ = ["Tail"]

#: Longest text sent for an event or a rendered input (events are at most 256 KB).
MAX_TEXT = 64 * 1024


class Tail:
    def __init__(self, server: Any, *, max_queued: int = 1_000, max_rows: int = 300) -> None:
        self.server = server
        self.max_queued = max_queued
        #: Rows the page keeps (it drops the oldest past it).
        self.max_rows = max_rows

    async def serve(self, websocket: WebSocket) -> None:
        wanted = websocket.query_params.get("bus") or ""
        entries = self.server.state.buses.entries()
        buses = [e.bus for e in entries if not wanted or e.bus.name == wanted]
        await websocket.accept()
        session = _Session(websocket, self.max_queued)
        session.queue({"type": "hello", "buses": sorted(b.name for b in buses), "max_rows": self.max_rows})
        async with anyio.create_task_group() as tg:
            for bus in buses:
                tg.start_soon(session.pump, bus)
            tg.start_soon(session.send_all)
            await session.receive_all()
            tg.cancel_scope.cancel()


class _Session:
    """One browser's tail."""

    def __init__(self, websocket: WebSocket, max_queued: int) -> None:
        self.websocket = websocket
        self.pending: deque[dict[str, Any]] = deque(maxlen=max_queued)
        self.dropped = 0
        self.arrived = anyio.Event()
        self.pattern: Pattern | None = None
        #: Event ids sent (their outcomes follow them), and ids filtered out, most recent last.
        self.sent: OrderedDict[str, None] = OrderedDict()

    def queue(self, message: dict[str, Any]) -> None:
        if len(self.pending) == self.pending.maxlen:
            self.dropped += 1
        self.pending.append(message)
        self.arrived.set()

    async def send_all(self) -> None:
        while True:
            await self.arrived.wait()
            self.arrived = anyio.Event()
            while self.pending:
                if self.dropped:
                    count, self.dropped = self.dropped, 0
                    await self.websocket.send_text(json.dumps({"type": "lost", "count": count}))
                await self.websocket.send_text(json.dumps(self.pending.popleft(), ensure_ascii=False))

    async def receive_all(self) -> None:
        """Filters from the browser, until it goes away."""
        while True:
            try:
                text = await self.websocket.receive_text()
            except (WebSocketDisconnect, RuntimeError, KeyError):
                return
            try:
                message = json.loads(text)
            except ValueError:
                continue
            if not isinstance(message, dict) or message.get("type") != "filter":
                continue
            source = message.get("pattern")
            if not isinstance(source, str) or not source.strip():
                self.pattern = None
                self.queue({"type": "filter", "ok": True, "pattern": ""})
                continue
            try:
                self.pattern = Pattern(source)
            except PatternError as exc:
                self.queue({"type": "filter", "ok": False, "error": str(exc)})
                continue
            self.queue({"type": "filter", "ok": True, "pattern": self.pattern.to_json()})

    async def pump(self, bus: Any) -> None:
        """``bus``'s routed events and outcomes into this browser's queue."""
        routed, outcomes = bus.routed(buffer=500), bus.outcomes(buffer=2_000)

        def take_routed(item: RoutedEvent) -> None:
            if item.lost_before:
                self.queue({"type": "lost", "count": item.lost_before, "bus": bus.name})
            try:
                shown = self.pattern is None or self.pattern.matches(item.event)
            except Exception:
                shown = False
            if not shown:
                return
            self.sent[item.event_id] = None
            if len(self.sent) > 5_000:
                self.sent.popitem(last=False)
            self.queue(_event_message(item))

        async def read_routed() -> None:
            async for item in routed:
                take_routed(item)

        async def read_outcomes() -> None:
            async for outcome in outcomes:
                # Routed events come before their outcomes: take those already here first.
                for item in routed.ready():
                    take_routed(item)
                if outcome.event_id in self.sent:
                    self.queue(_outcome_message(outcome))

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_routed)
                tg.start_soon(read_outcomes)
        finally:
            routed.close()
            outcomes.close()


def _text(value: str) -> str:
    if len(value) <= MAX_TEXT:
        return value
    return value[:MAX_TEXT] + f"\n… ({len(value) - MAX_TEXT} more characters not shown)"


def _event_message(item: RoutedEvent) -> dict[str, Any]:
    event = item.event
    return {
        "type": "event",
        "bus": item.bus,
        "id": item.event_id,
        "time": str(event.get("time", "")),
        "source": str(event.get("source", "")),
        "detail_type": str(event.get("detail-type", "")),
        "rules": list(item.rules),
        "event": _text(pretty(event)),
        "inputs": [
            {
                "rule": i.rule,
                "target": i.target_id,
                "payload": _text(_pretty_payload(i.payload)) if i.payload is not None else None,
                "error": i.error,
            }
            for i in item.inputs
        ],
    }


def _pretty_payload(payload: str) -> str:
    try:
        return pretty(json.loads(payload))
    except ValueError:
        return payload


def _outcome_message(outcome: Outcome) -> dict[str, Any]:
    return {
        "type": "outcome",
        "bus": outcome.bus,
        "id": outcome.event_id,
        "rule": outcome.rule,
        "target": outcome.target_id,
        "kind": outcome.kind,
        "attempt": outcome.attempt,
        "error_code": outcome.error_code,
        "reason": outcome.reason,
        "delay": outcome.delay,
    }
