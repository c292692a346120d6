"""Where the buses of a config keep their state: the ``runtime.backend`` section.

Each backend is a model with a ``type`` and its options, and makes the ``EventLog`` each bus of
the config runs on (``event_log``). A backend that survives the process (``durable``) also keeps
pipes' places, archives and replays, and lets ``eventbus run`` hand a reload over through it.

A config that names no backend leaves the choice to whoever runs it: ``eventbus run`` keeps its
state in SQLite beside the config (``.eventbus/<config name>.db``), ``eventbus put`` and
``eventbus test`` in memory. Another backend is one more model in ``BACKENDS`` (its ``type``
names it) with the same two members.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from eventbus.bus.logs.jetstream.settings import JetStreamSettings

if TYPE_CHECKING:
    from eventbus.bus.config import BusConfig
    from eventbus.bus.logs.jetstream.connection import JetStreamConnection
    from eventbus.bus.logs.places import Places
    from eventbus.bus.logs.protocol import EventLog
    from eventbus.maps.config import MapConfig
    from eventbus.pipes.sources.base import Source

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendSpec",
    "JetStreamBackend",
    "MemoryBackend",
    "SqliteBackend",
    "default_state_path",
]

#: The folder beside a config file that holds its default state file.
STATE_DIR = ".eventbus"


def default_state_path(config_file: str | Path) -> Path:
    """Where ``eventbus run`` keeps a config's state unless told: ``.eventbus/<name>.db`` beside it."""
    path = Path(config_file)
    return path.parent / STATE_DIR / f"{path.stem}.db"


class BackendSpec(BaseModel):
    """What every ``runtime.backend`` type provides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Whether what the buses accepted survives the process (a reload then hands over through it).
    durable: ClassVar[bool] = False
    #: Whether buses on it may have archives (``buses.NAME.archives``).
    keeps_archives: ClassVar[bool] = True

    def event_log(self, bus: str, config: BusConfig, *, config_file: str | Path | None = None) -> EventLog:
        """The log bus ``bus`` (with settings ``config``) of the config in ``config_file`` runs on."""
        raise NotImplementedError

    def places(self, pipe: str, *, config_file: str | Path | None = None) -> Places | None:
        """Where pipe ``pipe`` keeps its source's place, or ``None`` when nothing survives the
        process (a pipe restarted within it still resumes: it keeps its source object)."""
        return None

    def share(self, pipe: str) -> Callable[[Source], Source] | None:
        """How pipe ``pipe``'s source is shared by the processes running the same config
        (``None``: each process reads its own)."""
        return None

    def spread(self, map_name: str) -> Callable[[MapConfig], Any] | None:
        """How map ``map_name`` is run by the processes running the same config (``None``: each
        process runs it whole, a ``Map``)."""
        return None

    def location(self, config_file: str | Path | None = None) -> str:
        """Where the buses of the config in ``config_file`` keep what they hold, for messages."""
        return "memory"


class MemoryBackend(BackendSpec):
    """Events live in memory: fast, and gone with the process (a shutdown drains them first, for
    up to each bus's `drain_timeout`). For tests and demos."""

    type: Literal["memory"] = "memory"

    def event_log(self, bus: str, config: BusConfig, *, config_file: str | Path | None = None) -> EventLog:
        from eventbus.bus.logs.memory import InMemoryEventLog

        return InMemoryEventLog(config.log_capacity)


class SqliteBackend(BackendSpec):
    """Events, deliveries, retries, schedules, pipes' places, archives and replays in one SQLite
    file (WAL): PutEvents answers once the events are committed, and a restart resumes exactly
    the deliveries that had not ended. Several buses may share the file."""

    durable: ClassVar[bool] = True

    type: Literal["sqlite"] = "sqlite"
    #: The database file, relative to the config file's folder; default `.eventbus/<config name>.db`.
    path: str | None = None
    #: `NORMAL` survives a killed process; `FULL` survives a power loss too, at a cost per commit.
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"

    def state_path(self, config_file: str | Path | None) -> Path:
        """The database file for the config in ``config_file``."""
        if self.path is not None:
            path = Path(self.path).expanduser()
            if not path.is_absolute() and config_file is not None:
                path = Path(config_file).parent / path
            return path
        if config_file is None:
            return Path(STATE_DIR) / "eventbus.db"
        return default_state_path(config_file)

    def event_log(self, bus: str, config: BusConfig, *, config_file: str | Path | None = None) -> EventLog:
        from eventbus.bus.logs.sqlite import SqliteEventLog

        return SqliteEventLog(
            self.state_path(config_file), synchronous=self.synchronous, capacity=config.log_capacity
        )

    def places(self, pipe: str, *, config_file: str | Path | None = None) -> Places | None:
        from eventbus.bus.logs.sqlite.places import SqlitePlaces

        return SqlitePlaces(self.state_path(config_file), f"pipe:{pipe}", synchronous=self.synchronous)

    def location(self, config_file: str | Path | None = None) -> str:
        return str(self.state_path(config_file))


class JetStreamBackend(BackendSpec, JetStreamSettings):
    """Events, deliveries, retries, rules put at run time and schedules' claims on NATS
    JetStream: every process running the config (`eventbus run`) is a worker of one shared
    bus, on one machine or many, and a worker killed loses nothing (its work goes to another
    after `ack_wait`). Archives are streams, their descriptions and replays shared by every
    worker through a key-value bucket. Pipes' sources and maps' files are read by one elected
    worker and their records (rows) processed by all. See docs/scaling.md."""

    durable: ClassVar[bool] = True

    type: Literal["jetstream"] = "jetstream"

    _connection: JetStreamConnection | None = PrivateAttr(default=None)

    def connection(self) -> JetStreamConnection:
        """The NATS connection every bus and pipe of a runtime on this backend shares."""
        from eventbus.bus.logs.jetstream.connection import JetStreamConnection

        if self._connection is None:
            self._connection = JetStreamConnection(self)
        return self._connection

    def event_log(self, bus: str, config: BusConfig, *, config_file: str | Path | None = None) -> EventLog:
        from eventbus.bus.logs.jetstream import JetStreamEventLog

        return JetStreamEventLog(connection=self.connection())

    def share(self, pipe: str) -> Callable[[Source], Source] | None:
        from eventbus.pipes.sources.relay import RelayedSource

        connection = self.connection()
        return lambda source: RelayedSource(source, connection=connection, pipe=pipe)

    def spread(self, map_name: str) -> Callable[[MapConfig], Any] | None:
        from eventbus.maps.jetstream import SharedMap

        connection = self.connection()
        return lambda config: SharedMap(config, name=map_name, connection=connection)

    def location(self, config_file: str | Path | None = None) -> str:
        return f"JetStream ({self.describe_servers()}, prefix {self.stream})"


#: Every backend type, for the schema (a new backend is one more model here).
BACKENDS: tuple[type[BackendSpec], ...] = (MemoryBackend, SqliteBackend, JetStreamBackend)

#: ``runtime.backend``: one of ``BACKENDS``, chosen by ``type`` (a bare name is that type's defaults).
Backend = Annotated[MemoryBackend | SqliteBackend | JetStreamBackend, Field(discriminator="type")]


def backend_by_name(value: Any) -> Any:
    """``backend: sqlite`` is ``backend: {type: sqlite}``."""
    return {"type": value} if isinstance(value, str) else value
