"""POST /jobs/ROUTE and what follows against a real server: polling, server-sent events, a real
WebSocket client, unknown ids, keys, the cache and the retention."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from eventbus.bus.clock import ManualClock
from eventbus.testing import running_server

from .conftest import write
from .invoke_helpers import poll, sse_events, wait_for_file, write_handlers

KEY = "jobs-route-key-not-real"


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("jobs")
    module = write_handlers(folder, "invoke_jobs_handlers")
    config = write(
        folder,
        "jobs.yaml",
        f"""
runtime: {{python_path: ["."]}}
invoke:
  jobs: {{path: state/jobs.db, retention: 3600}}
  routes:
    echo: {{target: {{function: {{function: "{module}:echo"}}}}}}
    fails: {{target: {{function: {{function: "{module}:fails"}}}}}}
    slow: {{target: {{function: {{function: "{module}:forever"}}}}, timeout: 0.2}}
    waits: {{target: {{function: {{function: "{module}:waits"}}}}}}
    tokens: {{target: {{function: {{function: "{module}:gated_tokens"}}}}}}
    keyed: {{target: {{function: {{function: "{module}:echo"}}}}, api_keys: ["{KEY}"]}}
    cached: {{target: {{function: {{function: "{module}:counted"}}}}, cache: {{ttl: 60}}}}
    sync-only: {{target: {{function: {{function: "{module}:echo"}}}}, jobs: false}}
""",
    )
    with running_server(config, clock=clock) as server:
        yield server


@pytest.fixture
def client(served: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=60) as http:
        yield http


def _ws_url(served: Any, path: str) -> str:
    return served.url.replace("http://", "ws://") + path


def test_a_job_is_accepted_with_202_and_polled_until_it_succeeds(client: httpx.Client) -> None:
    answer = client.post("/jobs/echo", json={"prompt": "hi"})
    assert answer.status_code == 202
    doc = answer.json()
    assert answer.headers["location"] == f"/jobs/{doc['id']}"
    assert (doc["status"], doc["route"], doc["attempts"]) == ("PENDING", "echo", 0)
    done = poll(client, answer.headers["location"])
    assert done["status"] == "SUCCEEDED"
    assert done["result"] == {"echo": {"prompt": "hi"}}
    assert done["attempts"] == 1
    assert done["created"].endswith("Z") and done["updated"] >= done["created"]


def test_a_job_fails_with_the_reason(client: httpx.Client) -> None:
    failed = poll(client, client.post("/jobs/fails", json={}).headers["location"])
    assert failed["status"] == "FAILED"
    assert failed["error"] == "TargetFailed"
    assert failed["reason"] == "Function fails raised ValueError: the model is out of tokens"
    assert "result" not in failed
    timed_out = poll(client, client.post("/jobs/slow", json={}).headers["location"])
    assert (timed_out["status"], timed_out["error"]) == ("FAILED", "TimedOut")


def test_unknown_jobs_and_routes_are_404(client: httpx.Client, served: Any) -> None:
    for path in ("/jobs/no-such-job", "/jobs/no-such-job/events"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert answer.json()["error"] == "JobNotFound"
    with pytest.raises(InvalidStatus) as refused:
        connect(_ws_url(served, "/jobs/no-such-job/events"), open_timeout=30).close()
    assert refused.value.response.status_code == 404
    assert json.loads(refused.value.response.body or b"{}")["error"] == "JobNotFound"
    assert client.post("/jobs/nowhere", json={}).status_code == 404
    sync_only = client.post("/jobs/sync-only", json={})
    assert (sync_only.status_code, sync_only.json()["error"]) == (404, "RouteNotFound")
    assert "takes no jobs" in sync_only.json()["reason"]


def test_server_sent_events_follow_states_and_chunks(client: httpx.Client, tmp_path: Path) -> None:
    release = tmp_path / "release"
    location = client.post("/jobs/tokens", json={"release": str(release)}).headers["location"]
    events: list[tuple[str, Any]] = []
    with client.stream("GET", f"{location}/events") as stream:
        lines = stream.iter_lines()
        # Read until the first chunk arrived, then let the function go on.
        for line in lines:
            if line.startswith("data: ") and '"chunk"' in line:
                release.touch()
                break
        rest = httpx.Response(200, content="\n".join(lines).encode())
        events = sse_events(rest)
    assert events[-1][0] == "state"
    last = events[-1][1]
    assert (last["status"], last["result"]) == ("SUCCEEDED", "first second")
    assert ("chunk", {"index": 1, "chunk": " second"}) in events


def test_a_stream_joined_late_gets_the_state_and_the_chunks_so_far(client: httpx.Client, tmp_path: Path) -> None:
    release = tmp_path / "release"
    location = client.post("/jobs/tokens", json={"release": str(release)}).headers["location"]
    # Wait until it runs and yielded its first chunk, then follow it.
    with client.stream("GET", f"{location}/events") as first:
        for line in first.iter_lines():
            if '"chunk"' in line:
                break
    with client.stream("GET", f"{location}/events") as stream:
        lines = stream.iter_lines()
        seen = []
        for line in lines:
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
            if len(seen) == 2:
                release.touch()
                break
        seen += [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert seen[0]["status"] == "RUNNING"
    assert seen[1] == {"index": 0, "chunk": "first"}
    assert seen[2] == {"index": 1, "chunk": " second"}
    assert seen[3]["status"] == "SUCCEEDED"


def test_a_websocket_follows_a_job_to_its_result(client: httpx.Client, served: Any, tmp_path: Path) -> None:
    release = tmp_path / "release"
    location = client.post("/jobs/tokens", json={"release": str(release)}).headers["location"]
    messages = []
    with connect(_ws_url(served, f"{location}/events"), open_timeout=30) as socket:
        for raw in socket:
            message = json.loads(raw)
            messages.append(message)
            if message["event"] == "chunk" and message["data"]["index"] == 0:
                release.touch()
    # The server closed it (normally) once the job ended.
    assert messages[0]["event"] == "state"
    assert messages[-1] == {"event": "state", "data": poll(client, location)}
    assert messages[-1]["data"]["result"] == "first second"
    assert {"event": "chunk", "data": {"index": 1, "chunk": " second"}} in messages


def test_a_websocket_client_that_leaves_does_not_lose_the_job(client: httpx.Client, served: Any, tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    location = client.post("/jobs/waits", json={"started": str(started), "release": str(release)}).headers["location"]
    with connect(_ws_url(served, f"{location}/events"), open_timeout=30) as socket:
        first = json.loads(socket.recv(timeout=30))
        assert first["event"] == "state"
        wait_for_file(started)
    # Gone mid-job; the job goes on.
    release.touch()
    done = poll(client, location)
    assert (done["status"], done["result"]) == ("SUCCEEDED", {"released": True, "runs": 1})
    # And a new connection gets the outcome, then a normal close.
    with connect(_ws_url(served, f"{location}/events"), open_timeout=30) as socket:
        assert [json.loads(m) for m in socket] == [{"event": "state", "data": done}]


def test_jobs_of_a_keyed_route_need_its_key_to_be_read(client: httpx.Client, served: Any) -> None:
    assert client.post("/jobs/keyed", json=1).status_code == 401
    accepted = client.post("/jobs/keyed", json=1, headers={"X-Api-Key": KEY})
    location = accepted.headers["location"]
    assert client.get(location).status_code == 401
    assert client.get(location, headers={"X-Api-Key": "wrong"}).status_code == 403
    assert poll(client, location, headers={"X-Api-Key": KEY})["result"] == {"echo": 1}
    with pytest.raises(InvalidStatus) as refused:
        connect(_ws_url(served, f"{location}/events"), open_timeout=30).close()
    assert refused.value.response.status_code == 401
    with connect(_ws_url(served, f"{location}/events"), additional_headers={"X-Api-Key": KEY}, open_timeout=30) as socket:
        assert json.loads(socket.recv(timeout=30))["data"]["status"] == "SUCCEEDED"


def test_a_cached_answer_makes_a_job_that_has_succeeded_already(client: httpx.Client, tmp_path: Path) -> None:
    body = json.dumps({"log": str(tmp_path / "calls.log")})
    first = client.post("/jobs/cached", content=body)
    assert first.headers["x-cache"] == "MISS"
    assert poll(client, first.headers["location"])["result"] == {"calls": 1}
    again = client.post("/jobs/cached", content=body)
    assert (again.status_code, again.headers["x-cache"]) == (202, "HIT")
    assert again.json()["status"] == "SUCCEEDED"
    assert again.json()["result"] == {"calls": 1} and again.json()["cached"] is True
    # The synchronous route shares the cache.
    assert client.post("/invoke/cached", content=body).headers["x-cache"] == "HIT"


def test_finished_jobs_are_forgotten_after_the_retention(client: httpx.Client, clock: ManualClock) -> None:
    location = client.post("/jobs/echo", json=1).headers["location"]
    poll(client, location)
    clock.advance(3599)
    assert client.get(location).status_code == 200
    clock.advance(2)
    gone = client.get(location)
    assert (gone.status_code, gone.json()["error"]) == (404, "JobNotFound")
