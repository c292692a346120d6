"""PutEvents over HTTP: ``eventbus serve`` beside moto's server (``moto_server``), in one run.

Both servers get the same 100 rules through the same boto3 calls (PutRule with the bus
benchmark's patterns), then the same PutEvents calls of 10 entries:

- through boto3 (one client, sequential calls, as an application would make them);
- through raw keep-alive HTTP clients (httpx, 8 concurrent requests in flight).

Each measurement runs for at most ``--seconds`` and at most ``--calls`` calls, so the slow peer
costs seconds, not minutes. The servers run in subprocesses on free loopback ports. Run with the
bench environment (``make bench`` installs moto[server] there):
``.venv-bench/bin/python benchmarks/serve.py [--seconds S] [--calls N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent


def _bus_benchmark() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bus_benchmark", _HERE / "bus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_entries = _bus_benchmark().make_entries
pattern = _bus_benchmark().pattern

RULES = 100
ENTRIES_PER_CALL = 10
CONCURRENCY = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """A server subprocess; ``url`` once it answers."""

    def __init__(self, name: str, argv: list[str], url: str | None = None, cwd: str | None = None) -> None:
        self.name = name
        self.process = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=cwd
        )
        self.url = url or ""
        self.lines: list[str] = []
        found = threading.Event()

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.lines.append(line)
                match = re.search(r"serving on (http://\S+)", line)
                if match:
                    self.url = match.group(1)
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        try:
            self._wait(name, url, found)
        except BaseException:
            self.stop()  # never leave a server behind
            raise

    def _wait(self, name: str, url: str | None, found: threading.Event) -> None:
        if url is None:
            found.wait(60)
        import httpx

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.url:
                    httpx.get(self.url + ("/readyz" if name == "eventbus" else "/moto-api/"), timeout=2)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not start:\n{''.join(self.lines)}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def boto_client(url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "events",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 1}, read_timeout=120),
    )


def put_rules(url: str) -> None:
    client = boto_client(url)
    for i in range(RULES):
        client.put_rule(Name=f"rule-{i}", EventPattern=json.dumps(pattern(i)))


def calls(count: int) -> list[list[dict[str, Any]]]:
    entries = make_entries(count * ENTRIES_PER_CALL)
    return [entries[i : i + ENTRIES_PER_CALL] for i in range(0, len(entries), ENTRIES_PER_CALL)]


def through_boto3(url: str, batches: list[list[dict[str, Any]]], seconds: float) -> tuple[float, int]:
    client = boto_client(url)
    client.put_events(Entries=batches[0])  # connection and first-call costs out of the timing
    accepted = 0
    start = time.perf_counter()
    for batch in batches:
        answer = client.put_events(Entries=batch)
        accepted += len(batch) - answer["FailedEntryCount"]
        if time.perf_counter() - start > seconds:
            break
    return accepted / (time.perf_counter() - start), accepted


def through_httpx(url: str, batches: list[list[dict[str, Any]]], seconds: float) -> tuple[float, int]:
    """``CONCURRENCY`` threads, each with its own keep-alive ``httpx.Client``, taking calls from one
    queue. (httpx's sync client costs less than half the CPU of its async one per request, and on a
    machine this size the client's CPU is what the server shares.)"""
    import httpx

    bodies = [json.dumps({"Entries": batch}).encode() for batch in batches]
    headers = {"X-Amz-Target": "AWSEvents.PutEvents", "Content-Type": "application/x-amz-json-1.1"}
    # moto reads the account from a signature-shaped Authorization header; it verifies nothing.
    headers["Authorization"] = (
        "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/events/aws4_request, "
        "SignedHeaders=host, Signature=" + "0" * 64
    )
    queue = list(reversed(bodies))
    lock = threading.Lock()
    accepted = 0
    failures: list[str] = []
    start = 0.0
    ready = threading.Barrier(CONCURRENCY + 1)

    def worker() -> None:
        nonlocal accepted
        with httpx.Client(base_url=url, timeout=120) as client:
            client.post("/", content=bodies[0], headers=headers)  # the connection, before the clock
            ready.wait()
            while time.perf_counter() - start <= seconds:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                answer = client.post("/", content=body, headers=headers)
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code}: {answer.text[:200]}")
                    return
                result = answer.json()
                with lock:
                    accepted += len(result["Entries"]) - result["FailedEntryCount"]

    threads = [threading.Thread(target=worker) for _ in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    start = time.perf_counter() + 3600  # the workers wait at the barrier; the clock starts after it
    ready.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(failures[0])
    return accepted / elapsed, accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="time limit of each measurement")
    parser.add_argument("--calls", type=int, default=5_000, help="PutEvents calls at most in each measurement")
    parser.add_argument("--no-moto", action="store_true", help="measure eventbus alone")
    args = parser.parse_args()
    batches = calls(args.calls)
    folder = tempfile.mkdtemp(prefix="eventbus-http-bench-")
    servers: list[Served] = []
    results: dict[str, dict[str, tuple[float, int]]] = {}
    try:
        config = Path(folder) / "bench.yaml"
        config.write_text("buses: {}\n", encoding="utf-8")
        eventbus = Served("eventbus", [sys.executable, "-m", "eventbus.cli", "serve", str(config), "--port", "0"], cwd=folder)
        servers.append(eventbus)
        peers = [eventbus]
        if not args.no_moto:
            moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
            port = free_port()
            env_url = f"http://127.0.0.1:{port}"
            peer = Served("moto_server", [moto, "-H", "127.0.0.1", "-p", str(port)], url=env_url, cwd=folder)
            servers.append(peer)
            peers.append(peer)
        for server in peers:
            put_rules(server.url)
            results[server.name] = {
                "boto3": through_boto3(server.url, batches, args.seconds),
                "httpx": through_httpx(server.url, batches, args.seconds),
            }
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"PutEvents, {RULES} rules, {ENTRIES_PER_CALL} entries a call, at most {args.seconds:g} s / {args.calls} calls each")
    print(f"{'server':<12} {'client':<28} {'events/s':>10} {'events':>8}")
    for name, by_client in results.items():
        for client, (rate, count) in by_client.items():
            label = "boto3 (sequential)" if client == "boto3" else f"httpx keep-alive ({CONCURRENCY} in flight)"
            print(f"{name:<12} {label:<28} {rate:>10,.0f} {count:>8,}")
    if "moto_server" in results:
        for client in ("boto3", "httpx"):
            ratio = results["eventbus"][client][0] / results["moto_server"][client][0]
            print(f"eventbus / moto_server through {client}: {ratio:,.1f}x")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
