"""Loop protection for buses that target buses.

The delivery worker sets ``bus_chain`` to the buses an event has passed through (its own bus
last) while a target runs; a bus whose ``put_events`` sees its own name in the chain refuses to
route the event again. A context variable reaches through any target, a function that calls
``put_events`` itself included, and it is copied into tasks the target starts.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["bus_chain"]

bus_chain: ContextVar[tuple[str, ...]] = ContextVar("eventbus_bus_chain", default=())
