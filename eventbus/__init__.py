"""eventbus: Amazon EventBridge's event model for any Python application."""

from eventbus.errors import (
    ConfigError,
    DeliveryError,
    EventBusError,
    InvalidEventError,
    NonRetryableError,
    PatternError,
    ResourceNotFoundError,
    RetryableError,
    TargetPermissionError,
    TargetTimeoutError,
    ThrottledError,
    TransformError,
)
from eventbus.patterns import Matcher, Pattern

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DeliveryError",
    "EventBusError",
    "InvalidEventError",
    "Matcher",
    "NonRetryableError",
    "Pattern",
    "PatternError",
    "ResourceNotFoundError",
    "RetryableError",
    "TargetPermissionError",
    "TargetTimeoutError",
    "ThrottledError",
    "TransformError",
    "__version__",
]
