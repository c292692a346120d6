"""The process the kill test kills: a bus on a SQLite state file delivering to HTTP targets.

``python kill_worker.py STATE DLQ URL ACCEPTED put`` serves the bus and puts events (10 a call)
until killed, appending each answered call's accepted event ids to ACCEPTED (one JSON line a call,
written after PutEvents answered); ``... drain`` puts nothing, waits until every delivery has
ended, and exits. Either prints ``ready`` once the bus runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio

from eventbus.bus import EventBus, RetryPolicy, RuleTarget
from eventbus.bus.logs.sqlite import SqliteEventLog
from eventbus.targets.http import HttpTarget, HttpTargetConfig
from eventbus.targets.queue import QueueTarget, SqliteQueue


def _http(endpoint: str) -> HttpTargetConfig:
    # A timeout far above any stall of a busy machine: a request the receiver answered is never
    # retried because its answer came late (that would be a duplicate no kill explains).
    return HttpTargetConfig(endpoint=endpoint, invocation_rate_limit_per_second=None, timeout=120)


async def main(state: str, dlq: str, url: str, accepted: str, mode: str) -> None:
    bus = EventBus(
        "orders",
        log=SqliteEventLog(state),
        backoff={"base": 0.05, "cap": 0.2},
        drain_timeout=0,
    )
    bus.put_rule("all", {"source": ["shop"]})
    bus.put_targets(
        "all",
        [RuleTarget(id="all", target=HttpTarget(_http(f"{url}/all")), max_concurrency=4)],
    )
    bus.put_rule("flaky", {"source": ["shop"]})
    bus.put_targets(
        "flaky",
        [
            RuleTarget(
                id="flaky",
                target=HttpTarget(_http(f"{url}/flaky")),
                retry_policy=RetryPolicy(MaximumRetryAttempts=2, MaximumEventAgeInSeconds=3600),
                dead_letter=QueueTarget(SqliteQueue(dlq), close_queue=True),
                max_concurrency=4,
            )
        ],
    )
    path = Path(accepted)
    done = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    n = max((int(i) for call in done for i in call["n"]), default=-1) + 1
    async with bus:
        print("ready", flush=True)
        if mode == "drain":
            with anyio.fail_after(120):
                await bus.wait_idle()
            print("drained", flush=True)
            return
        with path.open("a", encoding="utf-8") as out:
            while True:
                numbers = list(range(n, n + 10))
                n += 10
                answer = await bus.put_events(
                    [{"Source": "shop", "DetailType": "Order", "Detail": json.dumps({"n": k})} for k in numbers]
                )
                ids = [e.get("EventId") for e in answer["Entries"]]
                out.write(json.dumps({"n": numbers, "ids": ids}) + "\n")
                out.flush()
                await anyio.sleep(0.02)


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:6])
