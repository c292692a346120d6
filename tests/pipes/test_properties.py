"""Properties of the pipe on a real in-memory queue, with hypothesis choosing the failures."""

from __future__ import annotations

import json
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus.bus import Backoff
from eventbus.pipes import Pipe, PipeConfig, QueueSource
from eventbus.targets.function import FunctionTargetConfig
from eventbus.targets.queue import MemoryQueue


@settings(max_examples=15, deadline=None)
@given(
    failures=st.lists(st.integers(min_value=0, max_value=2), min_size=1, max_size=15),
    batch_size=st.integers(min_value=1, max_value=6),
    concurrency=st.integers(min_value=1, max_value=3),
    with_filter=st.booleans(),
)
def test_partial_failures_never_lose_a_record(
    failures: list[int], batch_size: int, concurrency: int, with_filter: bool
) -> None:
    """Record i fails ``failures[i]`` times (reported in batchItemFailures), then succeeds.

    Whatever the batch size and concurrency: every record that passes the filter is delivered
    successfully exactly once, retried exactly as often as it failed, and the queue ends empty.
    """

    async def main() -> tuple[dict[int, int], dict[str, int], int]:
        queue = MemoryQueue()
        for i in range(len(failures)):
            await queue.send(json.dumps({"n": i, "odd": i % 2 == 1}))
        left = dict(enumerate(failures))
        succeeded: dict[int, int] = {}

        def deliver(batch: list[Any]) -> dict[str, Any]:
            failed = []
            for record in batch:
                n = json.loads(record["body"])["n"]
                if left[n] > 0:
                    left[n] -= 1
                    failed.append({"itemIdentifier": record["messageId"]})
                else:
                    succeeded[n] = succeeded.get(n, 0) + 1
            return {"batchItemFailures": failed}

        config = PipeConfig(
            name="prop",
            source=QueueSource(queue),
            target=FunctionTargetConfig(function=deliver),
            filter=[{"body": {"odd": [False]}}] if with_filter else [],
            batch_size=batch_size,
            max_concurrency=concurrency,
            backoff=Backoff(base=0.001, cap=0.005),
            retry_policy={"maximum_retry_attempts": -1, "maximum_record_age_in_seconds": -1},
        )
        async with Pipe(config) as pipe:
            with anyio.fail_after(10):
                while True:
                    m = pipe.metrics()
                    if m["delivered"] + m["filtered_out"] >= len(failures):
                        break
                    await anyio.sleep(0.005)
        remaining = len(await queue.receive(100))
        return succeeded, pipe.metrics(), remaining

    succeeded, metrics, remaining = anyio.run(main)
    wanted = [i for i in range(len(failures)) if not with_filter or i % 2 == 0]
    assert succeeded == dict.fromkeys(wanted, 1)
    assert metrics["retried"] == metrics["failed"] == sum(failures[i] for i in wanted)
    assert metrics["dead_lettered"] == metrics["dropped"] == 0
    assert remaining == 0
