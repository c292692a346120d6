"""The one retry decision and the one dead-letter builder, shared by the bus and the pipes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventbus.bus.delivery.dead_letter import dead_letter_attributes, dead_letter_context
from eventbus.bus.delivery.retry import (
    MAX_ERROR_MESSAGE,
    Backoff,
    GiveUp,
    Retry,
    RetryPolicy,
    RetryRules,
    decide,
    error_code,
)
from eventbus.errors import NonRetryableError, ResourceNotFoundError, RetryableError, ThrottledError
from eventbus.pipes import PipeRetryPolicy

BACKOFF = Backoff(base=1.0, cap=8.0)
RULES = RetryRules(max_retries=3, max_age=600, backoff=BACKOFF)


def test_a_retryable_failure_waits_the_jittered_backoff() -> None:
    assert decide(RULES, 1, 0.0, RuntimeError("x"), jitter=0.5) == Retry(0.5)
    assert decide(RULES, 3, 10.0, RetryableError("x"), jitter=1.0) == Retry(4.0)
    assert decide(RULES, 1, 0.0, RuntimeError("x"), jitter=0.0) == Retry(0.0)


def test_retry_after_stretches_the_wait_never_shortens_it() -> None:
    assert decide(RULES, 1, 0.0, ThrottledError("later", retry_after=30), jitter=0.5) == Retry(30.0)
    assert decide(RULES, 3, 0.0, ThrottledError("soon", retry_after=0.1), jitter=1.0) == Retry(4.0)


def test_the_retry_limit_is_checked_before_the_age_limit() -> None:
    assert decide(RULES, 4, 0.0, RuntimeError("x"), jitter=0.5) == GiveUp("MaximumRetryAttempts")
    assert decide(RULES, 4, 10_000.0, RuntimeError("x"), jitter=0.5) == GiveUp("MaximumRetryAttempts")
    assert decide(RULES, 2, 600.0, RuntimeError("x"), jitter=0.5) == GiveUp("MaximumEventAgeInSeconds")


def test_non_retryable_errors_give_up_at_once_without_a_condition() -> None:
    for error in (NonRetryableError("no"), ResourceNotFoundError("gone")):
        assert decide(RULES, 1, 0.0, error, jitter=0.5) == GiveUp(None)


def test_policies_of_rules_and_pipes() -> None:
    rules = RetryRules.of(RetryPolicy(MaximumRetryAttempts=0, MaximumEventAgeInSeconds=60), BACKOFF)
    assert (rules.max_retries, rules.max_age, rules.age_condition) == (0, 60, "MaximumEventAgeInSeconds")
    assert decide(rules, 1, 0.0, RuntimeError("x"), jitter=0.5) == GiveUp("MaximumRetryAttempts")
    unlimited = PipeRetryPolicy(MaximumRetryAttempts=-1, MaximumRecordAgeInSeconds=-1).rules(BACKOFF)
    assert unlimited.max_retries is None and unlimited.max_age is None
    assert isinstance(decide(unlimited, 10_000, 10.0**9, RuntimeError("x"), jitter=0.5), Retry)
    aged = PipeRetryPolicy(MaximumRecordAgeInSeconds=0).rules(BACKOFF)
    assert decide(aged, 1, 0.0, RuntimeError("x"), jitter=0.5) == GiveUp("MaximumRecordAgeInSeconds")


@given(
    attempt=st.integers(1, 10_000),
    age=st.floats(0, 10**6),
    jitter=st.floats(0, 1, exclude_max=True),
    retry_after=st.none() | st.floats(0, 10**4),
)
def test_a_retry_never_waits_beyond_the_cap_or_the_asked_delay(
    attempt: int, age: float, jitter: float, retry_after: float | None
) -> None:
    rules = RetryRules(max_retries=None, max_age=None, backoff=BACKOFF)
    decision = decide(rules, attempt, age, ThrottledError("x", retry_after=retry_after), jitter=jitter)
    assert isinstance(decision, Retry)
    assert 0 <= decision.delay <= max(BACKOFF.cap, retry_after or 0)
    if retry_after is not None:
        assert decision.delay >= retry_after


def test_dead_letter_attributes_are_aws_names() -> None:
    error = ThrottledError("x" * (MAX_ERROR_MESSAGE + 10))
    attributes = dead_letter_attributes(
        error, retry_attempts=2, condition="MaximumRetryAttempts", origin={"RULE_ARN": "r", "TARGET_ARN": "t"}
    )
    assert attributes == {
        "ERROR_CODE": "THROTTLING",
        "ERROR_MESSAGE": "x" * MAX_ERROR_MESSAGE,
        "RULE_ARN": "r",
        "TARGET_ARN": "t",
        "RETRY_ATTEMPTS": "2",
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
    }
    context = dead_letter_context(
        ValueError("boom"),
        retry_attempts=0,
        condition=None,
        origin={"PIPE_ARN": "p", "TARGET_ARN": "t", "STAGE": "TARGET"},
        name="pipe",
        arn="p",
        target_id="target",
        target_arn="t",
        event_id="e-1",
    )
    assert context.kind == "dead-letter" and context.event_ids == ("e-1",) and context.attempt == 1
    assert dict(context.attributes) == {
        "ERROR_CODE": "SDK_CLIENT_ERROR",
        "ERROR_MESSAGE": "ValueError: boom",  # not one of eventbus's errors: its type says more
        "PIPE_ARN": "p",
        "TARGET_ARN": "t",
        "STAGE": "TARGET",
        "RETRY_ATTEMPTS": "0",
    }
    assert error_code(RetryableError("x", error_code="TIMEOUT")) == "TIMEOUT"
