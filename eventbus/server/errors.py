"""``ApiError``: an error as the wire protocols answer it (AWS's code, message and HTTP status).

The server invents no error of its own for what the library already judges: an ``EventBusError``
carries AWS's code in ``error_code`` and AWS's wording in its message, and ``from_library`` only
carries them over. Errors that exist only on the wire (a malformed body, an unknown operation,
a bad signature) are made here, with AWS's codes.
"""

from __future__ import annotations

from pydantic import ValidationError

from eventbus import redact
from eventbus.errors import EventBusError, PatternError

__all__ = ["ApiError", "from_library"]


class ApiError(Exception):
    """Answered as ``{"__type": code, "message": message}`` (JSON 1.1) or its REST-JSON form."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = redact.mask(message)
        self.status = status

    def __repr__(self) -> str:
        return f"ApiError({self.code!r}, {self.message!r}, {self.status})"


def from_library(exc: Exception) -> ApiError:
    """The library's verdict, as the API answers it: its own code and message."""
    if isinstance(exc, ApiError):
        return exc
    code = getattr(exc, "error_code", None)
    if isinstance(exc, PatternError):
        code = "InvalidEventPatternException"
    if not isinstance(code, str) or not code:
        code = "ValidationException" if isinstance(exc, ValueError | EventBusError) else "InternalException"
    status = {"InternalException": 500, "ServiceUnavailableException": 503}.get(code, 400)
    text = _text(exc)
    return ApiError(code, text, status)


def _text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        # A model the library validates (a target, a connection): its own words, without pydantic's frame.
        errors = exc.errors(include_url=False, include_input=False)
        parts = []
        for error in errors:
            cause = error.get("ctx", {}).get("error")
            text = str(cause) if cause is not None else str(error["msg"])
            where = ".".join(str(p) for p in error["loc"])
            parts.append(text if cause is not None or not where else f"{where}: {text}")
        return "; ".join(parts)
    return str(exc).strip() or type(exc).__name__
