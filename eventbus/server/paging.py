"""``NextToken``/``Limit`` paging, as the List operations answer it.

A token is opaque to clients: here it is the name the previous page ended with, so a page stays
correct when items are added or removed between calls (names are sorted and unique).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from eventbus.server.errors import ApiError

__all__ = ["page"]

T = TypeVar("T")

#: AWS's ``LimitMax100``; without ``Limit`` a page holds this many.
MAX_LIMIT = 100


def page(
    items: Sequence[T], params: dict[str, Any], key: Callable[[T], str], *, limit_max: int = MAX_LIMIT
) -> tuple[list[T], str | None]:
    """The page of ``items`` (sorted by ``key``) that ``params``' ``NextToken`` and ``Limit`` ask for."""
    limit = params.get("Limit", limit_max)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= limit_max:
        raise ApiError(
            "ValidationException",
            f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: "
            f"Member must have value between 1 and {limit_max}",
        )
    ordered = sorted(items, key=key)
    token = params.get("NextToken")
    if token is not None:
        after = _read(token)
        ordered = [item for item in ordered if key(item) > after]
    chunk = ordered[:limit]
    more = len(ordered) > limit
    return chunk, (_write(key(chunk[-1])) if more and chunk else None)


def _write(name: str) -> str:
    return base64.urlsafe_b64encode(("v1:" + name).encode()).decode()


def _read(token: object) -> str:
    try:
        if not isinstance(token, str):
            raise ValueError
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, binascii.Error, UnicodeError):
        text = ""
    if not text.startswith("v1:"):
        raise ApiError("ValidationException", "The NextToken provided is not valid.")
    return text[3:]
