"""Connections and API destinations, as the EventBridge API creates and describes them.

A connection is the library's ``Connection`` (BASIC, API_KEY or OAUTH_CLIENT_CREDENTIALS, with its
invocation parameters); an API destination is an endpoint, a method and a rate limit over one,
which rules reach by ARN as an ``http`` target. Every target naming one API destination shares
its ``RateLimiter``: AWS counts ``InvocationRateLimitPerSecond`` per destination, across all the
rules and pipes that use it, not per use. Secrets go into ``Secret`` fields, so they are
masked wherever text leaves the process, and no Describe or List answer carries them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import PrivateAttr

from eventbus.bus.clock import Clock
from eventbus.server.errors import ApiError
from eventbus.server.model import timestamp
from eventbus.targets.connection import Connection
from eventbus.targets.http import HttpTarget, HttpTargetConfig, RateLimiter

__all__ = [
    "ConnectionRecord",
    "DestinationRecord",
    "DestinationTargetConfig",
    "connection_from_request",
    "http_parameters",
]

DEFAULT_RATE = 300


class DestinationTargetConfig(HttpTargetConfig):
    """An ``http`` target of an API destination: its targets share the destination's rate limiter."""

    _limiter: RateLimiter | None = PrivateAttr(default=None)

    def build(self) -> HttpTarget:
        return HttpTarget(self, rate_limiter=self._limiter)


@dataclass(slots=True)
class ConnectionRecord:
    name: str
    arn: str
    connection: Connection
    request: dict[str, Any]
    description: str | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def state(self) -> str:
        # The library authorizes on first use (an OAuth token is fetched then): nothing to wait for.
        return "AUTHORIZED"

    def summary(self) -> dict[str, Any]:
        return _clean(
            {
                "ConnectionArn": self.arn,
                "Name": self.name,
                "ConnectionState": self.state,
                "AuthorizationType": self.request["AuthorizationType"],
                "CreationTime": timestamp(self.created),
                "LastModifiedTime": timestamp(self.modified),
                "LastAuthorizedTime": timestamp(self.modified),
            }
        )

    def describe(self) -> dict[str, Any]:
        return _clean(
            {
                **self.summary(),
                "Description": self.description,
                "AuthParameters": _public_auth(self.request.get("AuthParameters", {})),
            }
        )


@dataclass(slots=True)
class DestinationRecord:
    name: str
    arn: str
    request: dict[str, Any]
    connection_arn: str
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Times the shared rate limit (``None``: the monotonic clock; a ``ManualClock`` in tests).
    clock: Clock | None = None
    #: The one rate limiter of every target that names this destination.
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.rate, clock=self.clock)

    @property
    def rate(self) -> int:
        return int(self.request.get("InvocationRateLimitPerSecond", DEFAULT_RATE))

    def summary(self) -> dict[str, Any]:
        return _clean(
            {
                "ApiDestinationArn": self.arn,
                "Name": self.name,
                "ApiDestinationState": "ACTIVE",
                "ConnectionArn": self.connection_arn,
                "InvocationEndpoint": self.request["InvocationEndpoint"],
                "HttpMethod": self.request["HttpMethod"],
                "InvocationRateLimitPerSecond": self.rate,
                "CreationTime": timestamp(self.created),
                "LastModifiedTime": timestamp(self.modified),
            }
        )

    def describe(self) -> dict[str, Any]:
        return _clean({**self.summary(), "Description": self.request.get("Description")})

    def target_config(self, connection: Connection, parameters: Mapping[str, Any]) -> HttpTargetConfig:
        """The ``http`` target a rule target naming this destination gets (with its own
        ``HttpParameters``: path values for the ``*`` in the endpoint, headers, query string),
        sharing the destination's rate limiter."""
        config = DestinationTargetConfig(
            endpoint=self.request["InvocationEndpoint"],
            http_method=self.request["HttpMethod"],
            connection=connection,
            invocation_rate_limit_per_second=self.rate,
            path_parameter_values=list(parameters.get("PathParameterValues", [])),
            header_parameters=dict(parameters.get("HeaderParameters", {})),
            query_string_parameters=dict(parameters.get("QueryStringParameters", {})),
        )
        config._limiter = self.limiter
        return config


def new_arn(region: str, account: str, kind: str, name: str) -> str:
    return f"arn:aws:events:{region}:{account}:{kind}/{name}/{uuid.uuid4()}"


def connection_from_request(params: Mapping[str, Any]) -> Connection:
    """The library's ``Connection`` for a CreateConnection/UpdateConnection request."""
    kind = params["AuthorizationType"]
    auth_params = params.get("AuthParameters") or {}
    auth: dict[str, Any]
    if kind == "BASIC":
        basic = _need(auth_params, "BasicAuthParameters", kind)
        auth = {"type": "BASIC", "username": basic.get("Username"), "password": basic.get("Password")}
    elif kind == "API_KEY":
        key = _need(auth_params, "ApiKeyAuthParameters", kind)
        auth = {"type": "API_KEY", "api_key_name": key.get("ApiKeyName"), "api_key_value": key.get("ApiKeyValue")}
    else:
        oauth = _need(auth_params, "OAuthParameters", kind)
        client = oauth.get("ClientParameters") or {}
        auth = {
            "type": "OAUTH_CLIENT_CREDENTIALS",
            "authorization_endpoint": oauth.get("AuthorizationEndpoint"),
            "http_method": oauth.get("HttpMethod"),
            "client_id": client.get("ClientID"),
            "client_secret": client.get("ClientSecret"),
            "oauth_http_parameters": http_parameters(oauth.get("OAuthHttpParameters") or {}),
        }
    return Connection.model_validate(
        {
            "name": params["Name"],
            "auth": auth,
            "invocation_http_parameters": http_parameters(auth_params.get("InvocationHttpParameters") or {}),
        }
    )


def http_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """AWS's ``ConnectionHttpParameters`` lists as the library's ``HttpParameters`` maps."""
    out: dict[str, Any] = {}
    for aws, ours in (
        ("HeaderParameters", "header_parameters"),
        ("QueryStringParameters", "query_string_parameters"),
        ("BodyParameters", "body_parameters"),
    ):
        values: dict[str, Any] = {}
        for item in params.get(aws) or []:
            value = item.get("Value", "")
            values[item.get("Key", "")] = {"value": value} if item.get("IsValueSecret") else value
        out[ours] = values
    return out


def _need(params: Mapping[str, Any], key: str, kind: str) -> dict[str, Any]:
    value = params.get(key)
    if not isinstance(value, dict):
        raise ApiError(
            "ValidationException",
            f"AuthParameters.{key} must be given for AuthorizationType {kind}.",
        )
    return value


def _public_auth(auth: Mapping[str, Any]) -> dict[str, Any]:
    """AuthParameters as Describe shows them: names, never secret values."""
    out: dict[str, Any] = {}
    if "BasicAuthParameters" in auth:
        out["BasicAuthParameters"] = {"Username": auth["BasicAuthParameters"].get("Username")}
    if "ApiKeyAuthParameters" in auth:
        out["ApiKeyAuthParameters"] = {"ApiKeyName": auth["ApiKeyAuthParameters"].get("ApiKeyName")}
    if "OAuthParameters" in auth:
        oauth = auth["OAuthParameters"]
        out["OAuthParameters"] = _clean(
            {
                "ClientParameters": {"ClientID": (oauth.get("ClientParameters") or {}).get("ClientID")},
                "AuthorizationEndpoint": oauth.get("AuthorizationEndpoint"),
                "HttpMethod": oauth.get("HttpMethod"),
                "OAuthHttpParameters": _public_parameters(oauth.get("OAuthHttpParameters")),
            }
        )
    if auth.get("InvocationHttpParameters"):
        out["InvocationHttpParameters"] = _public_parameters(auth["InvocationHttpParameters"])
    return out


def _public_parameters(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    return {
        group: [
            {"Key": p.get("Key"), "IsValueSecret": bool(p.get("IsValueSecret"))}
            | ({} if p.get("IsValueSecret") else {"Value": p.get("Value")})
            for p in items
        ]
        for group, items in params.items()
        if isinstance(items, list)
    }


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}
