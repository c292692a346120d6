"""examples/genai-front: a stand-in model behind ``eventbus serve``'s invocation front, driven
with httpx and a WebSocket client: keys, the cache, streaming, a rate limit, jobs."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from websockets.sync.client import connect

from eventbus.config import load_config
from tests.examples.helpers import PATIENCE, Running, eventbus, example, running

FOLDER = example("genai-front")
WEB, CLI, BATCH = "web-key-for-trying-it", "cli-key-for-trying-it", "batch-key-for-trying-it"


def model() -> ModuleType:
    spec = importlib.util.spec_from_file_location("genai_front_model", FOLDER / "model.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_config_is_valid() -> None:
    config = load_config(FOLDER / "front.yaml", import_functions=False)  # the server below imports it
    assert sorted(config.model.invoke.routes) == ["batch", "chat"]


def test_its_config_tests_pass(tmp_path: Path) -> None:
    # The keys and the rate front.yaml falls back to, which its test file relies on.
    env = {"GENAI_FIRST_TOKEN": "0.05", "GENAI_TOKEN_DELAY": "0.01", "GENAI_RATE": "1", "GENAI_BURST": "5"}
    env |= {"GENAI_KEY_WEB": WEB, "GENAI_KEY_CLI": CLI, "GENAI_KEY_BATCH": BATCH}
    result = eventbus("test", str(FOLDER / "front.yaml"), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed, 0 failed" in result.stdout
    # Jobs and state stay in memory in a case: nothing is written where it runs.
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def front(tmp_path: Path) -> Iterator[tuple[str, Running]]:
    """``eventbus serve front.yaml`` on a free port, in a copy of the example (its state file is
    the copy's), with a quick model and a rate limit no busy machine can refill in the test."""
    folder = tmp_path / "genai-front"
    shutil.copytree(FOLDER, folder, ignore=shutil.ignore_patterns(".eventbus", "__pycache__"))
    env = {
        "GENAI_FIRST_TOKEN": "0.05",
        "GENAI_TOKEN_DELAY": "0.01",
        "GENAI_RATE": "0.001",
        "GENAI_BURST": "6",
    }
    with running("serve", "front.yaml", "--port", "0", cwd=folder, env=env) as served:
        line = served.wait_for("serving on ")
        found = re.search(r"serving on (http://\S+)", line)
        assert found, line
        yield found.group(1), served


def test_the_sync_route_answers_streams_caches_and_guards(front: tuple[str, Running]) -> None:
    url, served = front
    words = model().reply("hello", 5)
    with httpx.Client(base_url=url, timeout=PATIENCE) as client:
        request = {"prompt": "hello", "max_tokens": 5}
        first = client.post("/invoke/chat", json=request, headers={"X-Api-Key": WEB})
        assert (first.status_code, first.json(), first.headers["X-Cache"]) == (200, "".join(words), "MISS")
        again = client.post("/invoke/chat", json=request, headers={"X-Api-Key": CLI})  # any key: one cache
        assert (again.json(), again.headers["X-Cache"]) == ("".join(words), "HIT")

        with client.stream(
            "POST",
            "/invoke/chat",
            json={"prompt": "stream it", "max_tokens": 4},
            headers={"X-Api-Key": WEB, "Accept": "text/event-stream"},
        ) as stream:
            events = [line for line in stream.iter_lines() if line.startswith(("event: ", "data: "))]
        chunks = [
            json.loads(d[6:])["chunk"]
            for e, d in zip(events[::2], events[1::2], strict=True)
            if e == "event: chunk"
        ]
        assert chunks == model().reply("stream it", 4)
        assert events[-2:] == [
            "event: result",
            "data: " + json.dumps({"result": "".join(chunks)}, separators=(",", ":")),
        ]

        missing = client.post("/invoke/chat", json=request)
        assert (missing.status_code, missing.json()["error"]) == (401, "MissingApiKey")
        wrong = client.post("/invoke/chat", json=request, headers={"X-Api-Key": BATCH})  # another route's key
        assert (wrong.status_code, wrong.json()["error"]) == (403, "InvalidApiKey")
        bad = client.post("/invoke/chat", json={"max_tokens": 3}, headers={"X-Api-Key": WEB})
        assert bad.status_code == 502 and "prompt" in bad.json()["reason"]
        assert (
            client.post("/jobs/chat", json=request, headers={"X-Api-Key": WEB}).status_code == 404
        )  # sync only

        # WEB has used 3 of its burst of 6 (the first call, the stream, the bad request; a cached
        # answer counts too): three more, then 429 (the bucket refills one token in 1,000 s here).
        for _ in range(3):
            assert client.post("/invoke/chat", json=request, headers={"X-Api-Key": WEB}).status_code == 200
        limited = client.post("/invoke/chat", json=request, headers={"X-Api-Key": WEB})
        assert (limited.status_code, limited.json()["error"]) == (429, "RateLimited")
        assert int(limited.headers["Retry-After"]) >= 1
        # Buckets are per key: CLI still has tokens.
        assert client.post("/invoke/chat", json=request, headers={"X-Api-Key": CLI}).status_code == 200
    assert served.process.poll() is None


def test_the_async_route_gives_a_job_to_follow_over_a_websocket_and_to_poll(
    front: tuple[str, Running],
) -> None:
    url, _ = front
    words = model().reply("write me a poem", 12)
    key = {"X-Api-Key": BATCH}
    with httpx.Client(base_url=url, timeout=PATIENCE) as client:
        accepted = client.post(
            "/jobs/batch", json={"prompt": "write me a poem", "max_tokens": 12}, headers=key
        )
        assert accepted.status_code == 202, accepted.text
        location = accepted.headers["Location"]
        assert (
            accepted.json()["status"] in ("PENDING", "RUNNING")
            and location == f"/jobs/{accepted.json()['id']}"
        )

        with connect(
            url.replace("http://", "ws://") + location + "/events", additional_headers=key
        ) as socket:
            messages = [json.loads(message) for message in socket]
        final = messages[-1]["data"]
        assert (final["status"], final["result"]) == ("SUCCEEDED", "".join(words))
        streamed = [m["data"]["chunk"] for m in messages if m["event"] == "chunk"]
        assert streamed == words[len(words) - len(streamed) :]  # a follower may join after the first words
        assert {m["data"]["status"] for m in messages if m["event"] == "state"} <= {
            "PENDING",
            "RUNNING",
            "SUCCEEDED",
        }

        assert client.get(location, headers=key).json() == final
        assert client.get(location).status_code == 401  # reading a job needs its route's key
        assert client.get("/jobs/no-such-job", headers=key).status_code == 404

        cached = client.post("/jobs/batch", json={"prompt": "write me a poem", "max_tokens": 12}, headers=key)
        assert cached.status_code == 202
        polled = client.get(cached.headers["Location"], headers=key).json()
        assert (polled["status"], polled["result"], polled.get("cached")) == (
            "SUCCEEDED",
            "".join(words),
            True,
        )
