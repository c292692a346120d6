"""``BusConfig``: the limits and tunables of one bus (EventBridge's defaults where it has them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from eventbus.bus.delivery.retry import Backoff
from eventbus.envelope import DEFAULT_MAX_ENTRY_SIZE, MAX_ENTRY_SIZE_LIMIT

__all__ = ["BusConfig"]


class BusConfig(BaseModel):
    """Limits and tunables of one bus; every default is EventBridge's where it has one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account: str = Field(default="123456789012", pattern=r"^\d{12}$")
    region: str = Field(default="us-east-1", min_length=1)
    max_entries_per_put: int = Field(default=10, ge=1)
    max_entry_size: int = Field(default=DEFAULT_MAX_ENTRY_SIZE, ge=1, le=MAX_ENTRY_SIZE_LIMIT)
    max_rules: int = Field(default=300, ge=1)
    max_targets_per_rule: int = Field(default=5, ge=1)
    #: Events accepted and not routed yet; ``put_events`` waits or throttles beyond it.
    log_capacity: int = Field(default=10_000, ge=1)
    #: Deliveries one target holds (queued, in flight or waiting to retry).
    target_queue_size: int = Field(default=1_000, ge=1)
    target_concurrency: int = Field(default=8, ge=1)
    #: Largest number of payloads handed to one ``deliver`` call (capped by the target's own).
    delivery_batch_size: int = Field(default=10, ge=1)
    #: When the log is full: ``wait`` for room, or answer ``ThrottlingException`` per entry.
    when_full: Literal["wait", "throttle"] = "wait"
    drain_timeout: float = Field(default=30.0, ge=0)
    backoff: Backoff = Field(default_factory=Backoff)
    #: Log every accepted, matched and delivered event (retries and dead letters always are).
    trace_events: bool = False
    router_batch: int = Field(default=1024, ge=1)
