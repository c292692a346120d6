"""Run as a child process: receive one message from a SQLite queue, report it, then hang."""

from __future__ import annotations

import json
import sys
import time

import anyio

from eventbus.targets.queue import SqliteQueue


async def main(path: str, visibility: float) -> None:
    queue = SqliteQueue(path, visibility_timeout=visibility)
    messages = await queue.receive(max_messages=1, wait_seconds=5)
    print(json.dumps([m.body for m in messages]), flush=True)
    time.sleep(60)  # the parent kills us before we ever delete


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], float(sys.argv[2]))
