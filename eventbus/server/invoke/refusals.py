"""``Refusal``: why the invocation front did not run a request, answered as one small JSON object.

Every refusal is ``{"error": CODE, "reason": TEXT}`` with its HTTP status (and ``Retry-After``
where waiting helps), so a client can branch on ``error`` and show ``reason``. Reasons are masked
of every registered secret, like every message eventbus makes.
"""

from __future__ import annotations

import json
import math

from starlette.responses import Response

from eventbus import redact

__all__ = ["Refusal", "error_body"]


class Refusal(Exception):
    """An answer other than the target's: a status, a code (``RateLimited``...) and a reason."""

    def __init__(self, status: int, code: str, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = redact.mask(reason)
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"Refusal({self.status}, {self.code!r}, {self.reason!r})"

    def response(self, headers: dict[str, str] | None = None) -> Response:
        extra = dict(headers or {})
        if self.retry_after is not None:
            # Whole seconds (RFC 9110), rounded up so that a client waiting that long finds room.
            extra["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return Response(error_body(self.code, self.reason), self.status, extra, "application/json")


def error_body(code: str, reason: str) -> bytes:
    return json.dumps({"error": code, "reason": redact.mask(reason)}, ensure_ascii=False).encode()
