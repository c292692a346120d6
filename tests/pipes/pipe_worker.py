"""Run as a child process: a pipe from a SQLite queue to a function that logs each record's
number to a file and then hangs on the batch, until the parent kills the process."""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio

from eventbus.pipes import Pipe, PipeConfig
from eventbus.targets.function import FunctionTargetConfig


async def main(queue_path: str, out_path: str) -> None:
    calls = 0

    async def deliver(batch: list[Any]) -> None:
        nonlocal calls
        calls += 1
        with open(out_path, "a", encoding="utf-8") as out:
            for record in batch:
                out.write(f"{json.loads(record['body'])['n']}\n")
        if calls >= 2:
            await anyio.sleep(60)  # stuck mid-batch: the parent kills us here

    config = PipeConfig(
        name="worker",
        source={"queue": {"type": "sqlite", "path": queue_path, "visibility_timeout": 1}},
        target=FunctionTargetConfig(function=deliver),
        batch_size=5,
    )
    async with Pipe(config):
        await anyio.sleep(60)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
