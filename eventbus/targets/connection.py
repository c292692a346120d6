"""Connections: how an HTTP target authenticates, and the parameters it always sends.

Modelled on EventBridge connections: ``API_KEY`` (a header), ``BASIC`` and
``OAUTH_CLIENT_CREDENTIALS`` (a token from the authorization endpoint, cached until it expires
and fetched again when the endpoint answers 401 or 407). Secret values are ``Secret`` (a
``SecretStr`` registered with ``eventbus.redact``), so they never show in reprs and are masked by
value, in every encoding, wherever text leaves the process: the Basic header they make, and
each OAuth token once fetched, are registered too.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import anyio
import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from eventbus import redact
from eventbus.bus.clock import Clock, Stopwatch
from eventbus.errors import NonRetryableError, RetryableError, TargetPermissionError, TargetTimeoutError

__all__ = [
    "ApiKeyAuth",
    "BasicAuth",
    "Connection",
    "ConnectionAuth",
    "HttpParameters",
    "OAuthClientCredentials",
    "Parameter",
    "ParameterValue",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parameter(_Model):
    """A parameter value with AWS's ``IsValueSecret`` flag; a plain string is a non-secret value."""

    value: SecretStr
    is_value_secret: bool = True

    @model_validator(mode="after")
    def _mask_when_secret(self) -> Parameter:
        if self.is_value_secret:
            redact.register(self.value.get_secret_value(), self.value)
        return self


ParameterValue = str | Parameter


def plain(value: ParameterValue) -> str:
    return value.value.get_secret_value() if isinstance(value, Parameter) else value


def is_secret(value: ParameterValue) -> bool:
    return isinstance(value, Parameter) and value.is_value_secret


class HttpParameters(_Model):
    """Header, query string and (JSON) body parameters, up to 100 of each."""

    header_parameters: dict[str, ParameterValue] = Field(default_factory=dict, max_length=100)
    query_string_parameters: dict[str, ParameterValue] = Field(default_factory=dict, max_length=100)
    body_parameters: dict[str, ParameterValue] = Field(default_factory=dict, max_length=100)

    def secrets(self) -> list[str]:
        groups = (self.header_parameters, self.query_string_parameters, self.body_parameters)
        return [plain(v) for group in groups for v in group.values() if is_secret(v)]


class ApiKeyAuth(_Model):
    """Sends ``api_key_name: api_key_value`` as a header."""

    type: Literal["API_KEY"] = "API_KEY"
    api_key_name: str = Field(min_length=1)
    api_key_value: redact.Secret


class BasicAuth(_Model):
    type: Literal["BASIC"] = "BASIC"
    username: str = Field(min_length=1)
    password: redact.Secret

    @model_validator(mode="after")
    def _mask_the_header(self) -> BasicAuth:
        redact.register(_basic(self.username, self.password.get_secret_value()), self.password)
        return self


class OAuthClientCredentials(_Model):
    """A client-credentials token from ``authorization_endpoint``, sent as ``Bearer``.

    The client id and secret go in a Basic ``Authorization`` header; ``oauth_http_parameters``
    add to the token request (``grant_type=client_credentials`` unless given).
    """

    type: Literal["OAUTH_CLIENT_CREDENTIALS"] = "OAUTH_CLIENT_CREDENTIALS"
    authorization_endpoint: str = Field(pattern=r"^https?://")
    http_method: Literal["GET", "POST", "PUT"] = "POST"
    client_id: str = Field(min_length=1)
    client_secret: redact.Secret
    oauth_http_parameters: HttpParameters = Field(default_factory=HttpParameters)

    @model_validator(mode="after")
    def _mask_the_header(self) -> OAuthClientCredentials:
        redact.register(_basic(self.client_id, self.client_secret.get_secret_value()), self.client_secret)
        return self


AuthParameters = Annotated[ApiKeyAuth | BasicAuth | OAuthClientCredentials, Field(discriminator="type")]


class Connection(_Model):
    """Authorization plus the parameters every request through the connection carries."""

    name: str = ""
    auth: AuthParameters
    invocation_http_parameters: HttpParameters = Field(default_factory=HttpParameters)

    def secrets(self) -> list[str]:
        values = self.invocation_http_parameters.secrets()
        auth = self.auth
        if isinstance(auth, ApiKeyAuth):
            values.append(auth.api_key_value.get_secret_value())
        elif isinstance(auth, BasicAuth):
            values.append(auth.password.get_secret_value())
            values.append(_basic(auth.username, auth.password.get_secret_value()))
        else:
            values.append(auth.client_secret.get_secret_value())
            values.append(_basic(auth.client_id, auth.client_secret.get_secret_value()))
            values.extend(auth.oauth_http_parameters.secrets())
        return [v for v in values if v]


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


class ConnectionAuth:
    """The live side of a connection: builds the auth header, caching OAuth tokens."""

    #: Refresh this many seconds before the token's stated expiry (or 10% of its life if less).
    EXPIRY_MARGIN = 30.0

    def __init__(self, connection: Connection, *, clock: Clock | None = None) -> None:
        self.connection = connection
        # Token lifetimes run on time.monotonic, or on ``clock`` (a ManualClock in tests).
        self._time = Stopwatch(clock)
        self._token: SecretStr | None = None
        self._expires_at = 0.0
        self._lock: anyio.Lock | None = None
        #: How many tokens were fetched (for tests and metrics).
        self.token_fetches = 0

    def __repr__(self) -> str:
        return f"ConnectionAuth({self.connection.name!r}, type={self.connection.auth.type})"

    @property
    def refreshes_on_unauthorized(self) -> bool:
        return isinstance(self.connection.auth, OAuthClientCredentials)

    def secrets(self) -> list[str]:
        values = self.connection.secrets()
        if self._token is not None:
            values.append(self._token.get_secret_value())
        return values

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token (only if it is still ``token``, when given)."""
        if token is None or (self._token is not None and self._token.get_secret_value() == token):
            self._token = None

    async def header(self, client: httpx.AsyncClient) -> tuple[str, str]:
        """The ``(name, value)`` of the auth header to send."""
        auth = self.connection.auth
        if isinstance(auth, ApiKeyAuth):
            return auth.api_key_name, auth.api_key_value.get_secret_value()
        if isinstance(auth, BasicAuth):
            return "Authorization", "Basic " + _basic(auth.username, auth.password.get_secret_value())
        return "Authorization", "Bearer " + await self.token(client)

    async def token(self, client: httpx.AsyncClient) -> str:
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            # Concurrent deliveries that all saw a 401 share the one token fetched first.
            if self._token is None or self._time.now() >= self._expires_at:
                await self._fetch(client)
            assert self._token is not None
            return self._token.get_secret_value()

    async def _fetch(self, client: httpx.AsyncClient) -> None:
        auth = self.connection.auth
        assert isinstance(auth, OAuthClientCredentials)
        params = auth.oauth_http_parameters
        headers = {k: plain(v) for k, v in params.header_parameters.items()}
        headers["Authorization"] = "Basic " + _basic(auth.client_id, auth.client_secret.get_secret_value())
        query = {k: plain(v) for k, v in params.query_string_parameters.items()}
        form = {k: plain(v) for k, v in params.body_parameters.items()}
        form.setdefault("grant_type", "client_credentials")
        request: dict[str, Any] = {"headers": headers}
        if auth.http_method == "GET":
            query = {**form, **query}
        else:
            request["data"] = form
        endpoint = httpx.URL(auth.authorization_endpoint)
        # No user info, no query: messages never carry credentials.
        where = f"{endpoint.scheme}://{endpoint.host}{':' + str(endpoint.port) if endpoint.port else ''}{endpoint.path}"
        self.token_fetches += 1
        try:
            response = await client.request(auth.http_method, endpoint, params=query, **request)
        except httpx.TimeoutException:
            raise TargetTimeoutError(f"OAuth authorization endpoint {where} timed out") from None
        except httpx.TransportError as exc:
            raise RetryableError(
                f"OAuth authorization endpoint {where} unreachable: {type(exc).__name__}"
            ) from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetryableError(f"OAuth authorization endpoint {where} answered {status}")
        if status >= 400:
            raise TargetPermissionError(f"OAuth authorization endpoint {where} refused the credentials ({status})")
        try:
            body = response.json()
            token = body["access_token"]
            if not isinstance(token, str) or not token:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise NonRetryableError(
                f"OAuth authorization endpoint {where} did not answer with an access_token"
            ) from None
        expires_in = body.get("expires_in")
        now = self._time.now()
        if isinstance(expires_in, int | float) and expires_in > 0:
            self._expires_at = now + expires_in - min(self.EXPIRY_MARGIN, expires_in * 0.1)
        else:
            self._expires_at = float("inf")  # valid until the endpoint says otherwise (401/407)
        self._token = SecretStr(token)
        redact.register(token, self._token)
