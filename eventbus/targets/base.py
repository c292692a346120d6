"""The target protocol: the one small interface every destination implements.

A target takes a batch of payloads, each the JSON text EventBridge would deliver, with a
``DeliveryContext`` saying who delivers and on which attempt. It fails by raising a
``RetryableError`` or a ``NonRetryableError`` (see ``eventbus.errors``); any other exception is
treated as retryable. What ``deliver`` returns is the target's response (a function's return
value, an HTTP body), which pipes read for enrichment and partial batch failures.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from eventbus import redact

__all__ = ["DeliveryContext", "Target", "TargetConfig", "batch_limit"]


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    """Who is delivering, to whom, and on which attempt (1 for the first)."""

    kind: Literal["rule", "pipe", "enrichment", "dead-letter", "test", "map", "invoke"] = "rule"
    name: str = ""
    arn: str = ""
    target_id: str = ""
    target_arn: str = ""
    attempt: int = 1
    event_ids: tuple[str, ...] = field(default_factory=tuple)
    #: Message attributes that travel with the payload. Dead letters carry ERROR_CODE,
    #: ERROR_MESSAGE, RULE_ARN, TARGET_ARN, EXHAUSTED_RETRY_CONDITION and RETRY_ATTEMPTS here;
    #: targets with a place for attributes (queues, files, logs) keep them.
    attributes: Mapping[str, str] = field(default_factory=dict)


class TargetConfig(BaseModel):
    """Base of every target's config model: the same model serves Python code and config files.

    Each subclass sets ``kind`` (its registry name, e.g. ``"http"``) and implements ``build()``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassVar[str] = ""
    #: Whether a pipe invokes this kind once with the whole batch as one JSON array, as Pipes
    #: invokes Lambda (function, command, http), rather than once a payload. Config tests record
    #: such a pipe stage the same way, one list a call.
    batches_in_pipes: ClassVar[bool] = False

    def build(self) -> Target:
        raise NotImplementedError(f"{type(self).__name__} does not build a target")

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A URL may carry a password: whatever secret is registered is masked in the repr.
        for name, value in super().__repr_args__():
            yield name, redact.mask_value(value)


@runtime_checkable
class Target(Protocol):
    """Anything that can take a batch of payloads.

    A target that makes one call per payload for a rule (a Lambda invocation, an HTTP request)
    may set ``per_payload_calls = True``: the bus then hands it one payload at a time, so each
    event is acknowledged, retried and counted on its own, never held back or sent again with
    the rest of a batch that failed after it was delivered.
    """

    #: The largest batch ``deliver`` accepts; the bus and pipes never pass more.
    max_batch_size: int

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> Any:
        """Deliver every payload or raise; return the target's response (or ``None``)."""
        ...

    async def aclose(self) -> None:
        """Release connections, files and processes. Idempotent."""
        ...


def batch_limit(target: object, cap: int) -> int:
    """Payloads one ``deliver`` call may take: the target's ``max_batch_size``, at most ``cap``.

    A target without a usable ``max_batch_size`` (a positive integer) takes one at a time.
    """
    size = getattr(target, "max_batch_size", 1)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        size = 1
    return max(1, min(size, cap))
