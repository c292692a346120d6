"""Functions the invocation front's tests route to (written beside each test's config), and
small clients: server-sent events read off a response, a job polled until it ends."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

#: Every function takes its instructions (files to write, files to wait for) in the request, so
#: tests drive servers in threads and in subprocesses alike.
HANDLERS = '''
import asyncio
import os


def echo(event):
    return {"echo": event}


async def instant(event):
    return event


def proxy(event):
    return {"statusCode": 201, "headers": {"X-From": "function"}, "body": "made"}


def raw(event):
    return bytes([0, 1, 2])


def fails(event):
    raise ValueError("the model is out of tokens")


def nothing(event):
    return None


def counted(event):
    with open(event["log"], "a") as log:
        log.write("call\\n")
    with open(event["log"]) as log:
        return {"calls": len(log.read().splitlines())}


async def waits(event):
    """Notes each run in event["started"], then waits until the file event["release"] exists."""
    with open(event["started"], "a") as started:
        started.write("run\\n")
    while not os.path.exists(event["release"]):
        await asyncio.sleep(0.01)
    with open(event["started"]) as started:
        return {"released": True, "runs": len(started.read().splitlines())}


async def forever(event):
    await asyncio.Event().wait()


async def tokens(event):
    for word in event.get("words", ["Hel", "lo"]):
        await asyncio.sleep(0)
        yield word


async def gated_tokens(event):
    """Yields one token, waits until event["release"] exists, yields another."""
    yield "first"
    while not os.path.exists(event["release"]):
        await asyncio.sleep(0.01)
    yield " second"


def sync_tokens(event):
    yield {"token": 1}
    yield {"token": 2}
'''

TERMINAL = {"SUCCEEDED", "FAILED"}


def write_handlers(folder: Path, name: str = "invoke_handlers") -> str:
    """The handlers as module ``name`` in ``folder`` (a config there names ``python_path: ["."]``)."""
    (folder / f"{name}.py").write_text(HANDLERS, encoding="utf-8")
    return name


def sse_events(response: httpx.Response) -> list[tuple[str, Any]]:
    """``(event, data)`` of each server-sent event, read to the end of the response."""
    events: list[tuple[str, Any]] = []
    name = "message"
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[len("data: ") :])))
            name = "message"
    return events


def poll(client: httpx.Client, location: str, *, headers: dict[str, str] | None = None, timeout: float = 60) -> dict[str, Any]:
    """GET ``location`` until the job ends (an AssertionError after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(location, headers=headers)
        assert answer.status_code == 200, answer.text
        doc: dict[str, Any] = answer.json()
        if doc["status"] in TERMINAL:
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"the job did not end in {timeout} s: {doc}")
        time.sleep(0.02)


def wait_for_file(path: Path, lines: int = 1, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and len(path.read_text().splitlines()) >= lines):
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not get {lines} line(s) in {timeout} s")
        time.sleep(0.01)
