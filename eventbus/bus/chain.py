"""Loop protection for buses that target buses.

While a ``BusTarget`` delivers, the delivery worker sets ``bus_chain`` to the buses the events
have passed through (its own bus last); the receiving bus stores that chain with each event it
accepts, and a bus whose ``put_events`` finds its own name in the chain does not route the event
again. Only deliveries to buses set it: a function target that publishes a new event to its own
bus is ordinary application flow, not a loop.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["bus_chain", "delivering_for"]

bus_chain: ContextVar[tuple[str, ...]] = ContextVar("eventbus_bus_chain", default=())

#: The bus whose delivery worker runs the current code (set once per worker task). A target that
#: publishes to the bus delivering to it must not wait for room in that bus: the room it waits
#: for is held by the very event it is handling. ``put_events`` throttles instead.
delivering_for: ContextVar[str | None] = ContextVar("eventbus_delivering_for", default=None)
