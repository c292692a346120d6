"""Functions the tests reference as '<this module>:<name>' or by object."""

from __future__ import annotations

import time
from typing import Any

calls: list[Any] = []


def echo(event: Any) -> Any:
    calls.append(event)
    return {"got": event}


async def async_echo(event: Any) -> Any:
    return {"async": event}


def fail(event: Any) -> Any:
    raise ValueError("bad input")


def slow(event: Any) -> Any:
    time.sleep(0.5)
    return "late"


not_callable = 42
