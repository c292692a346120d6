"""The connection and API destination operations (Create, Describe, List, Delete of each)."""

from __future__ import annotations

import re
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


class DestinationsApi:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def handlers(self) -> dict[str, Handler]:
        return {
            "CreateConnection": self.create_connection,
            "DescribeConnection": self.describe_connection,
            "ListConnections": self.list_connections,
            "DeleteConnection": self.delete_connection,
            "CreateApiDestination": self.create_api_destination,
            "DescribeApiDestination": self.describe_api_destination,
            "ListApiDestinations": self.list_api_destinations,
            "DeleteApiDestination": self.delete_api_destination,
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
        # The library judges the endpoint, method and rate limit, as for an http target.
        HttpTargetConfig(
            endpoint=params["InvocationEndpoint"],
            http_method=params["HttpMethod"],
            connection=connection.connection,
            invocation_rate_limit_per_second=params.get("InvocationRateLimitPerSecond", 300),
            path_parameter_values=["x"] * params["InvocationEndpoint"].split("?", 1)[0].count("*"),
        )
        record = DestinationRecord(
            name,
            new_arn(self.state.region, self.state.account, "api-destination", name),
            dict(params),
            connection_arn,
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
        self.state.destinations[doc["Name"]] = DestinationRecord(doc["Name"], doc["Arn"], doc, doc["ConnectionArn"])


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
