"""A bounded load test on loopback: 50,000 events through PutEvents from 8 concurrent keep-alive
clients; every accepted event is delivered exactly once.

Bounded in count (6,250 calls of 10 entries, each entry retried at most 20 times if throttled) and
in time (each call 60 s, the delivery wait 300 s); nothing depends on how fast the machine is.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from .conftest import write
from .helpers import LiveServer

EVENTS = 50_000
CLIENTS = 8
PER_CALL = 10


@pytest.mark.timeout(900)
def test_fifty_thousand_events_from_eight_clients_are_each_delivered_once(tmp_path: Path) -> None:
    out = tmp_path / "delivered.jsonl"
    config = write(
        tmp_path,
        "load.yaml",
        f"""
buses:
  load:
    settings: {{drain_timeout: 120}}
    rules:
      all:
        pattern: {{source: [load]}}
        targets:
          - file: {{path: "{out}"}}
            input_path: $.id
""",
    )
    server = LiveServer([config], cwd=tmp_path)
    accepted: list[list[str]] = [[] for _ in range(CLIENTS)]
    problems: list[str] = []

    def client(index: int) -> None:
        headers = {"X-Amz-Target": "AWSEvents.PutEvents", "Content-Type": "application/x-amz-json-1.1"}
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for call in range(EVENTS // CLIENTS // PER_CALL):
                pending = [
                    {"Source": "load", "DetailType": "tick", "Detail": json.dumps({"c": index, "n": call, "i": i}), "EventBusName": "load"}
                    for i in range(PER_CALL)
                ]
                for _ in range(20):
                    answer = http.post("/", json={"Entries": pending}, headers=headers)
                    if answer.status_code != 200:
                        problems.append(f"{answer.status_code}: {answer.text[:200]}")
                        return
                    retry = []
                    for entry, result in zip(pending, answer.json()["Entries"], strict=True):
                        if "EventId" in result:
                            accepted[index].append(result["EventId"])
                        elif result["ErrorCode"] == "ThrottlingException":
                            retry.append(entry)
                        else:
                            problems.append(str(result))
                    if not retry:
                        break
                    pending = retry
                    time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(600)
        assert problems == []
        ids = [event_id for ids in accepted for event_id in ids]
        assert len(ids) == EVENTS == len(set(ids))
        # Until the file holds as many lines as events were accepted (bounded), then stop (drains).
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if out.exists() and out.read_bytes().count(b"\n") >= EVENTS:
                break
            time.sleep(0.2)
    finally:
        code = server.stop(timeout=300)
    assert code == 0, "\n".join(server.lines[-20:])
    delivered = Counter(json.loads(line) for line in out.read_text(encoding="utf-8").splitlines())
    assert set(delivered) == set(ids)
    assert max(delivered.values()) == 1
