"""Archives and replay (CreateArchive ... CancelReplay, UpdateArchive), over an ``ArchiveService``.

Requests are checked against the botocore model, names and ARNs read, times converted, answers
shaped as AWS's. Keeping archived events and replaying them is each bus's job (in its state file
when durable, in memory otherwise); ``EventbusServer`` serves them through ``BusArchives``. An
``ArchivesApi`` given no service answers ``OperationDisabledException``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from eventbus.bus.logs.archives import Archive
from eventbus.server.awsjson import Handler
from eventbus.server.buses import bus_name
from eventbus.server.errors import ApiError
from eventbus.server.model import parse_timestamp, timestamp
from eventbus.server.paging import page
from eventbus.server.state import ServerState

__all__ = ["ArchiveInfo", "ArchiveService", "ArchivesApi", "ReplayInfo"]

UNAVAILABLE = "Archives and replay are not served by this server (it was given no ArchiveService)."


#: An archive as the API answers it: the library's own description (name, ARNs, state, pattern,
#: retention, counts), so a service over the buses hands its archives back unchanged.
ArchiveInfo = Archive


@dataclass(frozen=True, slots=True)
class ReplayInfo:
    name: str
    arn: str
    archive_arn: str
    state: str
    destination_arn: str
    filter_arns: tuple[str, ...]
    event_start: datetime
    event_end: datetime
    description: str | None = None
    state_reason: str | None = None
    last_replayed: datetime | None = None
    started: datetime | None = None
    ended: datetime | None = None
    #: Events replayed so far, and how many the window held when the replay started (if known).
    replayed: int = 0
    total: int | None = None


@runtime_checkable
class ArchiveService(Protocol):
    """What the runtime's durable state offers for archives and replay."""

    def create_archive(
        self, name: str, *, bus: str, event_pattern: str | None, retention_days: int, description: str | None
    ) -> ArchiveInfo: ...

    def describe_archive(self, name: str) -> ArchiveInfo: ...

    def update_archive(
        self, name: str, *, event_pattern: str | None, retention_days: int | None, description: str | None
    ) -> ArchiveInfo: ...

    def list_archives(self) -> Sequence[ArchiveInfo]: ...

    def delete_archive(self, name: str) -> None: ...

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
    ) -> ReplayInfo: ...

    def describe_replay(self, name: str) -> ReplayInfo: ...

    def list_replays(self) -> Sequence[ReplayInfo]: ...

    def cancel_replay(self, name: str) -> ReplayInfo: ...


class ArchivesApi:
    def __init__(self, state: ServerState, service: ArchiveService | None = None) -> None:
        self.state = state
        self.service = service

    def handlers(self) -> dict[str, Handler]:
        return {
            "CreateArchive": self.create_archive,
            "DescribeArchive": self.describe_archive,
            "ListArchives": self.list_archives,
            "UpdateArchive": self.update_archive,
            "DeleteArchive": self.delete_archive,
            "StartReplay": self.start_replay,
            "DescribeReplay": self.describe_replay,
            "ListReplays": self.list_replays,
            "CancelReplay": self.cancel_replay,
        }

    def _service(self) -> ArchiveService:
        if self.service is None:
            raise ApiError("OperationDisabledException", UNAVAILABLE)
        return self.service

    async def create_archive(self, params: dict[str, Any]) -> dict[str, Any]:
        service = self._service()
        bus = self.state.buses.get(params["EventSourceArn"])
        info = service.create_archive(
            params["ArchiveName"],
            bus=bus.name,
            event_pattern=params.get("EventPattern"),
            retention_days=params.get("RetentionDays", 0),
            description=params.get("Description"),
        )
        return _clean({"ArchiveArn": info.arn, "State": info.state, "StateReason": info.state_reason, "CreationTime": timestamp(info.created)})

    async def describe_archive(self, params: dict[str, Any]) -> dict[str, Any]:
        info = self._service().describe_archive(params["ArchiveName"])
        return _clean(
            {
                **_archive(info),
                "ArchiveArn": info.arn,
                "Description": info.description,
                "EventPattern": info.event_pattern,
            }
        )

    async def update_archive(self, params: dict[str, Any]) -> dict[str, Any]:
        info = self._service().update_archive(
            params["ArchiveName"],
            event_pattern=params.get("EventPattern"),
            retention_days=params.get("RetentionDays"),
            description=params.get("Description"),
        )
        return _clean({"ArchiveArn": info.arn, "State": info.state, "StateReason": info.state_reason, "CreationTime": timestamp(info.created)})

    async def list_archives(self, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("NamePrefix") or ""
        source = params.get("EventSourceArn")
        state = params.get("State")
        found = [
            a
            for a in self._service().list_archives()
            if a.name.startswith(prefix)
            and (source is None or bus_name(source) == a.bus)
            and (state is None or a.state == state)
        ]
        chunk, token = page(found, params, key=lambda a: a.name)
        return _clean({"Archives": [_archive(a) for a in chunk], "NextToken": token})

    async def delete_archive(self, params: dict[str, Any]) -> dict[str, Any]:
        self._service().delete_archive(params["ArchiveName"])
        return {}

    async def start_replay(self, params: dict[str, Any]) -> dict[str, Any]:
        service = self._service()
        destination = params["Destination"]
        bus = self.state.buses.get(destination["Arn"])
        start = parse_timestamp(params["EventStartTime"], "EventStartTime")
        end = parse_timestamp(params["EventEndTime"], "EventEndTime")
        if end <= start:
            raise ApiError("ValidationException", "Parameter EventEndTime is not valid. Reason: EventEndTime must be after EventStartTime.")
        archive = params["EventSourceArn"].rsplit(":archive/", 1)[-1]
        rules = [arn.rsplit("/", 1)[-1] for arn in destination.get("FilterArns", [])]
        info = await service.start_replay(
            params["ReplayName"],
            archive=archive,
            start=start,
            end=end,
            destination_bus=bus.name,
            rules=rules,
            description=params.get("Description"),
        )
        # A replay STARTING has not started yet: AWS answers the time of the request.
        started = info.started or datetime.now(UTC)
        return _clean({"ReplayArn": info.arn, "State": info.state, "StateReason": info.state_reason, "ReplayStartTime": timestamp(started)})

    async def describe_replay(self, params: dict[str, Any]) -> dict[str, Any]:
        info = self._service().describe_replay(params["ReplayName"])
        return _clean({**_replay(info), "ReplayArn": info.arn, "Description": info.description, "Destination": _destination(info)})

    async def list_replays(self, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("NamePrefix") or ""
        state = params.get("State")
        source = params.get("EventSourceArn")
        found = [
            r
            for r in self._service().list_replays()
            if r.name.startswith(prefix) and (state is None or r.state == state) and (source is None or r.archive_arn == source)
        ]
        chunk, token = page(found, params, key=lambda r: r.name)
        return _clean({"Replays": [_replay(r) for r in chunk], "NextToken": token})

    async def cancel_replay(self, params: dict[str, Any]) -> dict[str, Any]:
        info = self._service().cancel_replay(params["ReplayName"])
        return _clean({"ReplayArn": info.arn, "State": info.state, "StateReason": info.state_reason})


def _archive(info: ArchiveInfo) -> dict[str, Any]:
    return _clean(
        {
            "ArchiveName": info.name,
            "EventSourceArn": info.bus_arn,
            "State": info.state,
            "StateReason": info.state_reason,
            "RetentionDays": info.retention_days,
            "SizeBytes": info.size_bytes,
            "EventCount": info.event_count,
            "CreationTime": timestamp(info.created),
        }
    )


def _replay(info: ReplayInfo) -> dict[str, Any]:
    return _clean(
        {
            "ReplayName": info.name,
            "EventSourceArn": info.archive_arn,
            "State": info.state,
            "StateReason": info.state_reason,
            "EventStartTime": timestamp(info.event_start),
            "EventEndTime": timestamp(info.event_end),
            "EventLastReplayedTime": timestamp(info.last_replayed),
            "ReplayStartTime": timestamp(info.started),
            "ReplayEndTime": timestamp(info.ended),
        }
    )


def _destination(info: ReplayInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"Arn": info.destination_arn}
    if info.filter_arns:
        out["FilterArns"] = list(info.filter_arns)
    return out


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}
