"""The buses the server answers for: the config's, and those CreateEventBus made.

A bus must be entered and left by one task, so each bus the API creates runs in a task of its
own in the server's task group, from CreateEventBus until DeleteEventBus (or shutdown), which
stops it taking events and lets it drain what it accepted before it ends. A server always has
a ``default`` bus, as every AWS account does: the config's, or one of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import anyio
from anyio.abc import TaskGroup

from eventbus import BusConfig, EventBus
from eventbus.bus.logs.protocol import EventLog
from eventbus.server.errors import ApiError

__all__ = ["BusEntry", "ServedBuses"]

Owner = Literal["config", "api", "server"]

_BUS_ARN = ":event-bus/"


@dataclass(slots=True)
class BusEntry:
    bus: EventBus
    owner: Owner
    description: str | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: The config file that declares it (config buses).
    file: str | None = None
    stop: anyio.Event | None = None
    ended: anyio.Event | None = None


class ServedBuses:
    """Name -> bus, for every bus the API can see; hosts the ones it creates (the library's
    ``BusRegistry`` is where they are found by name for bus targets)."""

    def __init__(self, defaults: BusConfig, log: Callable[[str], EventLog | None] | None = None) -> None:
        self.defaults = defaults
        #: The log each bus the API creates runs on, by name (``None``: in memory): a durable
        #: server's buses keep their events in its state file, as the config's do.
        self._log = log
        self._entries: dict[str, BusEntry] = {}
        self._tg: TaskGroup | None = None
        #: Called with each bus the API starts, once it runs (the metrics follow its outcomes).
        self.on_started: Callable[[EventBus], None] | None = None

    def add_config_bus(self, bus: EventBus, file: str) -> None:
        self._entries[bus.name] = BusEntry(bus, "config", file=file)

    def bind(self, tg: TaskGroup | None) -> None:
        """The task group API-created buses run in (``None`` once it stops)."""
        self._tg = tg

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def entries(self) -> list[BusEntry]:
        return list(self._entries.values())

    def entry(self, name_or_arn: str | None) -> BusEntry:
        """The bus a request names (a name or an event bus ARN; none: ``default``)."""
        name = bus_name(name_or_arn)
        found = self._entries.get(name)
        if found is None:
            raise ApiError("ResourceNotFoundException", f"Event bus {name} does not exist.")
        return found

    def get(self, name_or_arn: str | None) -> EventBus:
        return self.entry(name_or_arn).bus

    async def create(self, name: str, description: str | None = None, *, owner: Owner = "api") -> BusEntry:
        if name in self._entries:
            raise ApiError("ResourceAlreadyExistsException", f"Event bus {name} already exists.")
        if self._tg is None:
            raise ApiError("InternalException", "The server is not running.", 500)
        EventBus(name, config=self.defaults)  # the library judges the name before a log is opened
        bus = EventBus(name, config=self.defaults, log=self._log(name) if self._log is not None else None)
        entry = BusEntry(bus, owner, description, stop=anyio.Event(), ended=anyio.Event())
        started = anyio.Event()
        failure: list[BaseException] = []

        async def host() -> None:
            assert entry.stop is not None and entry.ended is not None
            try:
                async with bus:
                    started.set()
                    await entry.stop.wait()
                    bus.stop_taking()
            except Exception as exc:
                failure.append(exc)
            finally:
                started.set()
                entry.ended.set()

        self._tg.start_soon(host)
        await started.wait()
        if failure:
            raise failure[0]
        self._entries[name] = entry
        if self.on_started is not None:
            self.on_started(bus)
        return entry

    async def delete(self, name: str) -> BusEntry | None:
        """Stop an API-created bus (it drains what it accepted in the background)."""
        entry = self._entries.get(name)
        if entry is None:
            return None
        if name == "default":
            raise ApiError("ValidationException", "Cannot delete event bus default.")
        if entry.owner == "config":
            raise ApiError(
                "ValidationException",
                f"Event bus {name} is declared in {entry.file} and cannot be deleted through the API; "
                "remove it from the file instead.",
            )
        del self._entries[name]
        if entry.stop is not None:
            entry.stop.set()
        if self._log is not None and entry.ended is not None:
            # A durable bus keeps what it had not delivered in the state file: it lets go of the
            # file at once, so that the name can be made again (its lock is free).
            entry.bus.config = entry.bus.config.model_copy(update={"drain_timeout": 0.0})
            await entry.ended.wait()
        return entry

    async def stop_all(self) -> None:
        """Stop every API-created bus and wait for their drains."""
        for entry in self._entries.values():
            if entry.stop is not None:
                entry.stop.set()
        for entry in self._entries.values():
            if entry.ended is not None:
                await entry.ended.wait()


def bus_name(name_or_arn: str | None) -> str:
    if not name_or_arn:
        return "default"
    if name_or_arn.startswith("arn:") and _BUS_ARN in name_or_arn:
        return name_or_arn.rsplit(_BUS_ARN, 1)[1]
    return name_or_arn
