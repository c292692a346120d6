"""The connection and API destination operations (Create, Describe, List, Update, Delete of each).

An update takes effect at once: the rule targets and pipes that name the destination (or a
destination over the connection) are built again with the new endpoint, method, credentials or
rate, through ``on_change`` (the server's ``EventsApi.rebuild_targets`` and
``PipesApi.rebuild_using``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from typing import Any

from eventbus.server.awsjson import Handler
from eventbus.server.destinations import ConnectionRecord, DestinationRecord, connection_from_request, new_arn
from eventbus.server.errors import ApiError
from eventbus.server.paging import page
from eventbus.server.state import ServerState
from eventbus.targets.http import HttpTargetConfig

__all__ = ["DestinationsApi"]

_NAME = re.compile(r"[\.\-_A-Za-z0-9]{1,64}")
#: Where each AuthorizationType's parameters are, in AuthParameters.
_AUTH_KEYS = {
    "BASIC": "BasicAuthParameters",
    "API_KEY": "ApiKeyAuthParameters",
    "OAUTH_CLIENT_CREDENTIALS": "OAuthParameters",
}


class DestinationsApi:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        #: Called with the ARNs of API destinations that changed: their targets are built again.
        self.on_change: Callable[[Collection[str]], Awaitable[None]] | None = None

    async def _changed(self, arns: Collection[str]) -> None:
        if self.on_change is not None and arns:
            await self.on_change(arns)

    def handlers(self) -> dict[str, Handler]:
        return {
            "CreateConnection": self.create_connection,
            "DescribeConnection": self.describe_connection,
            "ListConnections": self.list_connections,
            "DeleteConnection": self.delete_connection,
            "UpdateConnection": self.update_connection,
            "CreateApiDestination": self.create_api_destination,
            "DescribeApiDestination": self.describe_api_destination,
            "ListApiDestinations": self.list_api_destinations,
            "DeleteApiDestination": self.delete_api_destination,
            "UpdateApiDestination": self.update_api_destination,
        }

    # -- connections -------------------------------------------------------------------------

    async def create_connection(self, params: dict[str, Any]) -> dict[str, Any]:
        name = _name(params["Name"])
        if name in self.state.connections:
            raise ApiError("ResourceAlreadyExistsException", f"Connection {name} already exists.")
        connection = connection_from_request(params)
        record = ConnectionRecord(
            name,
            new_arn(self.state.region, self.state.account, "connection", name),
            connection,
            request=dict(params),
            description=params.get("Description"),
        )
        self.state.connections[name] = record
        self.state.store.save("connection", name, {**params, "Arn": record.arn})
        summary = record.summary()
        return {k: summary[k] for k in ("ConnectionArn", "ConnectionState", "CreationTime", "LastModifiedTime")}

    def _connection(self, name: str) -> ConnectionRecord:
        record = self.state.connections.get(name)
        if record is None:
            raise ApiError("ResourceNotFoundException", f"Failed to describe the connection(s). Connection '{name}' does not exist.")
        return record

    async def describe_connection(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._connection(params["Name"]).describe()

    async def list_connections(self, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("NamePrefix") or ""
        state = params.get("ConnectionState")
        records = [
            r
            for r in self.state.connections.values()
            if r.name.startswith(prefix) and (state is None or r.state == state)
        ]
        chunk, token = page(records, params, key=lambda r: r.name)
        return _clean({"Connections": [r.summary() for r in chunk], "NextToken": token})

    async def update_connection(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._connection(params["Name"])
        request = copy.deepcopy(record.request)
        if "Description" in params:
            request["Description"] = params["Description"]
        if "AuthorizationType" in params:
            request["AuthorizationType"] = params["AuthorizationType"]
        # What is given replaces what was (a new password alone keeps the user name).
        auth = request.setdefault("AuthParameters", {})
        for key, value in (params.get("AuthParameters") or {}).items():
            auth[key] = _merged(auth.get(key), value)
        for kind, key in _AUTH_KEYS.items():
            if kind != request["AuthorizationType"]:
                auth.pop(key, None)  # another type's parameters, from before the type changed
        connection = connection_from_request(request)  # judged as CreateConnection's
        record.connection, record.request = connection, request
        record.description = request.get("Description")
        record.modified = _now()
        self.state.store.save("connection", record.name, {**request, "Arn": record.arn})
        await self._changed([d.arn for d in self.state.destinations.values() if d.connection_arn == record.arn])
        summary = record.summary()
        return {
            k: summary[k]
            for k in ("ConnectionArn", "ConnectionState", "CreationTime", "LastModifiedTime", "LastAuthorizedTime")
        }

    async def delete_connection(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._connection(params["Name"])
        users = sorted(d.name for d in self.state.destinations.values() if d.connection_arn == record.arn)
        if users:
            raise ApiError(
                "ValidationException",
                f"Connection {record.name} is used by API destination(s) {', '.join(users)}; delete them first.",
            )
        del self.state.connections[record.name]
        self.state.store.delete("connection", record.name)
        summary = record.summary()
        return {**{k: summary[k] for k in ("ConnectionArn", "CreationTime", "LastModifiedTime")}, "ConnectionState": "DELETING"}

    # -- API destinations --------------------------------------------------------------------

    async def create_api_destination(self, params: dict[str, Any]) -> dict[str, Any]:
        name = _name(params["Name"])
        if name in self.state.destinations:
            raise ApiError("ResourceAlreadyExistsException", f"An api-destination '{name}' already exists.")
        connection_arn = params["ConnectionArn"]
        connection = next((c for c in self.state.connections.values() if c.arn == connection_arn), None)
        if connection is None:
            raise ApiError("ResourceNotFoundException", f"Connection '{connection_arn}' does not exist.")
        _judge(params, connection)
        record = DestinationRecord(
            name,
            new_arn(self.state.region, self.state.account, "api-destination", name),
            dict(params),
            connection_arn,
            clock=self.state.clock,
        )
        self.state.destinations[name] = record
        self.state.store.save("api-destination", name, {**params, "Arn": record.arn})
        summary = record.summary()
        return {k: summary[k] for k in ("ApiDestinationArn", "ApiDestinationState", "CreationTime", "LastModifiedTime")}

    def _destination(self, name: str) -> DestinationRecord:
        record = self.state.destinations.get(name)
        if record is None:
            raise ApiError("ResourceNotFoundException", f"Failed to describe the api-destination(s). An api-destination '{name}' does not exist.")
        return record

    async def describe_api_destination(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._destination(params["Name"]).describe()

    async def list_api_destinations(self, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("NamePrefix") or ""
        connection = params.get("ConnectionArn")
        records = [
            r
            for r in self.state.destinations.values()
            if r.name.startswith(prefix) and (connection is None or r.connection_arn == connection)
        ]
        chunk, token = page(records, params, key=lambda r: r.name)
        return _clean({"ApiDestinations": [r.summary() for r in chunk], "NextToken": token})

    async def update_api_destination(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._destination(params["Name"])
        request = {**record.request, **{k: v for k, v in params.items() if k != "Name"}}
        connection_arn = request["ConnectionArn"]
        connection = next((c for c in self.state.connections.values() if c.arn == connection_arn), None)
        if connection is None:
            raise ApiError("ResourceNotFoundException", f"Connection '{connection_arn}' does not exist.")
        _judge(request, connection)
        record.request, record.connection_arn = request, connection_arn
        record.limiter.rate = record.rate
        record.modified = _now()
        self.state.store.save("api-destination", record.name, {**request, "Arn": record.arn})
        await self._changed([record.arn])
        summary = record.summary()
        return {k: summary[k] for k in ("ApiDestinationArn", "ApiDestinationState", "CreationTime", "LastModifiedTime")}

    async def delete_api_destination(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._destination(params["Name"])
        del self.state.destinations[record.name]
        self.state.store.delete("api-destination", record.name)
        return {}

    # -- restoring ---------------------------------------------------------------------------

    def restore_connection(self, doc: dict[str, Any]) -> None:
        record = ConnectionRecord(
            doc["Name"], doc["Arn"], connection_from_request(doc), request=doc, description=doc.get("Description")
        )
        self.state.connections[record.name] = record

    def restore_destination(self, doc: dict[str, Any]) -> None:
        self.state.destinations[doc["Name"]] = DestinationRecord(
            doc["Name"], doc["Arn"], doc, doc["ConnectionArn"], clock=self.state.clock
        )


def _judge(params: dict[str, Any], connection: ConnectionRecord) -> None:
    """The library judges the endpoint, method and rate limit, as for an http target."""
    HttpTargetConfig(
        endpoint=params["InvocationEndpoint"],
        http_method=params["HttpMethod"],
        connection=connection.connection,
        invocation_rate_limit_per_second=params.get("InvocationRateLimitPerSecond", 300),
        path_parameter_values=["x"] * params["InvocationEndpoint"].split("?", 1)[0].count("*"),
    )


def _merged(old: Any, new: Any) -> Any:
    """``new`` over ``old``, maps merged key by key (OAuth's ClientParameters inside its parameters)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {**old, **{k: _merged(old.get(k), v) for k, v in new.items()}}
    return copy.deepcopy(new)


def _name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ApiError(
            "ValidationException",
            f"1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+",
        )
    return name


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


def _now() -> datetime:
    return datetime.now(UTC)
