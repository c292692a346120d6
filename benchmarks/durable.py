"""Events per second through the bus on the in-memory log and on the SQLite log, in the same run.

The workload of benchmarks/bus.py at 100 rules (half the targets with an input transformer, an
in-memory counting target), put by 8 concurrent producers, 10 entries a PutEvents call, until
every event has ended; once on the in-memory log, once on SQLite with ``synchronous=NORMAL`` and
once with ``FULL``, interleaved, best of each. Then an archive on SQLite: the events archived are
read back page by page as a replay reads them, and replayed into the bus (a durable append each,
routing, no rules), each reported in events per second.
Run: ``.venv/bin/python benchmarks/durable.py [--events N] [--repeat R] [--backend asyncio|trio]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from bus import CountingTarget, make_entries, pattern  # type: ignore[import-not-found]

from eventbus.bus import EventBus, EventLog, RuleTarget
from eventbus.bus.archives import REPLAY_PAGE
from eventbus.bus.logs.archives import time_key
from eventbus.bus.logs.memory import InMemoryEventLog
from eventbus.bus.logs.sqlite import SqliteEventLog

PRODUCERS = 8
RULES = 100


def make_bus(log: EventLog) -> tuple[EventBus, CountingTarget]:
    bus = EventBus("bench", log=log, max_rules=RULES, log_capacity=20_000, target_queue_size=5_000)
    target = CountingTarget()
    for i in range(RULES):
        name = f"r{i}"
        bus.put_rule(name, pattern(i))
        shaped = (
            {"InputPathsMap": {"n": "$.detail.n", "s": "$.source"}, "InputTemplate": '{"n": <n>, "s": <s>}'}
            if i % 2
            else None
        )
        bus.put_targets(name, [RuleTarget(id="t", target=target, input_transformer=shaped, max_concurrency=1)])
    return bus, target


async def run_bus(kind: str, entries: list[dict[str, Any]], folder: Path) -> tuple[float, int]:
    if kind == "memory":
        log: EventLog = InMemoryEventLog(20_000)
    else:
        path = folder / f"{kind}-{time.monotonic_ns()}.db"
        log = SqliteEventLog(path, synchronous="FULL" if kind == "sqlite FULL" else "NORMAL", capacity=20_000)
    bus, target = make_bus(log)
    calls = [entries[k : k + 10] for k in range(0, len(entries), 10)]
    async with bus:
        start = time.perf_counter()

        async def producer(mine: list[list[dict[str, Any]]]) -> None:
            for call in mine:
                answer = await bus.put_events(call)
                assert answer["FailedEntryCount"] == 0, answer

        async with anyio.create_task_group() as tg:
            for p in range(PRODUCERS):
                tg.start_soon(producer, calls[p::PRODUCERS])
        await bus.wait_idle()
        elapsed = time.perf_counter() - start
    return len(entries) / elapsed, target.count


async def run_replay(entries: list[dict[str, Any]], folder: Path) -> tuple[float, float, int, float]:
    """Archive ``entries`` on a SQLite bus, then (1) read them back from the archive page by page
    as a replay does, and (2) replay them into the bus (its durable log, routing, no rules)."""
    path = folder / f"replay-{time.monotonic_ns()}.db"
    source = EventBus("bench", log=SqliteEventLog(path, capacity=20_000))
    async with source:
        source.create_archive("all")
        start_time = source.clock.now() - timedelta(minutes=1)
        for k in range(0, len(entries), 10):
            await source.put_events(entries[k : k + 10])
        assert await source.wait_idle(600)
        end_time = source.clock.now() + timedelta(seconds=1)
        archived = source.describe_archive("all").event_count
        store = source.archive_keeper.store
        assert store is not None
        started, cpu = time.perf_counter(), time.process_time()
        read, cursor = 0, None
        while True:
            page = await store.read("all", start_time, end_time, cursor, REPLAY_PAGE)
            if not page:
                break
            read += len(page)
            cursor = (time_key(page[-1].time), page[-1].seq)
        read_rate = read / (time.perf_counter() - started)
        # The process's CPU time (every thread): what the read costs whatever else the machine runs.
        read_cpu_rate = read / max(time.process_time() - cpu, 1e-9)
        started = time.perf_counter()
        await source.start_replay("again", "all", start_time, end_time)
        replay = await source.wait_replay("again", timeout=600)
        replay_rate = replay.replayed / (time.perf_counter() - started)
        assert await source.wait_idle(600)
    assert replay.state == "COMPLETED" and read == archived == replay.replayed, replay
    return read_rate, replay_rate, archived, read_cpu_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="report the best of this many runs of each")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--no-replay", action="store_true", help="leave the replay measurement out")
    args = parser.parse_args()
    entries = make_entries(args.events)
    kinds = ["memory", "sqlite NORMAL", "sqlite FULL"]
    best: dict[str, tuple[float, int]] = {}
    with tempfile.TemporaryDirectory(prefix="eventbus-durable-") as tmp:
        folder = Path(tmp)
        for _ in range(args.repeat):
            for kind in kinds:
                result = anyio.run(run_bus, kind, entries, folder, backend=args.backend)
                if kind not in best or result[0] > best[kind][0]:
                    best[kind] = result
        print(
            f"{args.events} events, {RULES} rules, {PRODUCERS} producers x 10 entries a call, "
            f"backend {args.backend}, best of {args.repeat}"
        )
        print(f"{'log':>14} {'events/s':>10} {'of memory':>10} {'deliveries':>11}")
        memory = best["memory"][0]
        for kind in kinds:
            rate, delivered = best[kind]
            print(f"{kind:>14} {rate:>10,.0f} {rate / memory:>10.2f} {delivered:>11,}")
        if not args.no_replay:
            runs = [anyio.run(run_replay, entries, folder, backend=args.backend) for _ in range(args.repeat)]
            archived = runs[0][2]
            print(f"archive of {archived:,} events on SQLite:")
            print(f"  read back as a replay reads it: {max(r[0] for r in runs):>10,.0f} events/s")
            print(f"  the same, a CPU-second:         {max(r[3] for r in runs):>10,.0f} events/s")
            print(f"  replayed into the bus (durable): {max(r[1] for r in runs):>9,.0f} events/s")


if __name__ == "__main__":
    main()
