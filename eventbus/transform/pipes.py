"""EventBridge Pipes input templates: inline ``<$.path>`` placeholders and ``<aws.pipes.*>``.

Same quoting rules as a rule's InputTransformer (see ``eventbus.transform.template``). Two Pipes
rules on top: a path may reach into a string that holds JSON (implicit body parsing, as for an
SQS ``body`` or a Kinesis ``data``), and ``<aws.pipes.event.json>`` is the record with such fields
decoded, present only when the record is JSON at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from eventbus.transform.paths import MISSING, CompiledPath, _decode, compile_path
from eventbus.transform.target_input import MAX_TEMPLATE, utc_now_text
from eventbus.transform.template import CompiledTemplate

__all__ = ["PipeTemplate"]

PIPE_ARN: Final = "aws.pipes.pipe-arn"
PIPE_NAME: Final = "aws.pipes.pipe-name"
SOURCE_ARN: Final = "aws.pipes.source-arn"
ENRICHMENT_ARN: Final = "aws.pipes.enrichment-arn"
TARGET_ARN: Final = "aws.pipes.target-arn"
INGESTION_TIME: Final = "aws.pipes.event.ingestion-time"
EVENT: Final = "aws.pipes.event"
EVENT_JSON: Final = "aws.pipes.event.json"
RESERVED: Final = frozenset(
    {PIPE_ARN, PIPE_NAME, SOURCE_ARN, ENRICHMENT_ARN, TARGET_ARN, INGESTION_TIME, EVENT, EVENT_JSON}
)

# Encoded payload fields of source records: SQS ``body``; Kinesis, Amazon MQ and our own
# queue records ``data``.
_ENCODED_FIELDS: Final = ("body", "data")


def _as_json(record: Any) -> Any:
    """``<aws.pipes.event.json>``: the record with its encoded fields decoded, or MISSING."""
    if isinstance(record, str):
        decoded = _decode(record)
        return MISSING if decoded is record else decoded
    if isinstance(record, Mapping):
        out = dict(record)
        for name in _ENCODED_FIELDS:
            value = out.get(name)
            if isinstance(value, str):
                out[name] = _decode(value)
        return out
    return record


class PipeTemplate:
    """A Pipes ``InputTemplate`` for the enrichment or the target, compiled once."""

    __slots__ = ("_compiled", "_paths", "template")

    def __init__(self, template: str) -> None:
        if not template:
            raise ValueError("InputTemplate must have length greater than or equal to 1.")
        if len(template) > MAX_TEMPLATE:
            raise ValueError(f"InputTemplate must have length less than or equal to {MAX_TEMPLATE}.")
        self.template = template
        self._compiled = CompiledTemplate(template, label="the pipe")
        self._paths: dict[str, CompiledPath] = {}
        for name in self._compiled.names:
            if name in RESERVED:
                continue
            if not name.startswith("$"):
                raise ValueError(f"InputTemplate contains invalid placeholder {name}.")
            try:
                self._paths[name] = compile_path(name)
            except ValueError:
                raise ValueError(f"InputTemplate contains invalid JSONPath placeholder {name}.") from None

    def render(
        self,
        record: Mapping[str, Any] | list[Any] | str,
        *,
        pipe_name: str,
        pipe_arn: str,
        source_arn: str,
        enrichment_arn: str | None = None,
        target_arn: str,
        ingestion_time: str | None = None,
    ) -> str:
        """The payload for one record; ``TransformError`` when AWS would deliver nothing.

        ``enrichment_arn`` is None for a pipe without enrichment (the variable is then empty);
        ``ingestion_time`` left out means now.
        """
        values: dict[str, Any] = {}
        for name in self._compiled.names:
            path = self._paths.get(name)
            if path is not None:
                values[name] = path.extract(record, decode_strings=True)
            elif name == PIPE_ARN:
                values[name] = pipe_arn
            elif name == PIPE_NAME:
                values[name] = pipe_name
            elif name == SOURCE_ARN:
                values[name] = source_arn
            elif name == ENRICHMENT_ARN:
                values[name] = MISSING if enrichment_arn is None else enrichment_arn
            elif name == TARGET_ARN:
                values[name] = target_arn
            elif name == INGESTION_TIME:
                values[name] = ingestion_time if ingestion_time is not None else utc_now_text()
            elif name == EVENT:
                values[name] = record
            elif name == EVENT_JSON:
                values[name] = _as_json(record)
        return self._compiled.render(values)

    def __repr__(self) -> str:
        return f"PipeTemplate({len(self.template)} characters, {len(self._compiled.names)} placeholders)"
