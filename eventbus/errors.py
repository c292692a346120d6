"""The exception hierarchy.

It doubles as documentation: whether a delivery failure is retried is decided by the class of the
exception a target raises (``RetryableError`` or ``NonRetryableError``), never by a flag.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BusClosedError",
    "BusValidationError",
    "IllegalStatusError",
    "ResourceAlreadyExistsError",
    "ResourceMissingError",
    "StateError",
    "StateLockedError",
    "LimitExceededError",
    "LogClosedError",
    "RuleNotFoundError",
    "ConfigError",
    "DeliveryError",
    "EventBusError",
    "InvalidEventError",
    "NonRetryableError",
    "PatternError",
    "ResourceNotFoundError",
    "RetryableError",
    "TargetPermissionError",
    "TargetTimeoutError",
    "ThrottledError",
    "TransformError",
]


class EventBusError(Exception):
    """Base class of every error this library raises on purpose."""


class PatternError(EventBusError, ValueError):
    """An invalid event pattern. ``str()`` is AWS's message, e.g.
    ``Event pattern is not valid. Reason: Empty arrays are not allowed``."""

    error_code = "InvalidEventPatternException"


class InvalidEventError(EventBusError, ValueError):
    """An event that cannot be read: malformed JSON, not UTF-8, not an object, or nested too deeply."""


class TransformError(EventBusError):
    """A target input could not be produced; AWS would deliver nothing for this event."""


class ConfigError(EventBusError, ValueError):
    """A configuration that cannot be used as written."""


class DeliveryError(EventBusError):
    """A target failed to take a delivery.

    ``error_code`` follows the dead-letter attribute ``ERROR_CODE`` of EventBridge (for example
    ``TIMEOUT``, ``THROTTLING``, ``NO_RESOURCE``); ``retry_after`` is the delay in seconds a target
    asked for (an HTTP ``Retry-After``), honoured by the retry policy.
    """

    error_code = "SDK_CLIENT_ERROR"

    def __init__(self, message: str, *, error_code: str | None = None, retry_after: float | None = None):
        super().__init__(message)
        if error_code is not None:
            self.error_code = error_code
        self.retry_after = retry_after

    @property
    def message(self) -> str:
        return str(self)


class RetryableError(DeliveryError):
    """A failure that may pass on a later attempt: the retry policy tries again."""


class ThrottledError(RetryableError):
    """The target asked us to slow down (HTTP 429 and the like)."""

    error_code = "THROTTLING"


class TargetTimeoutError(RetryableError):
    """The target did not answer in time."""

    error_code = "TIMEOUT"


class NonRetryableError(DeliveryError):
    """A failure that no retry will fix: the event goes straight to the dead-letter destination."""


class ResourceNotFoundError(NonRetryableError):
    """The target does not exist (any more)."""

    error_code = "NO_RESOURCE"


class TargetPermissionError(NonRetryableError):
    """The target refused us for lack of permission."""

    error_code = "NO_PERMISSIONS"


class BusValidationError(EventBusError, ValueError):
    """The whole request is refused (AWS ``ValidationException``), e.g. too many entries."""

    error_code = "ValidationException"


class LimitExceededError(EventBusError, ValueError):
    """A quota (rules a bus, targets a rule) would be exceeded (AWS ``LimitExceededException``)."""

    error_code = "LimitExceededException"


class ResourceMissingError(EventBusError, LookupError):
    """A named rule, archive or replay does not exist (AWS ``ResourceNotFoundException``).

    (``ResourceNotFoundError`` is the target-side failure: a delivery's destination is gone.)
    """

    error_code = "ResourceNotFoundException"


class RuleNotFoundError(ResourceMissingError):
    """The named rule does not exist (AWS ``ResourceNotFoundException``)."""


class ResourceAlreadyExistsError(EventBusError, ValueError):
    """An archive or replay of that name exists already (AWS ``ResourceAlreadyExistsException``)."""

    error_code = "ResourceAlreadyExistsException"


class IllegalStatusError(EventBusError, ValueError):
    """The resource is not in a state that allows the call, e.g. cancelling a finished replay
    (AWS ``IllegalStatusException``)."""

    error_code = "IllegalStatusException"


class StateError(EventBusError):
    """A state file (the SQLite backend's database) cannot be used: not a database, written by a
    newer version, read-only, full. The message names the file, the reason and what to do."""

    error_code = "InternalFailure"


class StateLockedError(StateError):
    """Another process serves this bus from the same state file: two would deliver everything twice."""


class BusClosedError(EventBusError, RuntimeError):
    """``put_events`` on a bus that is not running (never started, or shutting down).

    ``error_code`` is ``ServiceUnavailableException``: the bus may take events again once it (or
    the process serving it) is back, so HTTP clients hear a 503 they may retry.
    """

    error_code = "ServiceUnavailableException"


class LogClosedError(EventBusError, RuntimeError):
    """An event log's ``append`` after ``close``; the bus answers callers ``BusClosedError``."""


class BackendError(EventBusError):
    """A bus's storage cannot be used: its servers do not answer, refuse the credentials, or hold
    streams made with other settings. The message names the servers, or the setting to change."""
