"""Source records: what a pipe reads from its source, and the view its filter matches.

A record is the AWS-shaped dict a stage sees (an SQS message with ``messageId`` and ``body``, a
stream record with ``eventID`` and ``data``, an S3 "Object Created" event), plus what the pipe
needs around it: the identifier a target names in ``batchItemFailures``, when the record entered
the source (its age), which delivery attempt this is, and the source's own handle for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from eventbus import json_strict
from eventbus.transform.paths import decode_json_text

__all__ = ["PAYLOAD_FIELDS", "SourceRecord", "aws_time", "filter_view", "record_json"]

#: Fields that may hold a JSON document as text: SQS ``body``, Kinesis and Amazon MQ ``data``.
PAYLOAD_FIELDS: Final = ("body", "data")


@dataclass(slots=True, eq=False)
class SourceRecord:
    """One record in a pipe, from the moment it is received until the source is told its fate.

    Records compare by identity: the same message received twice is two records.
    """

    #: The record as the filter, the enrichment and the target see it (JSON-serialisable).
    record: dict[str, Any]
    #: What a target names in ``batchItemFailures`` (``messageId``, ``eventID``, ``id``).
    record_id: str
    #: When the record entered the source; its age decides ``MaximumRecordAgeInSeconds``.
    ingestion_time: datetime
    #: 1 on the first delivery, 2 on the first retry, ...
    attempt: int = 1
    #: The source's handle (a receipt handle, a NATS message); opaque to the pipe.
    token: Any = field(default=None, repr=False)


def filter_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record as a filter pattern sees it: a payload field holding JSON is parsed.

    As in Pipes, ``{"body": {"status": ["ok"]}}`` reaches inside an SQS body that holds a JSON
    object, while a body that is not JSON is matched as the string it is. The same rule (JSON
    objects and arrays are parsed) is what input templates apply, so a filter and a template
    never disagree about a record's shape.
    """
    view = dict(record)
    for name in PAYLOAD_FIELDS:
        value = view.get(name)
        if isinstance(value, str):
            view[name] = decode_json_text(value)
    return view


def record_json(record: Mapping[str, Any] | Any) -> str:
    """A record (or an enrichment result) as the JSON text a stage receives.

    ``ValueError`` for what no target could deliver: NaN, an infinite number, a lone surrogate.
    """
    return json_strict.dumps(record)


def aws_time(moment: datetime) -> str:
    """A time the way EventBridge writes it: ``2026-01-01T00:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
