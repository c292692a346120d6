"""The function target of examples/quickstart.yaml (found through its ``runtime.python_path``)."""

from __future__ import annotations

from typing import Any

#: What ``acknowledge`` saw, for the demo to print.
ACKNOWLEDGED: list[str] = []


def acknowledge(event: dict[str, Any]) -> dict[str, Any]:
    """Acknowledge an order: a real service would email the customer here."""
    detail = event.get("detail", {})
    ACKNOWLEDGED.append(str(detail.get("id")))
    return {"acknowledged": detail.get("id"), "customer": detail.get("customer")}
