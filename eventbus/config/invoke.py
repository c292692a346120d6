"""The ``invoke:`` section: routes that run a target when asked over HTTP, read by ``eventbus serve``.

Each route names a target (``{KIND: options}`` or ``{ref: NAME}``) and its limits. ``POST
/invoke/NAME`` runs it and answers with what it returned; ``POST /jobs/NAME`` queues the request
as a job in a durable store and answers at once with the job's id. ``jobs`` says where jobs are
kept. docs/invoke.md describes the HTTP side.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from eventbus import redact

__all__ = ["CacheSettings", "InvokeSettings", "JobStoreSettings", "RateLimit", "RouteName", "RouteSpec"]

#: A route's name: the last segment of ``/invoke/NAME`` and ``/jobs/NAME``.
RouteName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimit(_Model):
    """A token bucket for each API key (each client address on a route without keys): `burst`
    requests at once, refilled at `per_second`. A request finding the bucket empty is answered
    429 with `Retry-After`."""

    per_second: float = Field(gt=0)
    #: Requests allowed at once; default: `per_second` rounded up (at least 1).
    burst: int | None = Field(default=None, ge=1)

    @property
    def capacity(self) -> int:
        return self.burst if self.burst is not None else max(1, math.ceil(self.per_second))


class CacheSettings(_Model):
    """Successful answers kept by a hash of the route and the request body, for `ttl` seconds;
    a cached answer carries `X-Cache: HIT`."""

    ttl: float = Field(gt=0)
    #: Answers kept at most; the least recently used goes first.
    max_entries: int = Field(default=1000, ge=1)


class RouteSpec(_Model):
    """A route: the target it runs (`{KIND: options}` or `{ref: NAME}`) and its limits."""

    target: Any
    #: Seconds one invocation may take: past it, `/invoke` answers 504 and a job FAILS.
    timeout: float = Field(default=30.0, gt=0)
    #: Keys a request must present in the `invoke.api_key_header` header; without any, the
    #: server's own authentication applies (its bearer keys, SigV4, or anyone on loopback).
    api_keys: list[redact.Secret] = Field(default_factory=list)
    rate_limit: RateLimit | None = None
    #: Larger request bodies are answered 413 unread; default: `server.max_body_bytes`.
    max_body_bytes: int | None = Field(default=None, ge=1)
    cache: CacheSettings | None = None
    #: Invocations of this route running at once, synchronous and jobs together.
    max_concurrency: int = Field(default=64, ge=1)
    #: Seconds a synchronous request waits for a free slot past `max_concurrency` before it is
    #: answered 503 with `Retry-After` (0: answered at once). Jobs always wait their turn.
    max_wait: float = Field(default=1.0, ge=0)
    #: Whether `POST /jobs/NAME` takes jobs for this route.
    jobs: bool = True


class JobStoreSettings(_Model):
    """Where jobs are kept. `backend` (the default): where the runtime keeps the buses' state, so
    with the SQLite backend (or a file naming no backend) in its state file, and a job survives a
    restart; in memory with `runtime.backend: memory`. `sqlite`: a SQLite file of its own
    (`path`). `memory`: gone with the process."""

    type: Literal["backend", "sqlite", "memory"] = "backend"
    #: With `type: sqlite`: the file, relative to the config file's folder; default
    #: `.eventbus/<config name>.jobs.db`. Giving a `path` alone means `type: sqlite`.
    path: str | None = None
    #: With `type: sqlite`: `NORMAL` survives a killed process; `FULL` survives a power loss too,
    #: at a cost per commit. In the state file, the backend's own `synchronous` applies.
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    #: Seconds a finished job (SUCCEEDED or FAILED) stays readable.
    retention: float = Field(default=86400.0, gt=0)
    #: Runs a job gets at most: a job still RUNNING when the server stopped is run again, up to this.
    max_attempts: int = Field(default=3, ge=1)
    #: Seconds a stopping server waits for running jobs before putting them back for the next start.
    drain_timeout: float = Field(default=10.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _path_means_sqlite(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("path") is not None and "type" not in value:
            return {**value, "type": "sqlite"}
        return value

    @model_validator(mode="after")
    def _path_only_for_sqlite(self) -> JobStoreSettings:
        if self.path is not None and self.type != "sqlite":
            raise ValueError(
                f"path is for a job store of its own (type: sqlite), not type: {self.type}: drop path, "
                "or say type: sqlite"
            )
        return self

    def state_path(self, config_file: str | Path | None) -> Path:
        """The SQLite file of ``type: sqlite`` for the config in ``config_file``."""
        if self.path is not None:
            path = Path(self.path).expanduser()
            if not path.is_absolute() and config_file is not None:
                path = Path(config_file).parent / path
            return path
        if config_file is None:
            return Path(".eventbus") / "eventbus.jobs.db"
        config = Path(config_file)
        return config.parent / ".eventbus" / f"{config.stem}.jobs.db"


class InvokeSettings(_Model):
    """Routes that run a target over HTTP (`POST /invoke/NAME`, `POST /jobs/NAME`), by name."""

    #: The request header that carries a route's API key.
    api_key_header: str = Field(default="X-Api-Key", min_length=1, pattern=r"^[A-Za-z0-9\-]+$")
    jobs: JobStoreSettings = Field(default_factory=JobStoreSettings)
    routes: dict[RouteName, RouteSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _header_is_not_authorization(self) -> InvokeSettings:
        if self.api_key_header.lower() == "authorization":
            raise ValueError(
                "api_key_header cannot be Authorization: that header carries the server's own credentials; "
                "use X-Api-Key (the default) or another header"
            )
        return self
