"""The image functions the docs' config examples name."""

from typing import Any


def resize_batch(batch: list[Any]) -> None:
    return None
