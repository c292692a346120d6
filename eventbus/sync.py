"""``SyncEventBus``: the bus for applications without an event loop.

It runs an ``EventBus`` on a private event loop in a background thread (anyio's blocking portal)
and forwards each call there, so rule changes and ``put_events`` run on the loop thread and need
no locks. ``close()`` (or leaving ``with``) drains the bus as ``async with`` does, then stops the
thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Literal, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from eventbus.bus import EventBus
from eventbus.bus.rules import Rule, RuleState, RuleTarget
from eventbus.envelope import Event, PutEventsEntry
from eventbus.errors import BusClosedError

__all__ = ["SyncEventBus"]

F = TypeVar("F", bound=Callable[..., Any])


class SyncEventBus:
    """``with SyncEventBus(name="default") as bus: bus.put_events([...])``.

    Takes the same arguments as ``EventBus`` (or an ``EventBus`` not started yet as ``bus=``);
    ``backend`` picks the loop (``"asyncio"`` or ``"trio"``). The bus starts at construction.
    """

    def __init__(
        self,
        name: str = "default",
        *,
        bus: EventBus | None = None,
        backend: Literal["asyncio", "trio"] = "asyncio",
        **kwargs: Any,
    ) -> None:
        self.bus = bus if bus is not None else EventBus(name, **kwargs)
        self._lock = threading.Lock()
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = start_blocking_portal(backend)
        self._portal: BlockingPortal | None = self._portal_cm.__enter__()
        try:
            self._bus_cm: AbstractContextManager[EventBus] | None = self._portal.wrap_async_context_manager(
                self.bus
            )
            self._bus_cm.__enter__()
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise

    def __repr__(self) -> str:
        return f"SyncEventBus({self.bus!r})"

    def __enter__(self) -> SyncEventBus:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Drain (up to the bus's ``drain_timeout``) and stop the loop thread. Idempotent."""
        with self._lock:
            bus_cm, portal_cm = self._bus_cm, self._portal_cm
            self._bus_cm = self._portal_cm = self._portal = None
        if bus_cm is not None:
            try:
                bus_cm.__exit__(None, None, None)
            finally:
                if portal_cm is not None:
                    portal_cm.__exit__(None, None, None)

    def _require(self) -> BlockingPortal:
        portal = self._portal
        if portal is None:
            raise BusClosedError(f"SyncEventBus {self.bus.name} is closed")
        return portal

    def put_events(self, entries: Sequence[Mapping[str, Any] | PutEventsEntry | Event]) -> dict[str, Any]:
        return self._require().call(self.bus.put_events, entries)

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._require().call(self.bus.wait_idle, timeout)

    def put_rule(
        self,
        name: str,
        event_pattern: Mapping[str, Any] | str | None = None,
        *,
        schedule_expression: str | None = None,
        state: RuleState = "ENABLED",
        description: str | None = None,
    ) -> str:
        def call() -> str:
            return self.bus.put_rule(
                name,
                event_pattern,
                schedule_expression=schedule_expression,
                state=state,
                description=description,
            )

        return self._require().call(call)

    def delete_rule(self, name: str, *, force: bool = False) -> None:
        def call() -> None:
            self.bus.delete_rule(name, force=force)

        self._require().call(call)

    def describe_rule(self, name: str) -> Rule:
        return self._require().call(self.bus.describe_rule, name)

    def list_rules(self, name_prefix: str | None = None) -> list[Rule]:
        return self._require().call(self.bus.list_rules, name_prefix)

    def enable_rule(self, name: str) -> None:
        self._require().call(self.bus.enable_rule, name)

    def disable_rule(self, name: str) -> None:
        self._require().call(self.bus.disable_rule, name)

    def put_targets(self, rule: str, targets: Sequence[RuleTarget | Mapping[str, Any]]) -> dict[str, Any]:
        return self._require().call(self.bus.put_targets, rule, targets)

    def remove_targets(self, rule: str, ids: Iterable[str]) -> dict[str, Any]:
        return self._require().call(self.bus.remove_targets, rule, list(ids))

    def metrics(self) -> dict[str, Any]:
        return self._require().call(self.bus.metrics)

    def rule(self, event_pattern: Mapping[str, Any] | str | None = None, **kwargs: Any) -> Callable[[F], F]:
        """``@bus.rule(pattern, ...)`` as on ``EventBus``; the function runs on the bus's loop
        (sync functions in a worker thread of it)."""
        register = self.bus.rule(event_pattern, **kwargs)

        def decorate(func: F) -> F:
            return self._require().call(register, func)

        return decorate
