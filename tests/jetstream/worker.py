"""One worker process of the JetStream tests: a bus on JetStream delivering to an HTTP receiver.

``python worker.py SPEC`` where SPEC is JSON: ``servers``, ``prefix``, ``receiver`` (a URL),
``name`` (sent as ``X-Worker`` with each delivery), and optionally ``ack_wait``, ``concurrency``,
``replicas``, ``rules`` (extra rules, each a pattern and a receiver path). Prints ``ready`` once
the bus runs; stops cleanly on SIGTERM (the work in hand finished, the rest left to the others).
"""

from __future__ import annotations

import json
import signal
import sys

import anyio

from eventbus.bus import EventBus, RuleTarget
from eventbus.bus.logs.jetstream import JetStreamEventLog
from eventbus.targets.http import HttpTarget


async def main(spec: dict[str, object]) -> None:
    log = JetStreamEventLog(
        list(spec["servers"]),  # type: ignore[call-overload]
        stream=spec["prefix"],
        ack_wait=spec.get("ack_wait", 5),
        replicas=spec.get("replicas", 1),
        connect_retry=spec.get("connect_retry", 10),
    )
    bus = EventBus(
        str(spec.get("bus", "orders")), log=log, drain_timeout=10, backoff={"base": 0.2, "cap": 1.0}
    )
    rules = dict(spec.get("rules") or {"all": {"pattern": {"source": ["load"]}, "path": "/events"}})  # type: ignore[call-overload]
    for name, rule in rules.items():
        bus.put_rule(name, rule["pattern"])
        target = HttpTarget.create(
            f"{spec['receiver']}{rule['path']}",
            header_parameters={"X-Worker": str(spec["name"])},
            invocation_rate_limit_per_second=None,
            timeout=10,
        )
        bus.put_targets(name, [RuleTarget(id="http", target=target, max_concurrency=int(spec.get("concurrency", 16)))])
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with bus:
            print("ready", flush=True)
            async for _ in signals:
                break
    print("stopped", flush=True)


if __name__ == "__main__":
    anyio.run(main, json.loads(sys.argv[1]), backend="asyncio")
