"""A bus on the SQLite backend: restarts resume exactly what had not ended, on schedule; one
process serves a bus; several buses share a file; scheduled rules keep their last fire time."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from eventbus import RecordingTarget
from eventbus.bus import EventBus, ManualClock, RetryPolicy, RuleTarget
from eventbus.bus.logs.sqlite import SqliteEventLog
from eventbus.errors import StateLockedError
from eventbus.testing import settle

from .helpers import AlwaysFails, Collector, Flaky, entry

pytestmark = pytest.mark.anyio


def sqlite_bus(path: Path, clock: ManualClock, **settings: object) -> EventBus:
    return EventBus("orders", log=SqliteEventLog(path), clock=clock, random=lambda: 1.0, **settings)


async def test_a_restarted_bus_delivers_only_what_had_not_ended(tmp_path: Path) -> None:
    clock = ManualClock()
    done, failing = Collector(), AlwaysFails()
    first = sqlite_bus(tmp_path / "state.db", clock, backoff={"base": 60, "cap": 60}, drain_timeout=0)
    first.put_rule("r", {"source": ["shop"]})
    first.put_targets("r", [RuleTarget(id="ok", target=done), RuleTarget(id="bad", target=failing)])
    async with first:
        [answer] = (await first.put_events([entry()]))["Entries"]
        await settle(first)
        assert len(done.payloads) == 1 and failing.calls == 1
    # Stopped with a retry waiting: the file keeps it, its attempt count and its due time.
    again = Collector()
    second = sqlite_bus(tmp_path / "state.db", clock)
    second.put_rule("r", {"source": ["shop"]})
    second.put_targets("r", [RuleTarget(id="ok", target=done), RuleTarget(id="bad", target=again)])
    async with second:
        await settle(second)
        assert again.payloads == [] and second.pending() == 1
        clock.advance(timedelta(seconds=60))
        assert await second.wait_idle(5)
    assert len(done.payloads) == 1  # the target that had its event is not called again
    assert [p["id"] for p in again.payloads] == [answer["EventId"]] and again.contexts[0].attempt == 2


async def test_a_retry_due_in_ten_minutes_is_due_in_ten_minutes_after_a_restart(tmp_path: Path) -> None:
    clock = ManualClock()
    first = sqlite_bus(tmp_path / "state.db", clock, backoff={"base": 600, "cap": 600}, drain_timeout=0)
    first.put_rule("r", {"source": ["shop"]})
    first.put_targets("r", [RuleTarget(id="t", target=AlwaysFails())])
    async with first:
        await first.put_events([entry()])
        await settle(first)
    clock.advance(timedelta(minutes=4))  # the process was down for four minutes
    target = Collector()
    second = sqlite_bus(tmp_path / "state.db", clock)
    second.put_rule("r", {"source": ["shop"]})
    second.put_targets("r", [RuleTarget(id="t", target=target)])
    async with second:
        await settle(second)
        clock.advance(timedelta(minutes=5, seconds=59))
        await settle(second)
        assert target.payloads == []  # 9:59 after the failure: not yet
        clock.advance(timedelta(seconds=1))
        assert await second.wait_idle(5)
    assert len(target.payloads) == 1 and target.contexts[0].attempt == 2


async def test_attempt_counts_and_event_age_count_across_restarts(tmp_path: Path) -> None:
    clock = ManualClock()
    dead = RecordingTarget("dead")
    policy = RetryPolicy(MaximumRetryAttempts=2, MaximumEventAgeInSeconds=3600)

    def bus() -> EventBus:
        b = sqlite_bus(tmp_path / "state.db", clock, backoff={"base": 10, "cap": 10}, drain_timeout=0)
        b.put_rule("r", {"source": ["shop"]})
        b.put_targets("r", [RuleTarget(id="t", target=AlwaysFails(), retry_policy=policy, dead_letter=dead)])
        return b

    async with bus() as first:
        await first.put_events([entry()])
        await settle(first)  # attempt 1 failed; the retry is due in 10 s
    async with bus() as second:
        clock.advance(timedelta(seconds=10))
        await settle(second)  # attempt 2 failed, in another process
    async with bus() as third:
        clock.advance(timedelta(seconds=10))
        assert await third.wait_idle(5)  # attempt 3 failed: the two retries are spent
    [(_, context)] = dead.deliveries
    assert context.attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert context.attributes["RETRY_ATTEMPTS"] == "2"


async def test_the_maximum_event_age_runs_from_the_first_acceptance(tmp_path: Path) -> None:
    clock = ManualClock()
    dead = RecordingTarget("dead")
    policy = RetryPolicy(MaximumRetryAttempts=185, MaximumEventAgeInSeconds=600)

    def bus() -> EventBus:
        b = sqlite_bus(tmp_path / "state.db", clock, backoff={"base": 60, "cap": 60}, drain_timeout=0)
        b.put_rule("r", {"source": ["shop"]})
        b.put_targets("r", [RuleTarget(id="t", target=AlwaysFails(), retry_policy=policy, dead_letter=dead)])
        return b

    async with bus() as first:
        await first.put_events([entry()])
        await settle(first)
    clock.advance(timedelta(minutes=11))
    async with bus() as second:
        assert await second.wait_idle(5)
    [(_, context)] = dead.deliveries
    assert context.attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumEventAgeInSeconds"


async def test_scheduled_rules_keep_their_last_fire_time(tmp_path: Path) -> None:
    clock = ManualClock()
    fired: list[str] = []

    def bus() -> EventBus:
        b = sqlite_bus(tmp_path / "state.db", clock, drain_timeout=0)
        b.put_rule("tick", schedule_expression="rate(10 minutes)")

        async def record(event: dict[str, object]) -> None:
            fired.append(str(event["time"]))

        b.put_targets("tick", [RuleTarget(id="t", target=record)])
        return b

    start = clock.now()
    async with bus() as first:
        clock.advance(timedelta(minutes=10))
        assert await first.wait_idle(5)
        await settle(first)
    assert len(fired) == 1
    clock.advance(timedelta(minutes=5))  # restarted 15 minutes in: a fresh rate would fire at 25
    async with bus() as second:
        await settle(second)
        assert len(fired) == 1  # not fired again on start
        clock.advance(timedelta(minutes=5))  # 20 minutes in: the next period, not skipped
        await settle(second)
        assert await second.wait_idle(5)
        assert len(fired) == 2
    clock.advance(timedelta(minutes=17))  # down across the fire at 30 minutes
    async with bus() as third:
        await settle(third)
        assert await third.wait_idle(5)
        assert len(fired) == 3  # the missed period fires once, at start
        clock.advance(timedelta(minutes=2))  # 39: nothing; 40: the next one
        await settle(third)
        assert len(fired) == 3
        clock.advance(timedelta(minutes=1))
        await settle(third)
        assert await third.wait_idle(5)
    assert len(fired) == 4
    minutes = [(_time(t) - start.replace(microsecond=0)).total_seconds() / 60 for t in fired]
    assert minutes == [10, 20, 30, 40]


def _time(text: str):  # type: ignore[no-untyped-def]
    from eventbus.envelope import parse_time

    return parse_time(text)


async def test_several_buses_share_a_file_each_resuming_its_own(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "state.db"
    got: dict[str, Collector] = {"a": Collector(), "b": Collector()}
    buses = []
    for name in ("a", "b"):
        bus = EventBus(name, log=SqliteEventLog(path), clock=clock)
        bus.put_rule("r", {"source": ["shop"]})
        bus.put_targets("r", [RuleTarget(id="t", target=got[name])])
        buses.append(bus)
    async with buses[0], buses[1]:
        await buses[0].put_events([entry(detail={"bus": "a"})])
        await buses[1].put_events([entry(detail={"bus": "b"}), entry(detail={"bus": "b"})])
        assert await buses[0].wait_idle(5) and await buses[1].wait_idle(5)
    assert [p["detail"]["bus"] for p in got["a"].payloads] == ["a"]
    assert [p["detail"]["bus"] for p in got["b"].payloads] == ["b", "b"]


async def test_one_bus_of_a_file_is_served_once_in_a_process(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = EventBus("orders", log=SqliteEventLog(path))
    other = EventBus("other", log=SqliteEventLog(path))
    async with first, other:
        with pytest.raises(StateLockedError, match="already served by this process"):
            await SqliteEventLog(path).open("orders", ManualClock())
    # Once it stopped, another may serve it.
    async with EventBus("orders", log=SqliteEventLog(path)):
        pass


_HOLDER = """
import sys, anyio
from eventbus.bus import EventBus
from eventbus.bus.logs.sqlite import SqliteEventLog

async def main():
    async with EventBus("orders", log=SqliteEventLog(sys.argv[1])):
        print("serving", flush=True)
        await anyio.sleep(60)

anyio.run(main)
"""


def test_a_second_process_serving_the_same_bus_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_HOLDER), str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "serving"

        async def second() -> None:
            with pytest.raises(StateLockedError, match=r"served by another process \(pid \d+"):
                async with EventBus("orders", log=SqliteEventLog(path)):
                    pass
            # Another bus of the same file is no problem.
            async with EventBus("billing", log=SqliteEventLog(path)):
                pass

        anyio.run(second)
    finally:
        holder.kill()
        holder.wait()

    async def after_the_holder_died() -> None:
        # The kernel released the dead process's lock: no stale lock to clear by hand.
        async with EventBus("orders", log=SqliteEventLog(path)):
            pass

    anyio.run(after_the_holder_died)


async def test_deliveries_for_a_target_no_longer_configured_wait_and_are_taken_over(tmp_path: Path) -> None:
    clock = ManualClock()
    first = sqlite_bus(tmp_path / "state.db", clock, backoff={"base": 60, "cap": 60}, drain_timeout=0)
    first.put_rule("r", {"source": ["shop"]})
    first.put_targets("r", [RuleTarget(id="gone", target=AlwaysFails())])
    async with first:
        await first.put_events([entry()])
        await settle(first)
    # Restarted without that target: its delivery is kept, not waited for.
    second = sqlite_bus(tmp_path / "state.db", clock)
    second.put_rule("r", {"source": ["shop"]})
    async with second:
        assert second.pending() == 0 and await second.wait_idle(1)
        back = Collector()
        second.put_targets("r", [RuleTarget(id="gone", target=back)])  # the same rule and id again
        assert second.pending() == 1
        clock.advance(timedelta(seconds=60))
        assert await second.wait_idle(5)
    assert len(back.payloads) == 1 and back.contexts[0].attempt == 2


async def test_a_flaky_target_ends_delivered_across_a_restart(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "state.db"
    first = sqlite_bus(path, clock, backoff={"base": 5, "cap": 5}, drain_timeout=0)
    first.put_rule("r", {"source": ["shop"]})
    first.put_targets("r", [RuleTarget(id="t", target=Flaky(1))])
    async with first:
        await first.put_events([entry(detail={"n": n}) for n in range(5)])
        await settle(first)
    target = Collector()
    second = sqlite_bus(path, clock)
    second.put_rule("r", {"source": ["shop"]})
    second.put_targets("r", [RuleTarget(id="t", target=target)])
    async with second:
        clock.advance(5)
        assert await second.wait_idle(5)
    # The first delivery failed once and was retried here; the other four were delivered before.
    assert len(target.payloads) == 1 and target.contexts[0].attempt == 2
