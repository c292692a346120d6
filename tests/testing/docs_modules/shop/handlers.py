"""The handlers the docs' config examples name; they only record what they are given."""

from typing import Any

handled: list[Any] = []


def acknowledge(event: dict[str, Any]) -> None:
    handled.append(event)


def ship(event: dict[str, Any]) -> dict[str, Any]:
    return {"shipped": event["detail"].get("order")}


def handle(batch: list[Any]) -> None:
    handled.extend(batch)
