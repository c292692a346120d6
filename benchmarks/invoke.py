"""The invocation front of ``eventbus serve``: synchronous invocations and the async job path.

``eventbus serve`` runs in a subprocess on a free loopback port with a config of two routes, each
to an instant ``async def`` function (it returns its input): ``sync`` for ``POST /invoke`` and
``jobs`` for ``POST /jobs``, once for each job store (three servers, since a server has one): the
runtime's SQLite state file (the default, shared with the buses' events), a SQLite file of its
own, and memory; 8 keep-alive connections by default. Measured in one run:

- ``GET /healthz``: the server's floor, a route that does nothing, through the same clients;
- clients: a lean one (keep-alive connections on one uvloop loop: ``raw_hammer``) that leaves the
  CPU to the server, and, for the synchronous path, httpx's (threads, as in benchmarks/serve.py);
- ``POST /invoke/sync``: invocations/s (the issue's target: at least 3,000 with 8 clients);
- ``POST /jobs/...``: jobs accepted/s (each 202 answered once the job is committed), and jobs run
  to SUCCEEDED/s from the first submission to the last job's end; the overhead of a job over a
  synchronous invocation, per job, on SQLite and in memory.

Every phase stops after ``--seconds`` or ``--calls``, whichever comes first. Run with the test
environment: ``.venv/bin/python benchmarks/invoke.py [--seconds S] [--calls N] [--clients C]``.
"""

# ruff: noqa: E402
from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import json
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

HANDLER = '''
async def instant(event):
    return event
'''

CONFIG = """
runtime: {{{backend}python_path: ["."]}}
invoke:
  jobs: {{{jobs}}}
  routes:
    sync: {{target: {{function: {{function: "bench_handlers:instant"}}}}}}
    jobs: {{target: {{function: {{function: "bench_handlers:instant"}}}}}}
"""


#: Each job store: its label, then the ``runtime`` and ``invoke.jobs`` options that choose it.
STORES = {
    "state": ("the state file", "backend: sqlite, ", ""),
    "sqlite": ("a file of its own", "", "type: sqlite, path: jobs.db"),
    "memory": ("memory", "", "type: memory"),
}


class Served:
    """``eventbus serve CONFIG --port 0`` in ``folder``; ``url`` once it listens."""

    def __init__(self, folder: Path, config: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eventbus.cli", "serve", str(config), "--port", "0"],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = ""
        said: list[str] = []
        assert self.process.stderr is not None
        for line in self.process.stderr:
            said.append(line)
            found = re.search(r"serving on (http://\S+)", line)
            if found:
                self.url = found.group(1)
                break
        if not self.url:
            self.stop()
            raise RuntimeError("eventbus serve did not start:\n" + "".join(said))
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def hammer(url: str, clients: int, calls: int, seconds: float, call: Callable[[httpx.Client, int], None]) -> tuple[float, int]:
    """``clients`` threads with keep-alive clients run ``call(client, n)`` for n in 0..calls-1,
    until the calls or the seconds run out; (calls/s, calls made)."""
    lock = threading.Lock()
    next_n = 0
    done = 0
    failures: list[str] = []
    ready = threading.Barrier(clients + 1)
    start = 0.0

    def worker() -> None:
        nonlocal next_n, done
        with httpx.Client(base_url=url, timeout=120) as client:
            client.get("/healthz")  # the connection, before the clock
            ready.wait()
            while time.perf_counter() - start <= seconds:
                with lock:
                    if next_n >= calls:
                        return
                    n = next_n
                    next_n += 1
                try:
                    call(client, n)
                except Exception as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    return
                with lock:
                    done += 1

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start = time.perf_counter() + 3600
    ready.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(failures[0])
    return done / elapsed, done


def raw_hammer(
    url: str, clients: int, calls: int, seconds: float, request: Callable[[int], bytes], expect: int = 200
) -> tuple[float, list[bytes]]:
    """The same as ``hammer`` with a lean client: ``clients`` keep-alive connections on one
    uvloop event loop, each sending a request and reading its answer (status line, headers,
    ``Content-Length`` body) before the next. It costs a few tens of microseconds a request, so on
    a small machine the server, not the client, sets the pace. (calls/s, the answers' bodies)."""
    import asyncio

    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        uvloop = None
    host, port = url.removeprefix("http://").rsplit(":", 1)
    bodies: list[bytes] = []

    async def run() -> float:
        next_n = 0
        start = time.perf_counter()

        async def connection() -> None:
            nonlocal next_n
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                while next_n < calls and time.perf_counter() - start <= seconds:
                    n = next_n
                    next_n += 1
                    writer.write(request(n))
                    head = await reader.readuntil(b"\r\n\r\n")
                    status = int(head[9:12])
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line[:15].lower() == b"content-length:":
                            length = int(line[15:])
                    body = await reader.readexactly(length)
                    if status != expect:
                        raise RuntimeError(f"answered {status}: {body[:200]!r}")
                    bodies.append(body)
            finally:
                writer.close()

        await asyncio.gather(*(connection() for _ in range(clients)))
        return time.perf_counter() - start

    elapsed = uvloop.run(run()) if uvloop is not None else asyncio.run(run())
    return len(bodies) / elapsed, bodies


def http_request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(body)}\r\n"
    return (head + "Content-Type: application/json\r\n\r\n").encode() + body


def ok(answer: httpx.Response, status: int = 200) -> httpx.Response:
    if answer.status_code != status:
        raise RuntimeError(f"{answer.request.url.path} answered {answer.status_code}: {answer.text[:200]}")
    return answer


class Cpu:
    """The CPU time a process used (Linux: /proc/PID/stat), to tell the server's cost per request
    apart from the machine's load; ``None`` where /proc is not."""

    def __init__(self, pid: int) -> None:
        self.path = Path(f"/proc/{pid}/stat")

    def seconds(self) -> float | None:
        import os

        try:
            fields = self.path.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def per_call(cpu: Cpu, before: float | None, calls: int) -> float | None:
    after = cpu.seconds()
    return None if before is None or after is None or not calls else (after - before) / calls * 1e6


def sync_phase(url: str, cpu: Cpu, args: argparse.Namespace) -> dict[str, Any]:
    body = json.dumps({"prompt": "hello"}).encode()
    health = http_request("GET", "/healthz")
    invoke = http_request("POST", "/invoke/sync", body)
    found: dict[str, Any] = {}
    before = cpu.seconds()
    found["floor"], answers = raw_hammer(url, args.clients, args.calls, args.seconds, lambda n: health)
    found["floor_cpu"] = per_call(cpu, before, len(answers))
    before = cpu.seconds()
    found["sync"], answers = raw_hammer(url, args.clients, args.calls, args.seconds, lambda n: invoke)
    found["sync_cpu"] = per_call(cpu, before, len(answers))
    if any(json.loads(a) != {"prompt": "hello"} for a in answers[:: max(1, len(answers) // 100)]):
        raise RuntimeError("an unexpected answer")

    def through_httpx(client: httpx.Client, n: int) -> None:
        ok(client.post("/invoke/sync", content=body))

    found["httpx"], _ = hammer(url, args.clients, args.calls, args.seconds, through_httpx)
    return found


def jobs_phase(url: str, cpu: Cpu, args: argparse.Namespace) -> dict[str, Any]:
    """Jobs submitted by the lean client: accepted/s, run to SUCCEEDED/s (from the first
    submission to the last job's end, by the server's own timestamps), the latency from a job's
    creation to its end, and the server's CPU per job (accepting and running it)."""
    from datetime import datetime

    began = time.time()
    before = cpu.seconds()
    accepted_rate, answers = raw_hammer(
        url,
        args.clients,
        args.jobs,
        args.seconds,
        lambda n: http_request("POST", "/jobs/jobs", json.dumps({"n": n}).encode()),
        expect=202,
    )
    taken = [json.loads(a)["id"] for a in answers]
    with httpx.Client(base_url=url, timeout=120) as client:
        deadline = time.monotonic() + 300
        while client.get(f"/jobs/{taken[-1]}").json()["status"] != "SUCCEEDED":
            if time.monotonic() > deadline:
                raise RuntimeError("the last job did not end in 300 s")
            time.sleep(0.01)
        cpu_per_job = per_call(cpu, before, len(taken))
        docs = [client.get(f"/jobs/{job_id}").json() for job_id in taken]
    if any(d["status"] != "SUCCEEDED" or "n" not in d["result"] for d in docs):
        raise RuntimeError("a job did not succeed")

    def stamp(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    ended = max(stamp(d["updated"]) for d in docs)
    latency = sorted(stamp(d["updated"]) - stamp(d["created"]) for d in docs)
    return {
        "accepted": accepted_rate,
        "completed": len(taken) / max(1e-3, ended - began),
        "jobs": len(taken),
        "p50": latency[len(latency) // 2] * 1000,
        "p99": latency[int(len(latency) * 0.99)] * 1000,
        "cpu": cpu_per_job,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="longest a phase runs (default 10)")
    parser.add_argument("--calls", type=int, default=30_000, help="most calls a sync phase makes (default 30,000)")
    parser.add_argument("--jobs", type=int, default=5_000, help="most jobs a jobs phase submits (default 5,000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients (default 8)")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for store, (_, backend, jobs) in STORES.items():
            folder = Path(tmp) / store
            folder.mkdir()
            (folder / "bench_handlers.py").write_text(HANDLER, encoding="utf-8")
            config = folder / "invoke.yaml"
            config.write_text(CONFIG.format(backend=backend, jobs=jobs), encoding="utf-8")
            served = Served(folder, config)
            cpu = Cpu(served.process.pid)
            try:
                if store == "state":
                    results.update(sync_phase(served.url, cpu, args))
                results[store] = jobs_phase(served.url, cpu, args)
            finally:
                served.stop()

    def us(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f} µs"

    floor, sync = results["floor"], results["sync"]
    print(f"{args.clients} keep-alive connections, an instant async function, one run\n")
    print("| path | client | per second | server CPU a call | note |")
    print("| --- | --- | ---: | ---: | --- |")
    print(f"| GET /healthz (the server's floor) | lean | {floor:,.0f} | {us(results['floor_cpu'])} | |")
    print(f"| POST /invoke/sync | lean | {sync:,.0f} | {us(results['sync_cpu'])} | {sync / floor:.0%} of the floor |")
    print(f"| POST /invoke/sync | httpx | {results['httpx']:,.0f} | | the client's CPU comes off the server's |")
    for store, (label, _, _) in STORES.items():
        found = results[store]
        print(
            f"| POST /jobs, {label}: accepted (202) | lean | {found['accepted']:,.0f} | {us(found['cpu'])} "
            f"| {found['jobs']:,} jobs; CPU to accept and run one |"
        )
        print(
            f"| POST /jobs, {label}: run to SUCCEEDED | lean | {found['completed']:,.0f} | "
            f"| created to SUCCEEDED: {found['p50']:.1f} ms median, {found['p99']:.1f} ms p99 |"
        )
    print()
    for store, (label, _, _) in STORES.items():
        found = results[store]
        if found["cpu"] is not None and results["sync_cpu"] is not None:
            print(
                f"a job's overhead over a synchronous invocation, {label}: "
                f"{found['cpu'] - results['sync_cpu']:,.0f} µs of server CPU"
            )
    print(f"\ntarget: at least 3,000 synchronous invocations/s: {'met' if sync >= 3000 else 'NOT met'} ({sync:,.0f})")
    if results["sync_cpu"]:
        print(f"the server's CPU per invocation allows {1e6 / results['sync_cpu']:,.0f} invocations/s on one free core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
