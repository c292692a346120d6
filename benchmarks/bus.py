"""Events per second through the whole bus, beside the bare Matcher on the same events.

The bus path: put_events (10 entries a call: validation, envelope, log append), routing (matching),
target input (half the targets have an input transformer) and delivery to an in-memory target,
until every event has ended. The Matcher path: ``Matcher.match`` on the same events as dicts.
Run: ``.venv/bin/python benchmarks/bus.py [--events N] [--backend asyncio|trio]``.

Each rate is given in wall time and in CPU time of the process (``time.process_time``): the bus
runs in one thread, so on a machine shared with other work the CPU rate is the steadier figure
to compare versions by.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from typing import Any

import anyio

from eventbus.bus import EventBus, RuleTarget
from eventbus.patterns.matcher import Matcher
from eventbus.targets.base import DeliveryContext

SOURCES = 50
TYPES = 7


class CountingTarget:
    """An in-memory target that only counts what it receives."""

    max_batch_size = 10

    def __init__(self) -> None:
        self.count = 0

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> None:
        self.count += len(payloads)

    async def aclose(self) -> None:
        return None


def make_entries(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    return [
        {
            "Source": f"svc{rnd.randrange(SOURCES)}",
            "DetailType": f"type{rnd.randrange(TYPES)}",
            "Detail": json.dumps(
                {"amount": rnd.randrange(1000), "state": rnd.choice(["new", "paid", "shipped"]), "n": i}
            ),
        }
        for i in range(n)
    ]


def pattern(i: int) -> dict[str, Any]:
    kind = i % 3
    if kind == 0:
        return {"source": [f"svc{i % SOURCES}"], "detail-type": [f"type{i % TYPES}"]}
    if kind == 1:
        return {"source": [f"svc{i % SOURCES}"], "detail": {"amount": [{"numeric": [">", 500]}]}}
    return {"detail-type": [f"type{i % TYPES}"], "detail": {"state": ["paid"]}, "source": [{"prefix": f"svc{i % 10}"}]}


def as_event(entry: dict[str, Any], i: int) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": json.loads(entry["Detail"]),
    }


def bench_matcher(rules: int, events: list[dict[str, Any]]) -> tuple[float, float]:
    """Events per second of wall time and of CPU time."""
    matcher = Matcher()
    for i in range(rules):
        matcher.add(f"r{i}", pattern(i))
    start, cpu = time.perf_counter(), time.process_time()
    for event in events:
        matcher.match(event)
    return len(events) / (time.perf_counter() - start), len(events) / (time.process_time() - cpu)


async def bench_bus(rules: int, entries: list[dict[str, Any]]) -> tuple[float, float, int]:
    """Events per second of wall time and of CPU time, and the deliveries made."""
    bus = EventBus("bench", max_rules=max(rules, 1), log_capacity=20_000, target_queue_size=5_000)
    target = CountingTarget()
    for i in range(rules):
        name = f"r{i}"
        bus.put_rule(name, pattern(i))
        shaped = (
            {"InputPathsMap": {"n": "$.detail.n", "s": "$.source"}, "InputTemplate": '{"n": <n>, "s": <s>}'}
            if i % 2
            else None
        )
        bus.put_targets(name, [RuleTarget(id="t", target=target, input_transformer=shaped, max_concurrency=1)])
    async with bus:
        start, cpu = time.perf_counter(), time.process_time()
        for k in range(0, len(entries), 10):
            await bus.put_events(entries[k : k + 10])
        await bus.wait_idle()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return len(entries) / elapsed, len(entries) / cpu, target.count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--rules", type=int, nargs="*", default=[1, 100, 1000])
    parser.add_argument("--repeat", type=int, default=3, help="report the best of this many runs of each")
    args = parser.parse_args()
    entries = make_entries(args.events)
    events = [as_event(e, i) for i, e in enumerate(entries)]
    print(f"{args.events} events, backend {args.backend}, best of {args.repeat}")
    print(
        f"{'rules':>6} {'bus ev/s':>12} {'matcher ev/s':>14} {'bus/matcher':>12} {'deliveries':>11}"
        f" {'bus ev/s CPU':>13} {'matcher ev/s CPU':>17} {'ratio CPU':>10}"
    )
    for rules in args.rules:
        # Interleaved, best of each: the two see the same machine conditions.
        matcher_rates, runs = [], []
        for _ in range(args.repeat):
            matcher_rates.append(bench_matcher(rules, events))
            runs.append(anyio.run(bench_bus, rules, entries, backend=args.backend))
        matcher_rate = max(wall for wall, _ in matcher_rates)
        matcher_cpu = max(cpu for _, cpu in matcher_rates)
        bus_rate = max(wall for wall, _, _ in runs)
        bus_cpu = max(cpu for _, cpu, _ in runs)
        delivered = runs[0][2]
        print(
            f"{rules:>6} {bus_rate:>12,.0f} {matcher_rate:>14,.0f} {bus_rate / matcher_rate:>12.2f} {delivered:>11,}"
            f" {bus_cpu:>13,.0f} {matcher_cpu:>17,.0f} {bus_cpu / matcher_cpu:>10.2f}"
        )


if __name__ == "__main__":
    main()
