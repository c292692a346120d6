"""Archives and replay on JetStream with two workers of one bus: each event archived once by
the worker that routed it, archives made through one worker seen by the other, a replay run by
one worker and described, waited for and cancelled through either."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from eventbus.bus import EventBus, RuleTarget
from eventbus.bus.logs.archives import Replay
from eventbus.bus.logs.jetstream import JetStreamArchiveStore, JetStreamConnection, JetStreamSettings
from eventbus.errors import IllegalStatusError, ResourceMissingError
from eventbus.targets.recording import RecordingTarget

from .test_bus import WAIT, Workers, until

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def timed(n: int, minutes: float) -> dict[str, Any]:
    when = (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"Source": "shop", "DetailType": "order", "Detail": json.dumps({"n": n}), "Time": when}


@pytest.fixture
def workers(nats_server: str, prefix: str) -> Workers:
    return Workers(nats_server, prefix)


def two(workers: Workers, target: RecordingTarget) -> tuple[EventBus, EventBus]:
    buses = (workers.bus(), workers.bus())
    for bus in buses:
        bus.put_rule("r", {"source": ["shop"]})
        bus.put_targets("r", [RuleTarget(id="t", target=target)])
    return buses


def described(bus: EventBus, name: str) -> bool:
    try:
        bus.describe_archive(name)
    except ResourceMissingError:
        return False
    return True


async def test_two_workers_archive_each_event_once_and_replay_it_once(workers: Workers) -> None:
    target = RecordingTarget()
    a, b = two(workers, target)
    async with a, b:
        a.create_archive("shop", event_pattern={"source": ["shop"]}, retention_days=7)
        await until(lambda: described(b, "shop"), "the archive to reach the other worker")
        # Events over three hours of event time, put through both workers, routed by either.
        for start in range(0, 60, 10):
            bus = a if start % 20 else b
            await bus.put_events([timed(n, minutes=(n * 7) % 180) for n in range(start, start + 10)])
        await target.wait_for(lambda p: True, 60, WAIT)
        routed = [bus.metrics()["targets"]["r/t"]["Invocations"] for bus in (a, b)]
        await until(lambda: b.describe_archive("shop").event_count == 60, "every event archived once")
        await until(lambda: a.describe_archive("shop").event_count == 60, "the count on both workers")
        assert a.describe_archive("shop").retention_days == 7

        start, end = T0 + timedelta(minutes=30), T0 + timedelta(minutes=120)
        expected = sorted(((n * 7) % 180, n) for n in range(60) if 30 <= (n * 7) % 180 <= 120)
        replay = await b.start_replay("again", "shop", start, end, rules=["r"])
        assert replay.total == len(expected)
        await until(lambda: any(r.name == "again" for r in a.list_replays()), "the replay on the other worker")
        done = await a.wait_replay("again", WAIT)  # waited for on the worker that may not run it
        assert done.state == "COMPLETED" and done.replayed == len(expected)
        await until(lambda: b.describe_replay("again").state == "COMPLETED", "the other worker to see the end")
        await target.wait_for(lambda p: "replay-name" in p, len(expected), WAIT)
    replayed = [p for p in target.payloads if p.get("replay-name") == "again"]
    # Each event of the window replayed once (one worker ran the replay), none archived twice.
    assert sorted(p["detail"]["n"] for p in replayed) == sorted(n for _, n in expected)
    assert sorted(p["detail"]["n"] for p in target.payloads if "replay-name" not in p) == list(range(60))
    assert sum(routed) == 60


async def test_a_replay_is_cancelled_through_the_worker_that_does_not_run_it(workers: Workers) -> None:
    target = RecordingTarget()
    a, b = two(workers, target)
    async with a, b:
        a.create_archive("shop")
        # The other worker archives what it routes once it has heard of the archive.
        await until(lambda: described(b, "shop"), "the archive to reach the other worker")
        for start in (0, 10):
            await a.put_events([timed(n, minutes=n) for n in range(start, start + 10)])
        await until(lambda: a.describe_archive("shop").event_count == 20, "the events archived")
        # Cancelled through the other worker, before or after it ends (a race this test does
        # not steer: the store test below does): it ends once, and both workers agree how.
        replay = await a.start_replay("late", "shop", T0, T0 + timedelta(days=1))
        await until(lambda: any(r.name == "late" for r in b.list_replays()), "the replay on the other worker")
        current = b.describe_replay("late")
        if not current.finished:
            with contextlib.suppress(IllegalStatusError):  # it ended meanwhile
                b.cancel_replay("late")
        with anyio.fail_after(WAIT):
            ended = await b.wait_replay("late", WAIT)
        assert ended.state in ("COMPLETED", "CANCELLED")
        await until(lambda: a.describe_replay("late").state == ended.state, "both workers to agree")
        assert replay.total == 20


async def test_one_store_runs_a_replay_and_a_cancellation_from_another_is_not_overwritten(
    nats_server: str, prefix: str
) -> None:
    def store() -> JetStreamArchiveStore:
        return JetStreamArchiveStore(JetStreamConnection(JetStreamSettings(servers=[nats_server], stream=prefix)))

    one, other = store(), store()
    await one.open()
    await other.open()
    try:
        replay = Replay(
            name="again",
            arn="arn:aws:events:us-east-1:123456789012:replay/again",
            archive="shop",
            archive_arn="arn:aws:events:us-east-1:123456789012:archive/shop",
            bus="orders",
            destination_arn="arn:aws:events:us-east-1:123456789012:event-bus/orders",
            filter_arns=(),
            event_start=T0,
            event_end=T0 + timedelta(days=1),
            state="STARTING",
        )
        one.save_replay(replay)
        await one.refresh()
        await until(lambda: other.replays() == [replay], "the replay on the other store")
        with anyio.fail_after(WAIT):
            assert await one.claim_replay(replay)
            assert await one.claim_replay(replay)  # still its own
            assert not await other.claim_replay(replay)  # one runner
        other.save_replay(replace(replay, state="CANCELLING"))
        await other.refresh()
        # The runner writes its progress, not having heard of the cancellation: it stays.
        one.save_replay(replace(replay, state="RUNNING", replayed=5))
        await one.refresh()
        await until(lambda: [r.state for r in one.replays()] == ["CANCELLING"], "the cancellation kept")
        assert one.replays()[0].replayed == 5
        await until(lambda: [(r.state, r.replayed) for r in other.replays()] == [("CANCELLING", 5)], "both agree")
    finally:
        await one.close()
        await other.close()


async def test_the_replays_of_a_runner_that_stopped_are_taken_over(nats_server: str, prefix: str) -> None:
    def store() -> JetStreamArchiveStore:
        settings = JetStreamSettings(servers=[nats_server], stream=prefix)
        return JetStreamArchiveStore(JetStreamConnection(settings), runner_ttl=3)

    one, other = store(), store()
    await one.open()
    await other.open()
    woken = anyio.Event()
    other.watch(woken.set)
    try:
        replay = Replay(
            name="again",
            arn="arn:aws:events:us-east-1:123456789012:replay/again",
            archive="shop",
            archive_arn="arn:aws:events:us-east-1:123456789012:archive/shop",
            bus="orders",
            destination_arn="arn:aws:events:us-east-1:123456789012:event-bus/orders",
            filter_arns=(),
            event_start=T0,
            event_end=T0 + timedelta(days=1),
            state="STARTING",
        )
        one.save_replay(replay)
        with anyio.fail_after(WAIT):
            assert await one.claim_replay(replay)
        one.save_replay(replace(replay, state="RUNNING", replayed=7, cursor=(1, 7)))
        await one.refresh()
        await until(lambda: [r.replayed for r in other.replays()] == [7], "the progress on the other store")
        with anyio.fail_after(WAIT):
            assert not await other.claim_replay(replay)  # its runner lives
        woken = anyio.Event()
        other.watch(woken.set)
        await one.close()  # its runner entry goes with it
        with anyio.fail_after(WAIT):
            await woken.wait()  # the other store noticed, and wakes its replay runner
            assert await other.claim_replay(replay)
        assert other.replays()[0].replayed == 7  # goes on from the progress written
    finally:
        await one.close()
        await other.close()
