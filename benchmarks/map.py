"""Rows per second through a distributed map: a big CSV, a 10 ms async function, 10,000 at once.

Each run writes a fresh CSV (``id,customer,amount,country``; 1,000,000 rows by default, about
33 MB) in a temporary folder, then maps it through an async function that sleeps 10 ms and
answers a small object, with 10,000 rows in flight, its results reduced into a JSON Lines file
(one line a row). It is timed from the map's start to its summary (every result written).
Beside it, in the same run and on the same file:

- the map without a reduce (the summary only);
- the code people write by hand for this: ``csv.DictReader``, an ``asyncio.Semaphore`` of
  10,000 and a task per row, each result written to a file as it comes. It is the peer the
  map is compared with.

The point is concurrency, not CPU: the function does no work, so the figure is what the
machinery around it costs, and that is CPU time of the one process. Rates are given per second of
wall time and per second of the process's CPU time (``time.process_time``): on a shared machine
the wall time measures the neighbours too, and on a quiet one the two agree. Every run is
bounded in time (``--timeout``, 600 s by default).

Run: ``.venv/bin/python benchmarks/map.py [--rows N] [--concurrency C] [--delay S] [--repeat R]
[--quick]`` (``--quick``: 100,000 rows).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from eventbus.maps import Map, MapConfig, MapSummary

DELAY = 0.010


async def score(row: dict[str, str]) -> dict[str, Any]:
    """The function mapped over the rows: 10 ms of waiting (a call to a model, an API)."""
    await anyio.sleep(DELAY)
    return {"id": row["id"], "ok": True}


def make_csv(path: Path, rows: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    countries = ["NL", "BE", "DE", "FR", "ES", "IT"]
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("id,customer,amount,country\n")
        for i in range(1, rows + 1):
            out.write(f"{i},customer-{rnd.randrange(100_000)},{rnd.randrange(100_000) / 100},{rnd.choice(countries)}\n")


async def run_map(path: Path, out: Path | None, concurrency: int, timeout: float) -> tuple[float, float, MapSummary]:
    config = MapConfig(
        name="bench",
        source={"file": {"path": str(path)}},
        target={"function": {"function": score}},
        max_concurrency=concurrency,
        reduce={"file": {"path": str(out)}} if out is not None else None,
        log_level="OFF",
    )
    started, cpu = time.perf_counter(), time.process_time()
    with anyio.fail_after(timeout):
        summary = await Map(config).run()
    return time.perf_counter() - started, time.process_time() - cpu, summary


async def run_by_hand(path: Path, out: Path, concurrency: int, timeout: float) -> tuple[float, float, int]:
    """What a hand-written asyncio script does: a task per row behind a semaphore."""
    done = 0
    started, cpu = time.perf_counter(), time.process_time()
    with anyio.fail_after(timeout), path.open(encoding="utf-8", newline="") as rows, out.open("w") as sink:
        limit = asyncio.Semaphore(concurrency)

        async def one(line: int, row: dict[str, str]) -> None:
            nonlocal done
            try:
                result = await score(row)
                sink.write(json.dumps({"line": line, "status": "SUCCEEDED", "output": result}) + "\n")
                done += 1
            finally:
                limit.release()

        async with asyncio.TaskGroup() as tg:
            for line, row in enumerate(csv.DictReader(rows), 2):
                await limit.acquire()
                tg.create_task(one(line, row))
    return time.perf_counter() - started, time.process_time() - cpu, done


async def measure(
    label: str, runs: int, once: Callable[[], Awaitable[tuple[float, float, Any]]]
) -> tuple[float, float, Any]:
    """The best of ``runs`` runs: the least wall time, and the least CPU time."""
    results = [await once() for _ in range(runs)]
    wall = min(r[0] for r in results)
    cpu = min(r[1] for r in results)
    print(f"  {label}: {wall:.1f} s ({cpu:.1f} s of CPU)", flush=True)
    return wall, cpu, results[-1][2]


async def main(rows: int, concurrency: int, repeat: int, timeout: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "rows.csv"
        make_csv(path, rows)
        print(
            f"{rows:,} rows ({path.stat().st_size / 1e6:.0f} MB), a {DELAY * 1000:g} ms async function, "
            f"{concurrency:,} in flight, best of {repeat}",
            flush=True,
        )

        def results_file() -> Path:
            out = folder / "results.jsonl"
            out.unlink(missing_ok=True)
            return out

        with_reduce, with_reduce_cpu, summary = await measure(
            "map, results to a file", repeat, lambda: run_map(path, results_file(), concurrency, timeout)
        )
        assert summary.succeeded == rows and summary.results_written == rows, summary
        summary_only, summary_only_cpu, plain = await measure(
            "map, summary only", repeat, lambda: run_map(path, None, concurrency, timeout)
        )
        assert plain.succeeded == rows, plain
        by_hand, by_hand_cpu, done = await measure(
            "by hand (a task per row)", repeat, lambda: run_by_hand(path, results_file(), concurrency, timeout)
        )
        assert done == rows
    print()
    print("| run | rows/s | rows per CPU second | µs of CPU a row | x by hand (CPU) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, wall, cpu in (
        ("map, results to a file", with_reduce, with_reduce_cpu),
        ("map, summary only", summary_only, summary_only_cpu),
        ("by hand: csv.DictReader, a semaphore, a task per row", by_hand, by_hand_cpu),
    ):
        print(f"| {label} | {rows / wall:,.0f} | {rows / cpu:,.0f} | {cpu / rows * 1e6:.1f} | {by_hand_cpu / cpu:.2f} |")
    print()
    print(
        f"map with its results written: {rows / with_reduce:,.0f} rows/s, {rows / with_reduce_cpu:,.0f} rows per "
        f"CPU second (target: at least 20,000 rows/s); the sleeps alone would allow {concurrency / DELAY:,.0f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=10_000)
    parser.add_argument("--delay", type=float, default=DELAY, help="seconds the function waits (default 0.01)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds any one run may take at most")
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    args = parser.parse_args()
    DELAY = args.delay
    anyio.run(main, 100_000 if args.quick else args.rows, args.concurrency, args.repeat, args.timeout)
