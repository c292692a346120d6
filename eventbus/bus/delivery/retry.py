"""The retry decision: after a failed attempt, retry after a delay or give up, and why.

One pure function, ``decide``, serves the bus's dispatchers and the pipes alike: it is given the
policy, the attempt that failed, the age of the event (on the caller's clock) and the error, plus
the jitter drawn by the caller, and answers ``Retry(delay)`` or ``GiveUp(condition)``. Nothing in
it reads a clock or a random source, so every branch is a plain unit test away, and a durable
queue can replay the same decision from the attempt count it stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from eventbus import redact
from eventbus.errors import NonRetryableError

__all__ = [
    "MAX_ERROR_MESSAGE",
    "Backoff",
    "Condition",
    "GiveUp",
    "Retry",
    "RetryPolicy",
    "RetryRules",
    "decide",
    "error_code",
    "error_message",
    "retry_delay",
]

#: Longest ERROR_MESSAGE we pass on (dead-letter attribute, logs); a target's exception text can be long.
MAX_ERROR_MESSAGE: Final = 2048

#: Why retries ended, as the dead-letter attribute ``EXHAUSTED_RETRY_CONDITION`` says it.
Condition = Literal["MaximumRetryAttempts", "MaximumEventAgeInSeconds", "MaximumRecordAgeInSeconds"]


class RetryPolicy(BaseModel):
    """EventBridge's per-target retry policy; whichever limit is reached first ends the retries."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    maximum_retry_attempts: int = Field(185, ge=0, le=185, alias="MaximumRetryAttempts")
    maximum_event_age_in_seconds: int = Field(86_400, ge=60, le=86_400, alias="MaximumEventAgeInSeconds")


class Backoff(BaseModel):
    """Exponential backoff with full jitter: retry n waits ``uniform(0, min(cap, base * 2**(n-1)))``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base: float = Field(1.0, gt=0)
    cap: float = Field(300.0, gt=0)

    @model_validator(mode="after")
    def _cap_not_below_base(self) -> Backoff:
        if self.cap < self.base:
            raise ValueError("backoff cap must not be below its base")
        return self

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry ``retry`` (1 for the first)."""
        # min() before the power would overflow for large retry counts.
        return self.cap if retry > 64 else min(self.cap, self.base * 2 ** (retry - 1))

    def delay(self, retry: int, rand: Callable[[], float]) -> float:
        return rand() * self.ceiling(retry)


@dataclass(frozen=True, slots=True)
class RetryRules:
    """What ``decide`` weighs: the limits (``None``: no limit), how the age limit is named in
    dead letters, and the backoff."""

    max_retries: int | None
    max_age: float | None
    backoff: Backoff
    age_condition: Condition = "MaximumEventAgeInSeconds"

    @classmethod
    def of(cls, policy: RetryPolicy, backoff: Backoff) -> RetryRules:
        """The rules of a rule target's ``RetryPolicy``."""
        return cls(policy.maximum_retry_attempts, policy.maximum_event_age_in_seconds, backoff)


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again after ``delay`` seconds."""

    delay: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop: dead-letter the event. ``condition`` is ``None`` when the error was not retryable
    (nothing was exhausted)."""

    condition: Condition | None


def decide(rules: RetryRules, attempt: int, age: float, error: BaseException, *, jitter: float) -> Retry | GiveUp:
    """The fate of a delivery whose attempt number ``attempt`` (1 for the first) failed with
    ``error``, its event ``age`` seconds old. ``jitter`` is a uniform draw in [0, 1) for the backoff.

    A ``NonRetryableError`` gives up at once; otherwise the retry limit is checked before the age
    limit, and a retry waits the backoff, or the error's ``retry_after`` when that is longer.
    """
    if isinstance(error, NonRetryableError):
        return GiveUp(None)
    if rules.max_retries is not None and attempt - 1 >= rules.max_retries:
        return GiveUp("MaximumRetryAttempts")
    if rules.max_age is not None and age >= rules.max_age:
        return GiveUp(rules.age_condition)
    return Retry(retry_delay(rules.backoff, attempt, error, jitter))


def retry_delay(backoff: Backoff, attempt: int, error: BaseException, jitter: float) -> float:
    """The backoff after failed attempt ``attempt``, stretched to the error's ``retry_after``."""
    delay = jitter * backoff.ceiling(attempt)
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int | float) and retry_after > delay:
        delay = float(retry_after)
    return delay


def error_code(error: BaseException) -> str:
    """The error's ``error_code`` (``THROTTLING``, ``TIMEOUT``, ...), ``SDK_CLIENT_ERROR`` for others."""
    code = getattr(error, "error_code", None)
    return code if isinstance(code, str) else "SDK_CLIENT_ERROR"


def error_message(error: BaseException, limit: int = MAX_ERROR_MESSAGE) -> str:
    """Why it failed, as dead letters and logs tell it: the error's text with secrets masked (and
    its type first when it is not one of eventbus's errors), cut to ``limit`` characters."""
    return redact.error_text(error, limit)
