"""``eventbus serve`` as a process: it drains on SIGTERM; ``running_server`` runs it in a thread."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from eventbus.testing import running_server

from .conftest import write
from .helpers import LiveServer


def test_sigterm_drains_what_was_accepted_and_exits_zero(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    config = write(
        tmp_path,
        "drain.yaml",
        f"""
buses:
  drain:
    rules:
      all:
        pattern: {{source: [d]}}
        targets:
          - file: {{path: "{out}"}}
            input_path: $.id
""",
    )
    server = LiveServer([config], cwd=tmp_path)
    events = server.client()
    ids = []
    for _ in range(20):
        answer = events.put_events(Entries=[{"Source": "d", "DetailType": "t", "Detail": "{}", "EventBusName": "drain"}] * 10)
        ids += [e["EventId"] for e in answer["Entries"]]
    assert server.stop() == 0
    assert sorted(json.loads(line) for line in out.read_text().splitlines()) == sorted(ids)
    assert server.lines[-2:] == ["eventbus: SIGTERM received; stopping: draining accepted events", "eventbus: stopped"]


def test_running_server_serves_in_a_thread_and_stops(tmp_path: Path) -> None:
    config = write(tmp_path, "t.yaml", "buses:\n  threaded: {}\n")
    with running_server(config) as server:
        names = [b["Name"] for b in server.client().list_event_buses()["EventBuses"]]
        assert names == ["default", "threaded"]
        url = server.url
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/healthz", timeout=5)
