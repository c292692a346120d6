"""EventBridge Pipes input templates: inline ``<$.path>`` placeholders and ``<aws.pipes.*>``.

Same quoting rules as a rule's InputTransformer (see ``eventbus.transform.template``). Two Pipes
rules on top: paths see the record's payload (an SQS ``body``, a Kinesis ``data``) decoded when it
holds JSON (implicit body parsing), and ``<aws.pipes.event.json>`` is that decoded record, with a
value only when the payload is JSON at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from eventbus.transform.paths import MISSING, CompiledPath, compile_path, decode_json_text
from eventbus.transform.template import MAX_TEMPLATE, CompiledTemplate, utc_now_text

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

# Payload fields a source may deliver encoded: SQS ``body``; Kinesis and Amazon MQ ``data``.
_PAYLOAD_FIELDS: Final = ("body", "data")


def _decoded(record: Any) -> tuple[Any, bool]:
    """The record with its payload decoded (implicit body parsing), and whether it is JSON.

    Paths look into the decoded record, so ``<$.body.key>`` reaches into an SQS body that holds
    JSON text. A text record, or a payload field holding text that is not a JSON object or
    array, is left as it is and makes the record "not JSON" for ``<aws.pipes.event.json>``.
    """
    if isinstance(record, str):
        decoded = decode_json_text(record)
        return decoded, decoded is not record
    if isinstance(record, Mapping):
        out = dict(record)
        is_json = True
        for name in _PAYLOAD_FIELDS:
            value = out.get(name)
            if isinstance(value, str):
                decoded = decode_json_text(value)
                is_json = is_json and decoded is not value
                out[name] = decoded
        return out, is_json
    return record, True


class PipeTemplate:
    """A Pipes ``InputTemplate`` for the enrichment or the target, compiled once."""

    __slots__ = ("_compiled", "_needs_view", "_paths", "template")

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
        self._needs_view = bool(self._paths) or EVENT_JSON in self._compiled.names

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
        view, is_json = _decoded(record) if self._needs_view else (record, False)
        for name in self._compiled.names:
            path = self._paths.get(name)
            if path is not None:
                values[name] = path.extract(view)
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
                values[name] = view if is_json else MISSING
        return self._compiled.render(values)

    def __repr__(self) -> str:
        return f"PipeTemplate({len(self.template)} characters, {len(self._compiled.names)} placeholders)"
