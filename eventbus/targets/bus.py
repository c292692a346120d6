"""The bus target: deliver events to another event bus.

The target only needs something with a ``name`` and an async ``put_events``: the
``PutEventsSink`` protocol. A target configured with a name finds its bus at delivery time:

- a bus whose events travel through a shared backend (NATS JetStream) sets ``bus_resolver`` in
  its delivery workers, and the name resolves to that backend's stream for the named bus,
  whichever process routes it (nothing process-local in the way);
- otherwise running buses register themselves by name in a ``BusRegistry`` (the process-wide
  ``default_registry`` unless given their own), whenever the bus was created.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import Field

from eventbus.errors import ConfigError, NonRetryableError, ResourceNotFoundError, RetryableError
from eventbus.targets.base import DeliveryContext, TargetConfig

__all__ = [
    "BusRegistry",
    "BusTarget",
    "BusTargetConfig",
    "PutEventsSink",
    "default_registry",
    "bus_resolver",
    "event_to_entry",
    "lookup_bus",
    "register_bus",
    "unregister_bus",
]

#: PutEvents error codes worth another attempt; any other code fails for good.
RETRYABLE_CODES = frozenset({"ThrottlingException", "InternalFailure"})


@runtime_checkable
class PutEventsSink(Protocol):
    """What a bus target delivers to: an event bus, or anything shaped like one."""

    name: str

    async def put_events(self, entries: list[dict[str, Any]]) -> dict[str, Any]: ...


class BusRegistry:
    """Running buses by name: where a bus target finds the bus it delivers to.

    A bus registers itself while it runs (``EventBus(registry=...)``, the process-wide
    ``default_registry`` unless given one); a ``BusTarget`` looks its bus up by name at delivery
    time, so the bus may start after the target is made. Separate registries keep separate sets
    of buses apart in one process (two servers, two test cases), each with its own ``default``.
    """

    def __init__(self) -> None:
        self._buses: dict[str, PutEventsSink] = {}

    def __repr__(self) -> str:
        return f"BusRegistry({sorted(self._buses)})"

    def register(self, sink: PutEventsSink) -> None:
        """Make ``sink`` reachable by its name; a different sink already under that name is an
        error, unless that one stopped taking events (``running`` false: a bus a reload
        replaces, still delivering what it accepted)."""
        existing = self._buses.get(sink.name)
        if existing is not None and existing is not sink and getattr(existing, "running", True):
            raise ConfigError(f"An event bus named {sink.name!r} is already registered in this process")
        self._buses[sink.name] = sink

    def unregister(self, sink: PutEventsSink) -> None:
        """Forget ``sink`` (only if it is the one registered under its name)."""
        if self._buses.get(sink.name) is sink:
            del self._buses[sink.name]

    def lookup(self, name: str) -> PutEventsSink | None:
        return self._buses.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._buses

    def names(self) -> list[str]:
        return sorted(self._buses)


#: The registry buses join unless given their own.
default_registry = BusRegistry()

#: Set by a bus on a shared backend in its delivery workers: the sink of a bus by name, through
#: that backend (``None`` when the name cannot be served). Takes precedence over the registry.
bus_resolver: ContextVar[Callable[[str], Awaitable[PutEventsSink | None]] | None] = ContextVar(
    "eventbus_bus_resolver", default=None
)


def register_bus(sink: PutEventsSink) -> None:
    """``default_registry.register(sink)``."""
    default_registry.register(sink)


def unregister_bus(sink: PutEventsSink) -> None:
    """``default_registry.unregister(sink)``."""
    default_registry.unregister(sink)


def lookup_bus(name: str) -> PutEventsSink | None:
    """``default_registry.lookup(name)``."""
    return default_registry.lookup(name)


def event_to_entry(payload: str) -> dict[str, Any]:
    """A delivered event (JSON text) as a PutEvents entry; anything else is ``NonRetryableError``."""
    try:
        event = json.loads(payload)
    except ValueError:
        raise NonRetryableError("A bus target needs a full event as its input; the payload is not JSON") from None
    if not isinstance(event, dict):
        raise NonRetryableError(
            f"A bus target needs a full event as its input; the payload is a JSON {type(event).__name__}"
        )
    missing = [key for key in ("source", "detail-type", "detail") if key not in event]
    if missing:
        raise NonRetryableError(
            "A bus target needs a full event as its input (source, detail-type, detail); "
            f"the payload has no {', '.join(missing)}. An input transformer must not reshape events sent to a bus."
        )
    detail = event["detail"]
    entry: dict[str, Any] = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": detail if isinstance(detail, str) else json.dumps(detail, separators=(",", ":"), ensure_ascii=False),
    }
    if event.get("resources"):
        entry["Resources"] = list(event["resources"])
    if event.get("time"):
        entry["Time"] = event["time"]
    return entry


class BusTarget:
    """Puts each delivered event on ``bus`` (a sink, or the name of a registered one)."""

    #: PutEvents takes at most 10 entries a call.
    max_batch_size: int = 10

    def __init__(self, bus: PutEventsSink | str, *, registry: BusRegistry | None = None) -> None:
        self._sink = None if isinstance(bus, str) else bus
        self.bus_name = bus if isinstance(bus, str) else bus.name
        self.registry = registry if registry is not None else default_registry

    def __repr__(self) -> str:
        return f"BusTarget({self.bus_name!r})"

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> dict[str, Any]:
        sink = self._sink
        if sink is None:
            resolve = bus_resolver.get()
            sink = await resolve(self.bus_name) if resolve is not None else self.registry.lookup(self.bus_name)
        if sink is None:
            raise ResourceNotFoundError(f"Event bus {self.bus_name} does not exist.")
        entries = [event_to_entry(p) for p in payloads]
        for entry in entries:
            entry["EventBusName"] = sink.name
        response = await sink.put_events(entries)
        failed = [e for e in response.get("Entries", []) if e.get("ErrorCode")]
        if failed:
            codes = sorted({str(e["ErrorCode"]) for e in failed})
            first = failed[0]
            message = (
                f"{len(failed)} of {len(entries)} entries failed on bus {sink.name}: "
                f"{first['ErrorCode']}: {first.get('ErrorMessage', '')}".rstrip(": ")
            )
            if any(code in RETRYABLE_CODES for code in codes):
                raise RetryableError(message, error_code="THROTTLING" if "ThrottlingException" in codes else None)
            raise NonRetryableError(message)
        return response

    async def aclose(self) -> None:
        return None


class BusTargetConfig(TargetConfig):
    """``bus``: the name of the event bus to deliver to."""

    kind: ClassVar[str] = "bus"

    bus: str = Field(min_length=1, max_length=256)

    def build(self) -> BusTarget:
        return BusTarget(self.bus)
