"""Errors of the bus API itself, each carrying the ``error_code`` AWS answers with.

They subclass the shared hierarchy (and ``ValueError``/``LookupError``) so callers can catch them
broadly or by AWS's exception name.
"""

from __future__ import annotations

from eventbus.errors import EventBusError

__all__ = ["BusClosedError", "BusValidationError", "LimitExceededError", "RuleNotFoundError"]


class BusValidationError(EventBusError, ValueError):
    """The whole request is refused (AWS ``ValidationException``), e.g. too many entries."""

    error_code = "ValidationException"


class LimitExceededError(EventBusError, ValueError):
    """A quota (rules a bus, targets a rule) would be exceeded (AWS ``LimitExceededException``)."""

    error_code = "LimitExceededException"


class RuleNotFoundError(EventBusError, LookupError):
    """The named rule does not exist (AWS ``ResourceNotFoundException``)."""

    error_code = "ResourceNotFoundException"


class BusClosedError(EventBusError, RuntimeError):
    """``put_events`` on a bus that is not running (never started, or shutting down)."""
