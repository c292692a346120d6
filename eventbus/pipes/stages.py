"""Reading what the enrichment and the target answer, as Pipes reads it.

- The enrichment's response becomes the target's input: ``""``, ``{}``, ``[]`` (and ``None``, a
  Python function that returns nothing) skip the target; a list fans out, one target input an
  element (``[{}]`` is one empty payload); anything else is one input.
- The target's response may name the records that failed: ``{"batchItemFailures":
  [{"itemIdentifier": "<id>"}]}``. As Lambda reads it, an answer that cannot be understood
  (an entry without an identifier, an identifier not in the batch) fails the whole batch; the
  ``Unreadable`` result says why, naming the identifiers the batch holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from eventbus.errors import NonRetryableError, RetryableError

__all__ = [
    "BatchItemFailure",
    "PipeTransformError",
    "Unreadable",
    "batch_item_failures",
    "enrichment_items",
]


class BatchItemFailure(RetryableError):
    """The target named this record in ``batchItemFailures``."""

    error_code = "BATCH_ITEM_FAILURE"


class PipeTransformError(NonRetryableError):
    """An input template produced nothing deliverable for this record; no retry can help."""

    error_code = "TRANSFORMATION_ERROR"


class Unreadable:
    """``batch_item_failures`` result: the answer cannot be understood, so the whole batch failed.

    ``reason`` says why, in words a target's author can act on.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Unreadable({self.reason!r})"


def _parsed(response: Any) -> Any:
    if isinstance(response, bytes | bytearray):
        response = bytes(response).decode("utf-8", "replace")
    if isinstance(response, str) and response.strip()[:1] in ("{", "["):
        try:
            return json.loads(response)
        except ValueError:
            return response
    return response


def enrichment_items(response: Any) -> list[Any] | None:
    """The target inputs an enrichment response stands for; ``None`` skips the target."""
    value = _parsed(response)
    if value is None or value == {} or value == [] or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, list):
        return value
    return [value]


def batch_item_failures(response: Any, known_ids: Iterable[str]) -> list[str] | Unreadable | None:
    """The identifiers a target reported as failed; ``None`` when it reported none."""
    value = _parsed(response)
    if not isinstance(value, dict) or "batchItemFailures" not in value:
        return None
    entries = value["batchItemFailures"]
    if entries is None or entries == []:
        return None
    if not isinstance(entries, list):
        return Unreadable(f"batchItemFailures must be a list, not {type(entries).__name__}")
    known = list(dict.fromkeys(known_ids))
    failed: list[str] = []
    for entry in entries:
        ident = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(ident, str) or not ident:
            return Unreadable(
                "each entry of batchItemFailures must be {\"itemIdentifier\": \"<messageId or eventID>\"}, "
                f"not {json.dumps(entry, default=str)[:200]}"
            )
        if ident not in known:
            shown = ", ".join(repr(k) for k in known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
            return Unreadable(
                f"batchItemFailures names {ident!r}, which is not a record of this batch; its records are "
                f"{shown} (each record's messageId or eventID: an enrichment must pass them through for "
                "the target to name them)"
            )
        if ident not in failed:
            failed.append(ident)
    return failed
