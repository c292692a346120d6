"""Fixtures for the pipe tests: asyncio by default (nats-py and uvicorn need it)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import pytest

from eventbus.pipes import Pipe


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def eventually(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Wait until ``check()`` holds: bounded generously, as it is expected to hold soon (a
    stalled machine only makes it later; the bound is for a test that would hang)."""
    with anyio.move_on_after(timeout):
        while not check():
            await anyio.sleep(0.01)
        return
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def settled(pipe: Pipe, count: int, timeout: float = 30.0) -> dict[str, int]:
    """Wait until ``count`` records have reached an end (delivered, filtered, skipped, dead, dropped)."""

    def done() -> bool:
        m = pipe.metrics()
        return m["delivered"] + m["filtered_out"] + m["skipped"] + m["dead_lettered"] + m["dropped"] >= count

    await eventually(done, timeout, f"{count} records to settle in {pipe!r}: {pipe.metrics()}")
    return pipe.metrics()


def sqs_body(payload: Mapping[str, Any]) -> Any:
    try:
        return json.loads(payload["body"])
    except ValueError:
        return payload["body"]
