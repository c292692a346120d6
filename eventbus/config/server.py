"""The ``server:`` and ``functions:`` sections of a config file: what ``eventbus serve`` reads.

``server`` says where the HTTP API listens and who may call it: SigV4 access keys (what boto3
and the AWS CLI sign with) and bearer API keys. Without either, only a loopback address is
allowed: ``eventbus serve`` refuses to expose an unauthenticated API anywhere else.
``functions`` names Python callables so that Lambda ARNs given to the API
(``arn:aws:lambda:REGION:ACCOUNT:function:NAME``) have something to invoke.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from eventbus import redact
from eventbus.targets.function import FunctionTargetConfig

__all__ = ["AccessKey", "FunctionSpec", "ServerSettings", "function_spec", "is_loopback"]


class AccessKey(BaseModel):
    """An AWS-style access key pair: requests signed with it (SigV4) are accepted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    access_key_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$")
    secret_access_key: redact.Secret


class ServerSettings(BaseModel):
    """Where ``eventbus serve`` listens and whom it lets in (SigV4 keys, bearer API keys)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=4010, ge=0, le=65535)
    #: Access keys whose SigV4 signatures are accepted (boto3, the AWS CLI, Terraform).
    credentials: list[AccessKey] = Field(default_factory=list)
    #: Keys accepted as ``Authorization: Bearer KEY`` (curl, CloudEvents producers).
    api_keys: list[redact.Secret] = Field(default_factory=list)
    #: Larger request bodies are answered 413 unread. Ten 256 KB entries fit, JSON-escaped.
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    #: How far a SigV4 request's ``X-Amz-Date`` may be from the server's clock (AWS: 5 minutes).
    max_clock_skew_seconds: float = Field(default=300.0, gt=0)

    @property
    def authenticated(self) -> bool:
        return bool(self.credentials or self.api_keys)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def function_spec(value: Any) -> Any:
    """``functions: {NAME: "pkg.mod:fn"}`` is shorthand for ``{NAME: {function: "pkg.mod:fn"}}``."""
    return {"function": value} if isinstance(value, str) else value


#: A ``functions:`` entry: ``"pkg.mod:fn"`` or a ``function`` target's options.
FunctionSpec = Annotated[FunctionTargetConfig, BeforeValidator(function_spec)]
