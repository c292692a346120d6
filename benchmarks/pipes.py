"""Records per second through a pipe: a SQLite queue, a filter, a function target.

Each run seeds a fresh SQLite queue (in a temporary folder) with the same seeded records, then
runs a pipe that filters on the body (about two records in three pass) and hands the batches to
an async function that counts them, until every record has been settled and deleted. It is timed
from the pipe's start to the last record's end, at each batch size asked for.
The queue deletes each batch's records in one transaction (``SqliteQueue.delete_batch``).
Run: ``.venv/bin/python benchmarks/pipes.py [--records N] [--batch-sizes 1 100] [--repeat R]
[--quick]``.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from eventbus.pipes import Pipe, PipeConfig
from eventbus.targets.function import FunctionTargetConfig
from eventbus.targets.queue import SqliteQueue

#: No run may take longer than this, whatever the machine: the benchmark then reports a failure.
RUN_TIMEOUT = 600.0


def make_bodies(n: int, seed: int = 11) -> list[str]:
    rnd = random.Random(seed)
    return [
        json.dumps(
            {"order": i, "state": rnd.choice(["new", "paid", "shipped"]), "amount": rnd.randrange(1000)}
        )
        for i in range(n)
    ]


async def run_once(bodies: list[str], batch_size: int, folder: Path) -> tuple[float, int, int]:
    """Seconds taken, records delivered to the function, records filtered out."""
    path = folder / f"queue-{batch_size}-{time.monotonic_ns()}.db"
    queue = SqliteQueue(path)
    chunk = 1000
    for start in range(0, len(bodies), chunk):
        await queue.send_batch([(b, None) for b in bodies[start : start + chunk]])
    await queue.aclose()

    delivered = 0

    async def count(batch: list[Any]) -> None:
        nonlocal delivered
        delivered += len(batch)

    config = PipeConfig(
        name=f"bench-{batch_size}",
        source={"queue": {"type": "sqlite", "path": str(path)}},
        filter=[{"body": {"state": ["paid", "shipped"]}}],
        target=FunctionTargetConfig(function=count),
        batch_size=batch_size,
        log_level="OFF",
    )
    pipe = Pipe(config)
    started = time.perf_counter()
    with anyio.fail_after(RUN_TIMEOUT):
        async with pipe:
            while True:
                metrics = pipe.metrics()
                if metrics["delivered"] + metrics["filtered_out"] >= len(bodies):
                    break
                await anyio.sleep(0.005)
            elapsed = time.perf_counter() - started
    metrics = pipe.metrics()
    return elapsed, delivered, metrics["filtered_out"]


async def main(records: int, batch_sizes: list[int], repeat: int) -> None:
    bodies = make_bodies(records)
    print(f"{records:,} records, best of {repeat}")
    print("| batch size | records/s | delivered | filtered out |")
    print("| ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        for size in batch_sizes:
            best = None
            for _ in range(repeat):
                elapsed, delivered, filtered = await run_once(bodies, size, Path(tmp))
                best = elapsed if best is None else min(best, elapsed)
            assert best is not None
            print(f"| {size} | {records / best:,.0f} | {delivered:,} | {filtered:,} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a small run to check the benchmark works")
    args = parser.parse_args()
    if args.quick:
        args.records, args.repeat = min(args.records, 500), 1
    anyio.run(main, args.records, args.batch_sizes, args.repeat)
