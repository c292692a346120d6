"""``eventbus serve`` as a process: it drains on SIGTERM; ``running_server`` runs it in a thread."""

from __future__ import annotations

import json
import time
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
    assert server.lines[-3:] == [
        "eventbus: SIGTERM received; stopping: draining accepted events",
        "eventbus: outcomes: 200 event(s) accepted; 200 target invocation(s), 0 retried, 0 failed for good "
        "(0 sent to a dead-letter queue, 0 dropped)",
        "eventbus: stopped; every accepted event was delivered",
    ]


STUCK = """
defaults:
  bus: {drain_timeout: 600, backoff: {base: 0.05, cap: 0.2}}
buses:
  stuck:
    rules:
      all:
        pattern: {source: [s]}
        targets:
          - http: {endpoint: "%s/stuck"}
"""


def test_a_second_signal_during_the_drain_stops_at_once_and_the_state_file_keeps_the_rest(tmp_path: Path) -> None:
    import signal

    from .helpers import Receiver

    receiver = Receiver(status=503)
    config = write(tmp_path, "stuck.yaml", STUCK % receiver.url)
    server = LiveServer([config], cwd=tmp_path)
    event_id = server.client().put_events(Entries=[{"Source": "s", "DetailType": "t", "Detail": "{}", "EventBusName": "stuck"}])["Entries"][0]["EventId"]
    receiver.wait_for(2)  # failing and retrying
    server.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 60
    while "eventbus: SIGTERM received; stopping: draining accepted events" not in server.lines:
        assert time.monotonic() < deadline, server.lines
        time.sleep(0.01)
    # The drain would wait for up to 600 s on a target that keeps failing: a second signal ends it.
    assert server.stop(timeout=60) == 0, server.lines
    state = tmp_path / ".eventbus" / "stuck.db"
    assert server.lines[-1] == (
        f"eventbus: SIGTERM received again: stopping now; 1 pending delivery(ies) are kept in {state} for the next "
        "start (nothing lost); every other accepted event was delivered"
    ), server.lines
    assert server.lines[-2].startswith("eventbus: outcomes: 1 event(s) accepted;"), server.lines

    # The next start resumes the delivery.
    receiver.status = 200
    seen = len(receiver.requests)
    again = LiveServer([config], cwd=tmp_path)
    arrived = receiver.wait_for(seen + 1)[seen:]
    assert json.loads(arrived[-1]["body"])["id"] == event_id
    assert again.stop() == 0, again.lines
    receiver.close()


def test_running_server_serves_in_a_thread_and_stops(tmp_path: Path) -> None:
    config = write(tmp_path, "t.yaml", "buses:\n  threaded: {}\n")
    with running_server(config) as server:
        names = [b["Name"] for b in server.client().list_event_buses()["EventBuses"]]
        assert names == ["default", "threaded"]
        url = server.url
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/healthz", timeout=5)


def test_running_server_on_a_state_file_keeps_what_the_api_made(tmp_path: Path) -> None:
    state = tmp_path / "kept.db"
    with running_server(state=state) as server:
        server.client().create_event_bus(Name="made-once")
    assert state.exists()
    with running_server(state=state) as server:
        names = [b["Name"] for b in server.client().list_event_buses()["EventBuses"]]
    assert names == ["default", "made-once"]


def test_a_second_signal_writes_what_buses_in_memory_leave_and_exits_one(tmp_path: Path) -> None:
    import signal

    from .helpers import Receiver

    receiver = Receiver(status=503)
    config = write(tmp_path, "memory.yaml", "runtime: {backend: memory}\n" + STUCK % receiver.url)
    abandoned = tmp_path / "left.jsonl"
    server = LiveServer([config], cwd=tmp_path, args=["--abandoned", str(abandoned)])
    event_id = server.client().put_events(Entries=[{"Source": "s", "DetailType": "t", "Detail": "{}", "EventBusName": "stuck"}])["Entries"][0]["EventId"]
    receiver.wait_for(2)
    server.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 60
    while "eventbus: SIGTERM received; stopping: draining accepted events" not in server.lines:
        assert time.monotonic() < deadline, server.lines
        time.sleep(0.01)
    assert server.stop(timeout=60) == 1, server.lines
    assert server.lines[-1] == (
        "eventbus: SIGTERM received again: stopping now; 1 accepted event(s) kept in memory were not delivered; "
        f"their ids and the events are in {abandoned}"
    ), server.lines
    assert [json.loads(line)["event"]["id"] for line in abandoned.read_text().splitlines()] == [event_id]
    assert not (tmp_path / ".eventbus").exists()
    receiver.close()
