"""``BusArchives``: the server's ``ArchiveService`` over the archives of the buses it serves.

Each bus keeps its archives and runs its replays (``eventbus.bus.archives``): in its state file
when its log is durable, in memory otherwise. This only finds the bus an archive or replay
belongs to, through the library's ``Archives``, and hands back what the wire layer shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from eventbus.bus.archives import Archives
from eventbus.bus.logs.archives import Replay
from eventbus.server.archives_api import ArchiveInfo, ReplayInfo
from eventbus.server.state import ServerState

__all__ = ["BusArchives"]


class BusArchives:
    def __init__(self, state: ServerState) -> None:
        # Every bus the server serves, the config's and the API's, while it runs.
        self._archives = Archives(lambda: [e.bus for e in state.buses.entries() if e.bus.running])

    def create_archive(
        self, name: str, *, bus: str, event_pattern: str | None, retention_days: int, description: str | None
    ) -> ArchiveInfo:
        return self._archives.create_archive(
            name, bus=bus, event_pattern=event_pattern, retention_days=retention_days, description=description
        )

    def describe_archive(self, name: str) -> ArchiveInfo:
        return self._archives.describe_archive(name)

    def update_archive(
        self, name: str, *, event_pattern: str | None, retention_days: int | None, description: str | None
    ) -> ArchiveInfo:
        return self._archives.update_archive(
            name, event_pattern=event_pattern, retention_days=retention_days, description=description
        )

    def list_archives(self) -> Sequence[ArchiveInfo]:
        return self._archives.list_archives()

    def delete_archive(self, name: str) -> None:
        self._archives.delete_archive(name)

    async def start_replay(
        self,
        name: str,
        *,
        archive: str,
        start: datetime,
        end: datetime,
        destination_bus: str,
        rules: Sequence[str],
        description: str | None,
    ) -> ReplayInfo:
        return _replay(
            await self._archives.start_replay(
                name,
                archive=archive,
                start=start,
                end=end,
                destination_bus=destination_bus,
                rules=rules,
                description=description,
            )
        )

    def describe_replay(self, name: str) -> ReplayInfo:
        return _replay(self._archives.describe_replay(name))

    def list_replays(self) -> Sequence[ReplayInfo]:
        return [_replay(r) for r in self._archives.list_replays()]

    def cancel_replay(self, name: str) -> ReplayInfo:
        return _replay(self._archives.cancel_replay(name))


def _replay(r: Replay) -> ReplayInfo:
    return ReplayInfo(
        name=r.name,
        arn=r.arn,
        archive_arn=r.archive_arn,
        state=r.state,
        destination_arn=r.destination_arn,
        filter_arns=r.filter_arns,
        event_start=r.event_start,
        event_end=r.event_end,
        description=r.description,
        state_reason=r.state_reason,
        last_replayed=r.last_replayed,
        started=r.started,
        ended=r.ended,
        replayed=r.replayed,
        total=r.total,
    )
