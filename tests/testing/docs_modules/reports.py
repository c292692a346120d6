"""The report functions the docs' config examples name."""

from typing import Any


def nightly(event: dict[str, Any]) -> None:
    return None


def build(batch: list[Any]) -> None:
    return None
