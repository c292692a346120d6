"""``eventbus serve``: the EventBridge and Pipes APIs over HTTP, CloudEvents, health and metrics.

``create_app(runtime)`` is the ASGI app (Starlette); ``EventbusServer`` holds its parts for code
that wants them (the state, the metrics, ``running()`` to start it without an ASGI lifespan).
The modules follow a request inward: ``app`` (routes, body limit, lifespan) -> ``auth`` ->
``awsjson`` and ``pipes_api`` (the wire protocols, checked against botocore's ``model``) ->
``events_api``, ``destinations_api``, ``archives_api`` (the operations; ``archives_service``: the
buses' own archives behind them) -> ``state``, ``buses``,
``store`` (what they work on; ARNs become targets through ``eventbus.targets.arns``);
``cloudevents`` and ``metrics`` beside them.
"""

from __future__ import annotations

from eventbus.config.server import AccessKey, ServerSettings
from eventbus.server.app import EventbusServer, create_app
from eventbus.server.archives_api import ArchiveInfo, ArchiveService, ReplayInfo
from eventbus.server.archives_service import BusArchives
from eventbus.server.errors import ApiError
from eventbus.server.metrics import ServerMetrics
from eventbus.server.store import MemoryStore, ResourceStore

__all__ = [
    "AccessKey",
    "ApiError",
    "ArchiveInfo",
    "ArchiveService",
    "BusArchives",
    "EventbusServer",
    "MemoryStore",
    "ReplayInfo",
    "ResourceStore",
    "ServerMetrics",
    "ServerSettings",
    "create_app",
]
