"""What a dead letter carries: AWS's attributes and the context of its delivery.

EventBridge sends an undeliverable event to a rule target's dead-letter queue with the message
attributes ``ERROR_CODE``, ``ERROR_MESSAGE``, ``RULE_ARN``, ``TARGET_ARN``, ``RETRY_ATTEMPTS`` and,
when retries ran out, ``EXHAUSTED_RETRY_CONDITION``; Pipes send ``PIPE_ARN`` and ``STAGE`` in place
of ``RULE_ARN``. One builder serves the bus and the pipes.
"""

from __future__ import annotations

from collections.abc import Mapping

from eventbus.bus.delivery.retry import Condition, error_code, error_message
from eventbus.targets.base import DeliveryContext

__all__ = ["dead_letter_attributes", "dead_letter_context"]


def dead_letter_attributes(
    error: BaseException, *, retry_attempts: int, condition: Condition | None, origin: Mapping[str, str]
) -> dict[str, str]:
    """The attributes of a dead letter: the error, ``origin`` (``RULE_ARN`` and ``TARGET_ARN``, or
    ``PIPE_ARN``, ``TARGET_ARN`` and ``STAGE``), the retries made and what ran out (if anything)."""
    attributes = {"ERROR_CODE": error_code(error), "ERROR_MESSAGE": error_message(error), **origin}
    attributes["RETRY_ATTEMPTS"] = str(retry_attempts)
    if condition is not None:
        attributes["EXHAUSTED_RETRY_CONDITION"] = condition
    return attributes


def dead_letter_context(
    error: BaseException,
    *,
    retry_attempts: int,
    condition: Condition | None,
    origin: Mapping[str, str],
    name: str,
    arn: str,
    target_id: str,
    target_arn: str,
    event_id: str,
) -> DeliveryContext:
    """The context a dead-letter target is called with, for the event ``event_id``."""
    return DeliveryContext(
        kind="dead-letter",
        name=name,
        arn=arn,
        target_id=target_id,
        target_arn=target_arn,
        attempt=1,
        event_ids=(event_id,),
        attributes=dead_letter_attributes(
            error, retry_attempts=retry_attempts, condition=condition, origin=origin
        ),
    )
