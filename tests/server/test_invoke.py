"""POST /invoke/ROUTE against a real server: answers by target kind, timeouts, failures, API keys,
rate limits, body limits, the cache, the concurrency limit and streamed answers."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventbus.bus.clock import ManualClock
from eventbus.testing import running_server

from .conftest import write
from .helpers import LiveServer
from .invoke_helpers import sse_events, wait_for_file, write_handlers

KEY = "route-key-not-a-real-secret-1"


class Echo:
    """An HTTP endpoint answering ``{"seen": BODY}`` (or plain text for a body of ``text``)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                text = b"plain words" if body == b'"text"' else json.dumps({"seen": json.loads(body)}).encode()
                self.send_response(200)
                self.send_header("content-length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def echo() -> Iterator[Echo]:
    endpoint = Echo()
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, echo: Echo, clock: ManualClock) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("invoke")
    module = write_handlers(folder, "invoke_sync_handlers")
    config = write(
        folder,
        "invoke.yaml",
        f"""
runtime: {{python_path: ["."]}}
targets:
  model: {{function: {{function: "{module}:echo"}}}}
  inbox: {{queue: {{type: memory, name: invoke-test-inbox}}}}
invoke:
  jobs: {{type: memory}}
  routes:
    echo: {{target: {{ref: model}}}}
    proxy: {{target: {{function: {{function: "{module}:proxy"}}}}}}
    raw: {{target: {{function: {{function: "{module}:raw"}}}}}}
    fails: {{target: {{function: {{function: "{module}:fails"}}}}}}
    nothing: {{target: {{function: {{function: "{module}:nothing"}}}}}}
    queue: {{target: {{ref: inbox}}}}
    remote: {{target: {{http: {{endpoint: "{echo.url}/answer"}}}}}}
    slow: {{target: {{function: {{function: "{module}:forever"}}}}, timeout: 0.2}}
    keyed:
      target: {{ref: model}}
      api_keys: ["{KEY}", "another-route-key-not-real"]
      rate_limit: {{per_second: 1, burst: 2}}
    small: {{target: {{ref: model}}, max_body_bytes: 100}}
    cached: {{target: {{function: {{function: "{module}:counted"}}}}, cache: {{ttl: 60}}}}
    one-at-a-time:
      target: {{function: {{function: "{module}:waits"}}}}
      max_concurrency: 1
      max_wait: 0
    queued:
      target: {{function: {{function: "{module}:waits"}}}}
      max_concurrency: 1
      max_wait: 60
    tokens: {{target: {{function: {{function: "{module}:tokens"}}}}}}
    sync-tokens: {{target: {{function: {{function: "{module}:sync_tokens"}}}}}}
""",
    )
    with running_server(config, clock=clock) as server:
        yield server


@pytest.fixture
def client(served: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=60) as http:
        yield http


def test_a_function_answers_its_return_value_as_json(client: httpx.Client) -> None:
    answer = client.post("/invoke/echo", json={"prompt": "hi"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"echo": {"prompt": "hi"}}
    # A body that is not JSON reaches the function as text; an empty one as null.
    assert client.post("/invoke/echo", content=b"plain").json() == {"echo": "plain"}
    assert client.post("/invoke/echo").json() == {"echo": None}


def test_answers_of_other_shapes_and_kinds(client: httpx.Client) -> None:
    proxy = client.post("/invoke/proxy", json={})
    assert (proxy.status_code, proxy.headers["x-from"], proxy.text) == (201, "function", "made")
    raw = client.post("/invoke/raw", json={})
    assert (raw.headers["content-type"], raw.content) == ("application/octet-stream", b"\x00\x01\x02")
    assert client.post("/invoke/nothing", json={}).json() is None
    # A queue answers the ids of the messages it kept: one a request.
    ids = client.post("/invoke/queue", json={"n": 1}).json()
    assert isinstance(ids, list) and len(ids) == 1 and isinstance(ids[0], str)
    # An http target's answer is its response body: JSON parsed, anything else a JSON string.
    assert client.post("/invoke/remote", json={"q": 2}).json() == {"seen": {"q": 2}}
    assert client.post("/invoke/remote", json="text").json() == "plain words"


def test_a_target_that_fails_is_502_and_one_too_slow_is_504(client: httpx.Client) -> None:
    failed = client.post("/invoke/fails", json={})
    assert failed.status_code == 502
    assert failed.json() == {
        "error": "TargetFailed",
        "reason": "Function fails raised ValueError: the model is out of tokens",
    }
    slow = client.post("/invoke/slow", json={})
    assert slow.status_code == 504
    assert slow.json() == {"error": "TimedOut", "reason": "Route slow did not answer within 0.2 seconds."}


def test_answers_are_counted_in_the_metrics(client: httpx.Client) -> None:
    client.post("/invoke/echo", json=1)
    client.post("/invoke/fails", json=1)
    exposition = client.get("/metrics").text
    assert 'eventbus_api_requests_total{api="invoke",code="OK",operation="echo"}' in exposition
    assert 'eventbus_api_requests_total{api="invoke",code="TargetFailed",operation="fails"}' in exposition
    assert 'eventbus_target_deliveries_total{bus="invoke",outcome="delivered",rule="echo",target="target"}' in exposition


def test_an_unknown_route_is_404(client: httpx.Client) -> None:
    answer = client.post("/invoke/nowhere", json={})
    assert answer.status_code == 404
    assert answer.json()["error"] == "RouteNotFound"
    assert "echo" in answer.json()["reason"]


def test_api_keys_are_required_and_never_shown(
    client: httpx.Client, served: Any, caplog: pytest.LogCaptureFixture
) -> None:
    missing = client.post("/invoke/keyed", json={})
    assert missing.status_code == 401
    assert missing.json() == {"error": "MissingApiKey", "reason": "Route keyed needs an API key in the X-Api-Key header."}
    wrong = client.post("/invoke/keyed", json={}, headers={"X-Api-Key": "not-it"})
    assert (wrong.status_code, wrong.json()["error"]) == (403, "InvalidApiKey")
    assert client.post("/invoke/keyed", json=1, headers={"X-Api-Key": "another-route-key-not-real"}).json() == {"echo": 1}
    route = served.server.invoke.routes["keyed"]
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("eventbus.test").info("route %r spec %r", route, route.spec)
    assert KEY not in caplog.text and KEY not in repr(route.spec) and "**********" in repr(route.spec)


def test_each_key_has_its_token_bucket_on_the_injected_clock(client: httpx.Client, clock: ManualClock) -> None:
    other = {"X-Api-Key": "another-route-key-not-real"}
    mine = {"X-Api-Key": KEY}
    clock.advance(3600)  # whatever other tests spent is refilled
    assert [client.post("/invoke/keyed", json=1, headers=mine).status_code for _ in range(2)] == [200, 200]
    refused = client.post("/invoke/keyed", json=1, headers=mine)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == "RateLimited"
    assert "1 requests a second (bursts of 2) for each key" in refused.json()["reason"]
    # Another key has its own bucket.
    assert client.post("/invoke/keyed", json=1, headers=other).status_code == 200
    clock.advance(0.5)
    assert client.post("/invoke/keyed", json=1, headers=mine).status_code == 429
    clock.advance(0.5)
    assert client.post("/invoke/keyed", json=1, headers=mine).status_code == 200


def test_a_body_over_the_limit_is_413(client: httpx.Client) -> None:
    assert client.post("/invoke/small", content=b"x" * 100).status_code == 200
    refused = client.post("/invoke/small", content=b"x" * 101)
    assert refused.status_code == 413
    assert refused.json() == {
        "error": "RequestTooLarge",
        "reason": "Route small takes request bodies of at most 100 bytes.",
    }
    # Sent in chunks, without a length: counted as it comes.
    chunked = client.post("/invoke/small", content=iter([b"x" * 60, b"x" * 60]))
    assert chunked.status_code == 413


def test_the_cache_answers_the_same_request_until_its_ttl(client: httpx.Client, clock: ManualClock, tmp_path: Path) -> None:
    body = json.dumps({"log": str(tmp_path / "calls.log")})
    first = client.post("/invoke/cached", content=body)
    assert (first.headers["x-cache"], first.json()) == ("MISS", {"calls": 1})
    again = client.post("/invoke/cached", content=body)
    assert (again.headers["x-cache"], again.json()) == ("HIT", {"calls": 1})
    other = client.post("/invoke/cached", content=body + " ")  # another body: another key
    assert (other.headers["x-cache"], other.json()) == ("MISS", {"calls": 2})
    clock.advance(59.9)
    assert client.post("/invoke/cached", content=body).headers["x-cache"] == "HIT"
    clock.advance(0.1)
    expired = client.post("/invoke/cached", content=body)
    assert (expired.headers["x-cache"], expired.json()) == ("MISS", {"calls": 3})


def _in_thread(call: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread, out


def test_past_max_concurrency_a_request_is_refused_at_once_with_max_wait_0(served: Any, tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    body = {"started": str(started), "release": str(release)}
    with httpx.Client(base_url=served.url, timeout=60) as first, httpx.Client(base_url=served.url, timeout=60) as second:
        thread, out = _in_thread(lambda: first.post("/invoke/one-at-a-time", json=body))
        wait_for_file(started)
        refused = second.post("/invoke/one-at-a-time", json=body)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"] == "TooManyInvocations"
        release.touch()
        thread.join(60)
    assert out[0].json() == {"released": True, "runs": 1}


def test_past_max_concurrency_a_request_waits_its_turn_up_to_max_wait(served: Any, tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    body = {"started": str(started), "release": str(release)}
    with httpx.Client(base_url=served.url, timeout=60) as a, httpx.Client(base_url=served.url, timeout=60) as b:
        first, first_out = _in_thread(lambda: a.post("/invoke/queued", json=body))
        wait_for_file(started)
        second, second_out = _in_thread(lambda: b.post("/invoke/queued", json=body))
        release.touch()
        first.join(60)
        second.join(60)
    # Both answered, one after the other (the second ran once the first ended).
    assert sorted(r.json()["runs"] for r in first_out + second_out) == [1, 2]


def test_a_generator_function_streams_as_server_sent_events(client: httpx.Client) -> None:
    with client.stream(
        "POST", "/invoke/tokens", json={"words": ["The", " answer", " is", " 42"]}, headers={"Accept": "text/event-stream"}
    ) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = sse_events(answer)
    assert events == [
        ("chunk", {"index": 0, "chunk": "The"}),
        ("chunk", {"index": 1, "chunk": " answer"}),
        ("chunk", {"index": 2, "chunk": " is"}),
        ("chunk", {"index": 3, "chunk": " 42"}),
        ("result", {"result": "The answer is 42"}),
    ]
    # Without asking for a stream: the whole answer, the strings joined.
    assert client.post("/invoke/tokens", json={"words": ["a", "b"]}).json() == "ab"
    # A sync generator's chunks that are not all strings are listed.
    assert client.post("/invoke/sync-tokens", json={}).json() == [{"token": 1}, {"token": 2}]


def test_a_stream_asked_of_a_plain_function_is_one_chunk_and_errors_are_events(client: httpx.Client) -> None:
    with client.stream("POST", "/invoke/echo", json=5, headers={"Accept": "text/event-stream"}) as answer:
        assert sse_events(answer) == [("chunk", {"index": 0, "chunk": {"echo": 5}}), ("result", {"result": {"echo": 5}})]
    with client.stream("POST", "/invoke/fails", json=5, headers={"Accept": "text/event-stream"}) as answer:
        assert answer.status_code == 200
        assert sse_events(answer) == [
            ("error", {"error": "TargetFailed", "reason": "Function fails raised ValueError: the model is out of tokens"})
        ]


def test_routes_without_keys_follow_the_servers_own_authentication(tmp_path: Path) -> None:
    module = write_handlers(tmp_path, "invoke_auth_handlers")
    config = write(
        tmp_path,
        "auth.yaml",
        f"""
runtime: {{python_path: ["."]}}
server: {{api_keys: ["server-bearer-key-not-real"]}}
invoke:
  jobs: {{type: memory}}
  routes:
    open-to-bearers: {{target: {{function: {{function: "{module}:echo"}}}}}}
""",
    )
    # In a process of its own: this process serves the module's server already.
    server = LiveServer([config], cwd=tmp_path)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        refused = client.post("/invoke/open-to-bearers", json=1)
        assert refused.status_code == 403
        assert refused.json()["error"] == "MissingAuthenticationTokenException"
        allowed = client.post(
            "/invoke/open-to-bearers", json=1, headers={"Authorization": "Bearer server-bearer-key-not-real"}
        )
        assert allowed.json() == {"echo": 1}
    assert server.stop() == 0
