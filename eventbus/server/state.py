"""``ServerState``: everything the API operations work on, in one place.

The runtime's buses and pipes (read-only where the config declares them), the buses, rules,
targets, connections, API destinations and pipes the API created, the map from ARNs to
targets, and the ``ResourceStore`` that keeps what the API created across restarts.

A durable runtime (SQLite, what ``eventbus serve`` runs unless a file says ``runtime.backend:
memory``) makes a durable server: the buses the API creates keep their events in the same state
file as the config's, and the ``ResourceStore`` is that file too (``SqliteResourceStore``), so a
restart finds every bus, rule, target, connection, API destination and pipe the API made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from eventbus import BusConfig
from eventbus.bus.clock import Clock
from eventbus.bus.logs.protocol import EventLog
from eventbus.config import Runtime
from eventbus.config.arns import resolver_for
from eventbus.config.backends import BackendSpec, SqliteBackend
from eventbus.config.server import ServerSettings
from eventbus.server.buses import ServedBuses
from eventbus.server.destinations import ConnectionRecord, DestinationRecord
from eventbus.server.errors import ApiError
from eventbus.server.store import MemoryStore, ResourceStore
from eventbus.targets.base import Target, TargetConfig

__all__ = ["ServerState"]

Instrument = Callable[[str, Target], Target]


class ServerState:
    def __init__(
        self,
        runtime: Runtime,
        settings: ServerSettings | None = None,
        store: ResourceStore | None = None,
        instrument: Instrument | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = settings or _settings_of(runtime)
        self.instrument = instrument
        #: Times what the server times itself (API destinations' rate limits); ``None``: the
        #: monotonic clock. Tests set a ``ManualClock`` before they create destinations.
        self.clock: Clock | None = None
        #: Where the API's buses keep their state (the runtime's backend, as the first file's
        #: buses), and the state file when that is SQLite (``None``: in memory).
        self.backend, self._config_file = _api_backend(runtime)
        self.state_file: Path | None = (
            self.backend.state_path(self._config_file) if isinstance(self.backend, SqliteBackend) else None
        )
        if store is None:
            if self.state_file is not None:
                from eventbus.bus.logs.sqlite.resources import SqliteResourceStore

                store = SqliteResourceStore(self.state_file)
            else:
                store = MemoryStore()
        self.store: ResourceStore = store
        defaults = _bus_defaults(runtime)
        self.region, self.account = defaults.region, defaults.account
        self.buses = ServedBuses(defaults, log=self._bus_log)
        #: (bus, rule) -> the config file that declares it: read-only through the API.
        self.config_rules: dict[tuple[str, str], str] = {}
        self.config_pipes: dict[str, str] = {}
        for loaded in runtime.configs:
            model = loaded.model
            for bus_name, spec in model.buses.items():
                for rule_name in spec.rules:
                    self.config_rules[(bus_name, rule_name)] = loaded.file
            for pipe_name in model.pipes:
                self.config_pipes[pipe_name] = loaded.file
        for name, bus in runtime.buses.items():
            self.buses.add_config_bus(bus, _file_of(runtime, name))
        #: (bus, rule, target id) -> the Target document PutTargets was given.
        self.target_docs: dict[tuple[str, str, str], dict[str, Any]] = {}
        #: (bus, rule) -> the PutRule request that made an API rule (its EventPattern as sent).
        self.rule_docs: dict[tuple[str, str], dict[str, Any]] = {}
        #: ARN -> the tags on that bus or rule.
        self.tags: dict[str, dict[str, str]] = {}
        self.connections: dict[str, ConnectionRecord] = {}
        self.destinations: dict[str, DestinationRecord] = {}
        self.resolver = resolver_for(
            runtime.configs, destination=self._destination_target, bus_exists=lambda name: name in self.buses
        )
        self.queues = self.resolver.queues

    @property
    def durable(self) -> bool:
        """Whether what the API creates, and the events its buses accept, outlive the process."""
        return bool(getattr(self.store, "durable", False)) and self.backend.durable

    def _bus_log(self, name: str) -> EventLog | None:
        if not self.backend.durable:
            return None
        return self.backend.event_log(name, self.buses.defaults, config_file=self._config_file)

    def _destination_target(self, name: str, parameters: Mapping[str, Any]) -> TargetConfig | None:
        record = self.destinations.get(name)
        if record is None:
            return None
        connection = next((c for c in self.connections.values() if c.arn == record.connection_arn), None)
        if connection is None:
            raise ApiError(
                "ResourceNotFoundException",
                f"Connection {record.connection_arn} of API destination {name} does not exist.",
            )
        return record.target_config(connection.connection, parameters)

    def check_api_rule(self, bus: str, rule: str) -> None:
        """Refuse to change a rule the config declares."""
        file = self.config_rules.get((bus, rule))
        if file is not None and bus in self.runtime.buses:
            raise ApiError(
                "ManagedRuleException",
                f"Rule {rule} on event bus {bus} is declared in {file} and cannot be changed through "
                "the API; edit the file instead.",
            )

    def build(self, address: str, config: TargetConfig) -> Target:
        target = config.build()
        return self.instrument(address, target) if self.instrument is not None else target


def _api_backend(runtime: Runtime) -> tuple[BackendSpec, str | None]:
    """The backend of the buses the API creates: the runtime's, as the first file's buses use."""
    if not runtime.configs:
        return runtime.backend or runtime.default_backend, None
    first = runtime.configs[0]
    return runtime.backend_of(first), first.file


def _bus_defaults(runtime: Runtime) -> BusConfig:
    for loaded in runtime.configs:
        return BusConfig.model_validate(loaded.model.defaults.bus.model_dump())
    return BusConfig()


def _settings_of(runtime: Runtime) -> ServerSettings:
    for loaded in runtime.configs:
        if "server" in loaded.model.model_fields_set:
            settings: ServerSettings = loaded.model.server
            return settings
    return ServerSettings()


def _file_of(runtime: Runtime, bus: str) -> str:
    for loaded in runtime.configs:
        if bus in loaded.model.buses:
            return loaded.file
    return "the config"
