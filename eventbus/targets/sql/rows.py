"""From payloads to rows: each column's value is a JSONPath over the payload or a context field.

A path that matches nothing gives ``NULL``. Objects and arrays (and anything in a ``json``
column) are stored as compact JSON text; other JSON values are passed as they are and the
dialect binds them (see ``bind`` in each dialect module).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventbus.targets._common import parse_payload
from eventbus.targets.base import DeliveryContext
from eventbus.targets.sql.statements import ColumnType
from eventbus.transform.paths import MISSING, CompiledPath, compile_path

__all__ = ["CONTEXT_FIELDS", "RowMaker", "check_context_field"]

#: What a column may take from the delivery instead of the payload (``attributes.NAME`` too).
CONTEXT_FIELDS = ("kind", "name", "arn", "target_id", "target_arn", "attempt", "event_id", "attributes")


def check_context_field(field: str) -> str:
    """``field`` if it names a context value; ``ValueError`` naming the choices otherwise."""
    head, dot, rest = field.partition(".")
    if field in CONTEXT_FIELDS or (head == "attributes" and dot and rest):
        return field
    raise ValueError(f"{field!r} is not a context field: use one of {', '.join(CONTEXT_FIELDS)} or attributes.NAME")


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    path: CompiledPath | None
    context: str | None
    type: ColumnType | None


class RowMaker:
    """Turns a batch of payloads into one tuple of column values per payload."""

    def __init__(self, columns: Sequence[tuple[str, str | None, str | None, ColumnType | None]]) -> None:
        """``columns``: ``(name, JSONPath or None, context field or None, type or None)`` each."""
        self.columns = [
            _Column(name, compile_path(path) if path is not None else None, context, type_)
            for name, path, context, type_ in columns
        ]
        self._needs_payload = any(c.path is not None for c in self.columns)

    def rows(self, payloads: Sequence[str], context: DeliveryContext) -> list[tuple[Any, ...]]:
        out = []
        for index, payload in enumerate(payloads):
            document = parse_payload(payload) if self._needs_payload else None
            values = []
            for column in self.columns:
                if column.path is not None:
                    value = column.path.extract(document)
                else:
                    assert column.context is not None
                    value = _context_value(column.context, context, index)
                values.append(_stored(value, column.type))
            out.append(tuple(values))
        return out


def _context_value(field: str, context: DeliveryContext, index: int) -> Any:
    if field == "event_id":
        return context.event_ids[index] if index < len(context.event_ids) else None
    if field == "attributes":
        return dict(context.attributes)
    if field.startswith("attributes."):
        return context.attributes.get(field[len("attributes.") :])
    return getattr(context, field)


def _stored(value: Any, type_: ColumnType | None) -> Any:
    if value is MISSING or value is None:
        return None
    if type_ == "json" or isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value
