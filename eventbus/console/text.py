"""How the console writes values: JSON for people, times in UTC."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

__all__ = ["pretty", "when"]


def pretty(value: Any, indent: str = "") -> str:
    """JSON, indented, with each object or array that fits on a short line kept on one."""
    flat = json.dumps(value, ensure_ascii=False, default=str)
    if len(flat) + len(indent) <= 72 or not isinstance(value, dict | list) or not value:
        return flat
    inner = indent + "  "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {pretty(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    items = [f"{inner}{pretty(v, inner)}" for v in value]
    return "[\n" + ",\n".join(items) + f"\n{indent}]"


def when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
