"""The pipe's stages on an in-memory queue: filter, enrichment, templates, partial batch failures,
retries, dead letters, batching, back-pressure, states and logs."""

from __future__ import annotations

import json
import threading
from typing import Any, ClassVar

import anyio
import pytest

from eventbus.bus import Backoff
from eventbus.errors import NonRetryableError, RetryableError
from eventbus.pipes import Pipe, PipeConfig, QueueSource
from eventbus.targets.base import TargetConfig
from eventbus.targets.function import FunctionTargetConfig
from eventbus.targets.queue import MemoryQueue
from eventbus.targets.recording import RecordingTarget
from eventbus.testing import capture_logs
from tests.pipes.conftest import eventually, settled, sqs_body

pytestmark = pytest.mark.anyio

FAST = Backoff(base=0.01, cap=0.05)


async def fill(queue: MemoryQueue, bodies: list[Any]) -> None:
    for body in bodies:
        await queue.send(body if isinstance(body, str) else json.dumps(body))


def config(queue: MemoryQueue, target: Any, **options: Any) -> PipeConfig:
    options.setdefault("backoff", FAST)
    return PipeConfig(name="test-pipe", source=QueueSource(queue), target=target, **options)


async def test_filter_matches_inside_json_bodies_and_plain_text_bodies() -> None:
    queue = MemoryQueue()
    await fill(queue, [{"kind": "order", "n": 1}, {"kind": "refund", "n": 2}, "ping", "pong", "{not json"])
    target = RecordingTarget()
    filters = [{"body": {"kind": ["order"]}}, {"body": ["ping"]}, {"body": [{"prefix": "{not"}]}]
    async with Pipe(config(queue, target, filter=filters)) as pipe:
        metrics = await settled(pipe, 5)
    assert sorted(map(str, (sqs_body(p) for p in target.payloads))) == sorted(
        ["{'kind': 'order', 'n': 1}", "ping", "{not json"]
    )
    assert metrics["received"] == 5 and metrics["filtered_out"] == 2 and metrics["delivered"] == 3
    # Filtered-out records are acknowledged: nothing comes back after the visibility timeout.
    assert queue.approximate_count == 0 and not await queue.receive(10)


async def test_a_json_pattern_never_matches_a_plain_text_body() -> None:
    queue = MemoryQueue()
    await fill(queue, ['"kind order"', "kind=order"])
    target = RecordingTarget()
    async with Pipe(config(queue, target, filter=[{"body": {"kind": ["order"]}}])) as pipe:
        metrics = await settled(pipe, 2)
    assert metrics["filtered_out"] == 2 and target.payloads == []


async def test_records_look_like_sqs_messages() -> None:
    queue = MemoryQueue(name="orders")
    await queue.send('{"a":1}', {"origin": "test"})
    target = RecordingTarget()
    async with Pipe(config(queue, target)) as pipe:
        await settled(pipe, 1)
    (record,) = target.payloads
    assert record["body"] == '{"a":1}'
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:orders"
    assert record["messageAttributes"] == {"origin": {"stringValue": "test", "dataType": "String"}}
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert len(record["md5OfBody"]) == 32
    (_, context) = target.deliveries[0]
    assert context.kind == "pipe" and context.arn == pipe.arn and context.event_ids == (record["messageId"],)


async def test_input_templates_with_paths_and_reserved_variables() -> None:
    queue = MemoryQueue()
    await fill(queue, [{"customer": "ada", "total": 12}])
    enrich_seen: list[Any] = []

    def enrich(batch: list[Any]) -> list[Any]:
        enrich_seen.extend(batch)
        return [{"who": item["name"], "pipe": item["pipe"]} for item in batch]

    target = RecordingTarget()
    cfg = config(
        queue,
        target,
        enrichment=FunctionTargetConfig(function=enrich),
        enrichment_input_template='{"name": <$.body.customer>, "pipe": <aws.pipes.pipe-name>}',
        target_input_template="Hello <$.who> from <aws.pipes.pipe-arn>",
    )
    async with Pipe(cfg) as pipe:
        await settled(pipe, 1)
    assert enrich_seen == [{"name": "ada", "pipe": "test-pipe"}]
    assert target.payloads == [f"Hello ada from {pipe.arn}"]


async def test_enrichment_fan_out_longer_and_shorter_than_the_batch() -> None:
    queue = MemoryQueue()
    await fill(queue, [{"n": 1}, {"n": 2}, {"n": 3}])
    target = RecordingTarget()

    def triple_first(batch: list[Any]) -> list[Any]:
        return [{"copy": i} for i in range(len(batch) * 3)] if len(batch) == 3 else []

    cfg = config(
        queue,
        target,
        enrichment=FunctionTargetConfig(function=triple_first),
        batch_size=3,
        maximum_batching_window_in_seconds=1,
    )
    async with Pipe(cfg) as pipe:
        metrics = await settled(pipe, 3)
    assert target.payloads == [{"copy": i} for i in range(9)]
    assert metrics["enriched"] == 3 and metrics["delivered"] == 3

    queue2 = MemoryQueue()
    await fill(queue2, [{"n": 1}, {"n": 2}, {"n": 3}])
    target2 = RecordingTarget()
    cfg2 = config(
        queue2,
        target2,
        enrichment=FunctionTargetConfig(function=lambda batch: [{"summary": len(batch)}]),
        batch_size=3,
        maximum_batching_window_in_seconds=1,
    )
    async with Pipe(cfg2) as pipe2:
        await settled(pipe2, 3)
    assert target2.payloads == [{"summary": 3}]


@pytest.mark.parametrize("answer", ["", {}, [], None])
async def test_enrichment_answering_empty_skips_the_target(answer: Any) -> None:
    queue = MemoryQueue()
    await fill(queue, [{"n": 1}, {"n": 2}])
    target = RecordingTarget()
    cfg = config(queue, target, enrichment=FunctionTargetConfig(function=lambda batch: answer))
    async with Pipe(cfg) as pipe:
        metrics = await settled(pipe, 2)
    assert target.deliveries == []
    assert metrics["skipped"] == 2 and metrics["delivered"] == 0
    assert not await queue.receive(10)


async def test_enrichment_answering_a_list_of_one_empty_object_invokes_the_target_once() -> None:
    queue = MemoryQueue()
    await fill(queue, [{"n": 1}, {"n": 2}])
    target = RecordingTarget()
    cfg = config(
        queue,
        target,
        enrichment=FunctionTargetConfig(function=lambda batch: [{}]),
        batch_size=2,
        maximum_batching_window_in_seconds=1,
    )
    async with Pipe(cfg) as pipe:
        await settled(pipe, 2)
    assert len(target.deliveries) == 1 and target.payloads == [{}]


async def test_partial_batch_failure_retries_only_those_records_through_the_whole_pipe() -> None:
    queue = MemoryQueue()
    await fill(queue, [{"n": i} for i in range(5)])
    enriched_batches: list[list[int]] = []
    target_batches: list[list[int]] = []
    lock = threading.Lock()

    def enrich(batch: list[Any]) -> list[Any]:
        with lock:
            enriched_batches.append([json.loads(r["body"])["n"] for r in batch])
        return [{"n": json.loads(r["body"])["n"], "id": r["messageId"]} for r in batch]

    failed_once: set[int] = set()

    def deliver(batch: list[Any]) -> dict[str, Any]:
        with lock:
            target_batches.append([item["n"] for item in batch])
        failures = []
        for item in batch:
            if item["n"] in (1, 3) and item["n"] not in failed_once:
                failed_once.add(item["n"])
                failures.append({"itemIdentifier": item["id"]})
        return {"batchItemFailures": failures}

    cfg = config(
        queue,
        FunctionTargetConfig(function=deliver),
        enrichment=FunctionTargetConfig(function=enrich),
        batch_size=5,
        maximum_batching_window_in_seconds=1,
    )
    async with Pipe(cfg) as pipe:
        metrics = await settled(pipe, 5)
    assert enriched_batches[0] == [0, 1, 2, 3, 4]
    # Only 1 and 3 went round again, enrichment included.
    assert sorted(n for batch in enriched_batches[1:] for n in batch) == [1, 3]
    assert sorted(n for batch in target_batches[1:] for n in batch) == [1, 3]
    assert metrics["failed"] == 2 and metrics["retried"] == 2 and metrics["delivered"] == 5


async def test_an_unreadable_batch_item_failure_fails_the_whole_batch() -> None:
    queue = MemoryQueue()
    await fill(queue, [{"n": 1}, {"n": 2}])
    calls: list[int] = []

    def deliver(batch: list[Any]) -> Any:
        calls.append(len(batch))
        return {"batchItemFailures": [{"itemIdentifier": "no-such-record"}]} if len(calls) == 1 else None

    cfg = config(
        queue, FunctionTargetConfig(function=deliver), batch_size=2, maximum_batching_window_in_seconds=1
    )
    async with Pipe(cfg) as pipe:
        metrics = await settled(pipe, 2)
    assert metrics["retried"] == 2 and sum(calls[1:]) == 2


async def test_an_enrichment_that_drops_the_ids_fails_partial_batch_failures_and_says_why() -> None:
    queue = MemoryQueue()
    await fill(queue, [{"n": 1}, {"n": 2}])
    dead = RecordingTarget()

    def enrich(batch: list[Any]) -> list[Any]:
        return [{"n": json.loads(r["body"])["n"]} for r in batch]  # messageId not carried through

    def deliver(batch: list[Any]) -> Any:
        return {"batchItemFailures": [{"itemIdentifier": f"n-{batch[0]['n']}"}]}

    cfg = config(
        queue,
        FunctionTargetConfig(function=deliver),
        enrichment=FunctionTargetConfig(function=enrich),
        dead_letter=dead,
        retry_policy={"maximum_retry_attempts": 0},
        batch_size=2,
        maximum_batching_window_in_seconds=1,
    )
    async with Pipe(cfg) as pipe:
        metrics = await settled(pipe, 2)
    assert metrics["dead_lettered"] == 2
    ids = sorted(letter.payload["messageId"] for letter in dead.received)
    message = dead.received[0].context.attributes["ERROR_MESSAGE"]
    assert message.startswith(
        "the target's answer fails the whole batch: batchItemFailures names 'n-1', which is not a record "
        "of this batch; its records are "
    )
    assert all(repr(i) in message for i in ids) and "an enrichment must pass them through" in message


async def test_exhausted_retries_go_to_the_dead_letter_destination_with_the_reason() -> None:
    queue = MemoryQueue()
    await fill(queue, [{"n": 1}])
    target = RecordingTarget()
    target.fail_next(RetryableError("target down", error_code="THROTTLING"), times=10)
    dead = RecordingTarget()
    cfg = config(queue, target, dead_letter=dead, retry_policy={"maximum_retry_attempts": 2})
    async with Pipe(cfg) as pipe:
        metrics = await settled(pipe, 1)
    assert metrics["failed"] == 3 and metrics["retried"] == 2 and metrics["dead_lettered"] == 1
    (letter,) = dead.received
    assert json.loads(letter.payload["body"]) == {"n": 1}
    assert letter.context.kind == "dead-letter"
    assert dict(letter.context.attributes) == {
        "ERROR_CODE": "THROTTLING",
        "ERROR_MESSAGE": "target down",
        "PIPE_ARN": pipe.arn,
        "TARGET_ARN": pipe.target_arn,
        "STAGE": "TARGET",
        "RETRY_ATTEMPTS": "2",
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
    }
    assert not await queue.receive(10)


async def test_record_age_limit_and_non_retryable_errors() -> None:
    queue = MemoryQueue()
    await fill(queue, [{"n": 1}])
    target = RecordingTarget()
    target.fail_next(RetryableError("slow"), times=10)
    dead = RecordingTarget()
    cfg = config(queue, target, dead_letter=dead, retry_policy={"MaximumRecordAgeInSeconds": 0})
    async with Pipe(cfg) as pipe:
        await settled(pipe, 1)
    assert dead.received[0].context.attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRecordAgeInSeconds"

    queue2 = MemoryQueue()
    await fill(queue2, [{"n": 2}])
    target2 = RecordingTarget()
    target2.fail_next(NonRetryableError("gone", error_code="NO_RESOURCE"))
    dead2 = RecordingTarget()
    async with Pipe(config(queue2, target2, dead_letter=dead2)) as pipe2:
        metrics = await settled(pipe2, 1)
    assert metrics["retried"] == 0
    attributes = dead2.received[0].context.attributes
    assert attributes["ERROR_CODE"] == "NO_RESOURCE" and "EXHAUSTED_RETRY_CONDITION" not in attributes


async def test_enrichment_failure_is_retried_and_dead_lettered_as_an_enrichment_failure() -> None:
    queue = MemoryQueue()
    await fill(queue, [{"n": 1}])

    def broken(batch: list[Any]) -> Any:
        raise ValueError("no enrichment today")

    dead = RecordingTarget()
    target = RecordingTarget()
    cfg = config(
        queue,
        target,
        enrichment=FunctionTargetConfig(function=broken),
        dead_letter=dead,
        retry_policy={"maximum_retry_attempts": 1},
    )
    async with Pipe(cfg) as pipe:
        await settled(pipe, 1)
    attributes = dead.received[0].context.attributes
    assert attributes["STAGE"] == "ENRICHMENT" and attributes["TARGET_ARN"] == pipe.enrichment_arn
    assert "no enrichment today" in attributes["ERROR_MESSAGE"] and target.payloads == []


async def test_without_a_dead_letter_destination_exhausted_records_are_dropped_and_logged() -> None:
    queue = MemoryQueue()
    await fill(queue, [{"n": 1}])
    target = RecordingTarget()
    target.fail_next(NonRetryableError("nope"))
    with capture_logs() as logs:
        async with Pipe(config(queue, target)) as pipe:
            metrics = await settled(pipe, 1)
    assert metrics["dropped"] == 1
    assert any(e["event"].startswith("undeliverable") and e["log_level"] == "error" for e in logs)


async def test_every_failure_log_line_of_a_pipe_says_why() -> None:
    queue = MemoryQueue()
    await fill(queue, [{"n": 1}])
    target = RecordingTarget()
    target.fail_next(OSError("disk on fire"), times=3)
    dead = RecordingTarget()
    dead.fail_next(RetryableError("dead letters refused"))
    cfg = config(queue, target, dead_letter=dead, log_level="INFO", retry_policy={"maximum_retry_attempts": 1})
    with capture_logs() as logs:
        async with Pipe(cfg) as pipe:
            await settled(pipe, 1)
    by_event = {e["event"]: e for e in logs}
    assert by_event["target failed"]["error"] == "OSError: disk on fire"
    assert by_event["retrying"]["errors"] == ["OSError: disk on fire"]
    assert by_event["dead letter failed"]["error"] == "OSError: disk on fire"
    assert by_event["dead letter failed"]["dead_letter_error"] == "dead letters refused"
    assert by_event["dead-lettered"]["error"] == "OSError: disk on fire"


async def test_a_template_that_cannot_render_dead_letters_the_record() -> None:
    queue = MemoryQueue()
    await fill(queue, [{"text": 'has "quotes"'}, {"text": "fine"}])
    target = RecordingTarget()
    dead = RecordingTarget()
    cfg = config(queue, target, dead_letter=dead, target_input_template='{"t": "<$.body.text>"}')
    async with Pipe(cfg) as pipe:
        await settled(pipe, 2)
    assert target.payloads == [{"t": "fine"}]
    assert dead.received[0].context.attributes["ERROR_CODE"] == "TRANSFORMATION_ERROR"


async def test_batch_size_and_batching_window() -> None:
    queue = MemoryQueue()
    await fill(queue, [{"n": i} for i in range(7)])
    target = RecordingTarget()
    async with Pipe(config(queue, target, batch_size=3)) as pipe:
        await settled(pipe, 7)
    assert [len(p) for p, _ in target.deliveries] == [3, 3, 1]

    # A window collects records that trickle in, up to the batch size (which ends it at once:
    # the window is long, so no slow machine can make it close early).
    queue2 = MemoryQueue()
    target2 = RecordingTarget()
    async with Pipe(config(queue2, target2, batch_size=4, maximum_batching_window_in_seconds=300)) as pipe2:
        for i in range(4):
            await queue2.send(json.dumps({"n": i}))
            await anyio.wait_all_tasks_blocked()  # the poller has taken it and waits for more
            assert target2.deliveries == [] or i == 3
        await settled(pipe2, 4)
    assert [len(p) for p, _ in target2.deliveries] == [4]


async def test_a_slow_target_slows_the_source_and_bounds_records_in_memory() -> None:
    queue = MemoryQueue(max_size=1000)
    await fill(queue, [{"n": i} for i in range(200)])
    gate = anyio.Event()
    peak = 0

    async def slow(batch: list[Any]) -> None:
        await gate.wait()

    cfg = config(queue, FunctionTargetConfig(function=slow), batch_size=5, max_concurrency=2)
    async with Pipe(cfg) as pipe:
        for _ in range(3):
            # Quiet: the pipe has taken all it will take while the target holds its batches.
            await anyio.wait_all_tasks_blocked()
            peak = max(peak, pipe.in_flight)
        # Two batches at the target, one read ahead, nothing more taken: the rest stays queued.
        assert 2 * 5 <= peak <= 3 * 5
        assert queue.approximate_count >= 200 - 3 * 5
        gate.set()
        await settled(pipe, 200)
    assert pipe.metrics()["delivered"] == 200


async def test_states_start_stop_and_desired_state() -> None:
    queue = MemoryQueue()
    target = RecordingTarget()
    pipe = Pipe(config(queue, target, desired_state="STOPPED"))
    assert pipe.state == "STOPPED"
    async with pipe:
        assert pipe.state == "STOPPED"
        await queue.send("1")
        await anyio.wait_all_tasks_blocked()
        assert target.payloads == [] and queue.approximate_count == 1
        await pipe.start()
        assert str(pipe.state) == "RUNNING"
        await settled(pipe, 1)
        await pipe.stop()
        assert pipe.state == "STOPPED"
        await queue.send("2")
        await anyio.wait_all_tasks_blocked()
        assert len(target.payloads) == 1 and queue.approximate_count == 1
        await pipe.start()
        await settled(pipe, 2)
    assert pipe.state == "STOPPED" and len(target.payloads) == 2
    assert pipe.describe()["CurrentState"] == "STOPPED"


async def test_stop_mid_batch_hands_unfinished_records_back() -> None:
    queue = MemoryQueue()
    await fill(queue, [{"n": i} for i in range(3)])

    async def stuck(batch: list[Any]) -> None:
        await anyio.sleep(30)

    cfg = config(
        queue, FunctionTargetConfig(function=stuck), batch_size=3, maximum_batching_window_in_seconds=0.5
    )
    async with Pipe(cfg) as pipe:
        await eventually(lambda: pipe.in_flight == 3, what="a batch at the target")
        await pipe.stop(timeout=0.2)
    assert pipe.in_flight == 0
    again = await queue.receive(10)
    assert sorted(json.loads(m.body)["n"] for m in again) == [0, 1, 2]
    assert all(m.receive_count == 2 for m in again)


async def test_log_levels() -> None:
    async def run(level: str) -> list[Any]:
        queue = MemoryQueue()
        await fill(queue, [{"n": 1}, {"n": 2}])
        target = RecordingTarget()
        target.fail_next(NonRetryableError("boom"))
        with capture_logs() as logs:
            async with Pipe(config(queue, target, log_level=level, batch_size=1)) as pipe:
                await settled(pipe, 2)
        return logs

    assert await run("OFF") == []
    errors = await run("ERROR")
    assert errors and {e["log_level"] for e in errors} == {"error"}
    info = await run("INFO")
    assert {"error", "info"} <= {e["log_level"] for e in info}
    assert any(e["event"] == "state" and e["state"] == "RUNNING" for e in info)
    trace = await run("TRACE")
    assert any(e["event"] == "target invoked" for e in trace)
    assert all("payloads" not in e for e in trace)


async def test_runs_on_trio_too() -> None:
    async def main() -> list[Any]:
        queue = MemoryQueue()
        await fill(queue, [{"n": 1}, "plain"])
        target = RecordingTarget()
        async with Pipe(config(queue, target, filter=[{"body": {"n": [1]}}])) as pipe:
            await settled(pipe, 2)
        return target.payloads

    import trio

    payloads = await anyio.to_thread.run_sync(lambda: trio.run(main))
    assert [sqs_body(p) for p in payloads] == [{"n": 1}]


async def test_run_until_cancelled() -> None:
    queue = MemoryQueue()
    await fill(queue, [{"n": 1}])
    target = RecordingTarget()
    pipe = Pipe(config(queue, target))
    async with anyio.create_task_group() as tg:
        tg.start_soon(pipe.run)
        await eventually(lambda: len(target.payloads) == 1)
        assert pipe.state == "RUNNING"
        tg.cancel_scope.cancel()
    assert pipe.state == "STOPPED"


async def test_the_pipe_closes_its_targets_on_exit_whether_built_or_handed_in() -> None:
    closed: list[str] = []

    class Tracked(RecordingTarget):
        async def aclose(self) -> None:
            closed.append(self.name)

    queue = MemoryQueue()
    handed = Tracked("handed")
    async with Pipe(config(queue, handed)):
        pass
    assert closed == ["handed"]

    class TrackedConfig(TargetConfig):
        kind: ClassVar[str] = "tracked"

        def build(self) -> Tracked:
            return Tracked("built")

    async with Pipe(config(queue, TrackedConfig())):
        pass
    assert closed == ["handed", "built"]


async def test_a_record_s_age_is_measured_on_the_pipe_s_clock() -> None:
    from datetime import UTC, datetime

    from eventbus.bus import ManualClock

    clock = ManualClock(datetime.now(UTC))
    queue = MemoryQueue()
    await fill(queue, [{"n": 1}])
    target = RecordingTarget()
    target.fail_next(RetryableError("down"), times=1000)
    dead = RecordingTarget()
    cfg = config(
        queue,
        target,
        dead_letter=dead,
        retry_policy={"MaximumRecordAgeInSeconds": 60},
        backoff=Backoff(base=0.001, cap=0.002),
    )
    async with Pipe(cfg, clock=clock) as pipe:
        # Retries go on while the clock stands still, however long the wall clock runs.
        await eventually(lambda: pipe.metrics()["retried"] >= 3, what="three retries")
        assert dead.received == []
        clock.advance(61)
        await settled(pipe, 1)
    (letter,) = dead.received
    assert letter.context.attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRecordAgeInSeconds"
