"""Reading what the enrichment and the target answer, as Pipes reads it.

- The enrichment's response becomes the target's input: ``""``, ``{}``, ``[]`` (and ``None``, a
  Python function that returns nothing) skip the target; a list fans out, one target input an
  element (``[{}]`` is one empty payload); anything else is one input.
- The target's response may name the records that failed: ``{"batchItemFailures":
  [{"itemIdentifier": "<id>"}]}``. As Lambda reads it, an answer that cannot be understood
  (an entry without an identifier, an identifier not in the batch) fails the whole batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

from eventbus.errors import NonRetryableError, RetryableError

__all__ = [
    "ALL_FAILED",
    "BatchItemFailure",
    "PipeTransformError",
    "batch_item_failures",
    "enrichment_items",
]


class BatchItemFailure(RetryableError):
    """The target named this record in ``batchItemFailures``."""

    error_code = "BATCH_ITEM_FAILURE"


class PipeTransformError(NonRetryableError):
    """An input template produced nothing deliverable for this record; no retry can help."""

    error_code = "TRANSFORMATION_ERROR"


class _AllFailed:
    def __repr__(self) -> str:
        return "ALL_FAILED"


#: ``batch_item_failures`` result: the whole batch counts as failed.
ALL_FAILED: Final = _AllFailed()


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


def batch_item_failures(response: Any, known_ids: Iterable[str]) -> list[str] | _AllFailed | None:
    """The identifiers a target reported as failed; ``None`` when it reported none."""
    value = _parsed(response)
    if not isinstance(value, dict) or "batchItemFailures" not in value:
        return None
    entries = value["batchItemFailures"]
    if entries is None or entries == []:
        return None
    if not isinstance(entries, list):
        return ALL_FAILED
    known = set(known_ids)
    failed: list[str] = []
    for entry in entries:
        ident = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(ident, str) or not ident or ident not in known:
            return ALL_FAILED
        if ident not in failed:
            failed.append(ident)
    return failed
