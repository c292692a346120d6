"""``JetStreamSettings``: where the NATS servers are, what to call things there, how to log in.

The same model is ``runtime.backend`` with ``type: jetstream`` in a config file, and the keyword
arguments of ``JetStreamEventLog``. Every worker of one deployment uses the same settings.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from eventbus import redact

__all__ = ["JetStreamSettings"]


class JetStreamSettings(BaseModel):
    """How to reach NATS JetStream and lay a deployment out on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: NATS server URLs (several for a cluster: the client fails over between them).
    servers: list[str] = Field(default_factory=lambda: ["nats://127.0.0.1:4222"], min_length=1)
    #: The prefix of every stream, consumer and bucket name this deployment makes: two
    #: deployments on one NATS need two prefixes. Letters, digits and ``-``.
    stream: str = Field(default="EVENTBUS", pattern=r"^[A-Za-z0-9-]{1,32}$")
    #: Copies of each stream and bucket in a cluster (1 on a single server; 3 survives a node).
    replicas: int = Field(default=1, ge=1, le=5)
    #: Log in with a user and password...
    user: str | None = None
    password: redact.Secret | None = None
    #: ... or a token ...
    token: redact.Secret | None = None
    #: ... or a credentials file (``.creds``: a user JWT and its NKey seed) ...
    credentials: str | None = None
    #: ... or an NKey seed file.
    nkey: str | None = None
    #: Seconds one connection attempt may take.
    connect_timeout: float = Field(default=2.0, gt=0)
    #: Seconds to keep trying when no server answers at start (0: try once); then a clear error.
    connect_retry: float = Field(default=10.0, ge=0)
    #: Seconds a worker may stay silent before its leases (events being routed, deliveries being
    #: delivered) go to another worker. Live workers renew their leases every third of it.
    ack_wait: float = Field(default=30.0, ge=1)
    #: Seconds during which a message published again with the same id is stored once.
    duplicate_window: float = Field(default=120.0, ge=1)
    #: Seconds to wait for a publish acknowledgement, and to keep retrying one that failed
    #: (a cluster electing a leader) before PutEvents answers the entries as failed.
    publish_timeout: float = Field(default=5.0, gt=0)
    publish_retry: float = Field(default=10.0, ge=0)

    @model_validator(mode="after")
    def _mask_url_credentials(self) -> JetStreamSettings:
        # nats://user:password@host: the password is a secret wherever the URL is shown.
        for server in self.servers:
            redact.register_url(server, self)
        return self

    def __repr_args__(self) -> Any:
        # A password in a server URL never reaches a repr.
        for name, value in super().__repr_args__():
            yield name, [redact.redact_url(server) for server in value] if name == "servers" else value

    def describe_servers(self) -> str:
        """The server URLs with passwords masked, for messages."""
        return ", ".join(redact.redact_url(server) for server in self.servers)
