"""SIGKILL a bus on SQLite at random moments, restart it each time: nothing accepted is lost, and
only deliveries in flight at a kill are made twice.

The child (kill_worker.py) delivers every event to two HTTP targets on a loopback receiver that
records each request: ``/all`` takes everything; ``/flaky`` fails the first attempt of every
event, and every attempt of one event in seven, which ends dead-lettered once its two retries
are spent. The child puts events until it is killed, writing the ids each PutEvents call
accepted after the call answered. After the kills, a last run drains what is left.
"""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from eventbus.targets.queue import SqliteQueue

WORKER = Path(__file__).with_name("kill_worker.py")
#: A delivery made twice must have been in flight at a kill: the kill came within this long of
#: the first reception (generous: a busy machine stalls), and the second came after the kill.
IN_FLIGHT = 5.0


class Receiver:
    """Records ``(path, event id, n, status, time)`` for every request, on 127.0.0.1."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, int, int, float]] = []
        self.attempts: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                try:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                except ValueError:
                    return  # cut short by a kill
                event_id, n = body["id"], int(body["detail"]["n"])
                with receiver.lock:
                    status = 200
                    if self.path == "/flaky":
                        receiver.attempts[event_id] += 1
                        if n % 7 == 0 or receiver.attempts[event_id] == 1:
                            status = 503
                    receiver.requests.append((self.path, event_id, n, status, time.monotonic()))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self, path: str) -> dict[str, list[float]]:
        """Successful receptions by event id: their times."""
        out: dict[str, list[float]] = defaultdict(list)
        with self.lock:
            for where, event_id, _, status, when in self.requests:
                if where == path and status == 200:
                    out[event_id].append(when)
        return out


def start(tmp: Path, receiver: Receiver, mode: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, str(WORKER), str(tmp / "state.db"), str(tmp / "dlq.db"), receiver.url, str(tmp / "accepted.jsonl"), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    assert line == "ready", f"the worker did not start ({line!r})"
    return child


def run_kills(tmp: Path, kills: int, seed: int) -> None:
    rnd = random.Random(seed)
    receiver = Receiver()
    kill_times: list[float] = []
    try:
        for _ in range(kills):
            child = start(tmp, receiver, "put")
            time.sleep(rnd.uniform(0.1, 0.6))
            kill_times.append(time.monotonic())
            child.kill()
            child.wait(30)
        last = start(tmp, receiver, "drain")
        assert last.stdout is not None
        out, _ = last.communicate(timeout=180)
        assert last.returncode == 0 and "drained" in out
    finally:
        receiver.server.shutdown()

    accepted: dict[str, int] = {}
    for line in (tmp / "accepted.jsonl").read_text(encoding="utf-8").splitlines():
        call = json.loads(line)
        for n, event_id in zip(call["n"], call["ids"], strict=True):
            assert event_id is not None, "PutEvents failed an entry"
            accepted[event_id] = n
    assert len(accepted) >= 20, "too few events were put to test anything"

    everything, flaky = receiver.received("/all"), receiver.received("/flaky")
    # Every accepted event reached /all; /flaky had it, or dead-lettered it for the right reason.
    missing = [i for i in accepted if i not in everything]
    assert missing == [], f"{len(missing)} accepted event(s) never reached /all"
    letters = _dead_letters(tmp / "dlq.db")
    dead_lettered = 0
    for event_id, n in accepted.items():
        if event_id in letters:
            # Its retries spent: two, or more when kills cut attempts short (each counted).
            condition, retries = letters[event_id]
            assert condition == "MaximumRetryAttempts" and int(retries) >= 2, f"event {n}: {letters[event_id]}"
            # Delivered too only when the dead letter was in flight at a kill: written to the
            # queue, not yet acknowledged in the state file, so a restart tried once more.
            dead_lettered += 1
        else:
            assert n % 7 != 0, f"event {n} (failing every attempt) was not dead-lettered"
            assert event_id in flaky, f"event {n} neither reached /flaky nor was dead-lettered"
    assert dead_lettered >= sum(1 for n in accepted.values() if n % 7 == 0)
    # Twice only for a delivery in flight at a kill: answered shortly before it, made again after.
    for path, got in (("/all", everything), ("/flaky", flaky)):
        for event_id, times in got.items():
            for first, again in itertools.pairwise(times):
                # The receiver may record a request a moment after the kill of the process that
                # sent it: "near" goes both ways.
                assert any(abs(k - first) <= IN_FLIGHT and again > k for k in kill_times), (
                    f"{path} got {event_id} twice with no kill between"
                )


def _dead_letters(path: Path) -> dict[str, tuple[str | None, str]]:
    import anyio

    async def read() -> dict[str, tuple[str | None, str]]:
        queue = SqliteQueue(path)
        try:
            found = await queue.peek()
        finally:
            await queue.aclose()
        return {
            json.loads(m.body)["id"]: (m.attributes.get("EXHAUSTED_RETRY_CONDITION"), m.attributes["RETRY_ATTEMPTS"])
            for m, _ in found
        }

    if not path.exists():
        return {}
    return anyio.run(read)


@pytest.mark.timeout(600)
def test_sigkill_twenty_times_loses_nothing_accepted(tmp_path: Path) -> None:
    run_kills(tmp_path, kills=20, seed=13)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sigkill_a_hundred_times_loses_nothing_accepted(tmp_path: Path) -> None:
    run_kills(tmp_path, kills=100, seed=1313)
