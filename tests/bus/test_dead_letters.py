"""Dead letters in a SQLite queue: listed with their event, rule, target and reason, and redriven
to the one rule target they failed for, removed only once accepted again."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from eventbus.bus import EventBus, RetryPolicy, RuleTarget
from eventbus.bus.dead_letters import DeadLetterQueue
from eventbus.bus.logs.sqlite import SqliteEventLog
from eventbus.bus.logs.sqlite.state_file import StateFile
from eventbus.errors import ResourceNotFoundError
from eventbus.targets.queue import QueueTarget, SqliteQueue

from .helpers import AlwaysFails, Collector, entry

pytestmark = pytest.mark.anyio


def failing_bus(dlq: Path, log: SqliteEventLog | None = None) -> tuple[EventBus, Collector]:
    bus = EventBus("orders", log=log, backoff={"base": 0.001, "cap": 0.001})
    other = Collector()
    bus.put_rule("ship", {"source": ["shop"]})
    bus.put_rule("audit", {"source": ["shop"]})
    dead = QueueTarget(SqliteQueue(dlq), close_queue=True)
    bus.put_targets(
        "ship",
        [RuleTarget(id="carrier", target=AlwaysFails(ResourceNotFoundError("no such carrier")), dead_letter=dead)],
    )
    bus.put_targets("audit", [RuleTarget(id="log", target=other)])
    return bus, other


async def test_dead_letters_are_listed_with_event_rule_target_and_reason(tmp_path: Path) -> None:
    dlq = tmp_path / "dlq.db"
    bus, _ = failing_bus(dlq)
    async with bus:
        answer = await bus.put_events([entry(detail={"n": 1})])
        assert await bus.wait_idle(5)
    dead = DeadLetterQueue(dlq)
    [letter] = await dead.list()
    assert letter.event["id"] == answer["Entries"][0]["EventId"] and letter.event["detail"] == {"n": 1}
    assert (letter.bus, letter.rule, letter.target) == ("orders", "ship", "carrier")
    assert letter.error_code == "NO_RESOURCE" and letter.error_message == "no such carrier"
    assert letter.condition is None and letter.retry_attempts == 0
    assert letter.attributes["RULE_ARN"] == "arn:aws:events:us-east-1:123456789012:rule/orders/ship"
    assert await dead.list(rule="audit") == [] and len(await dead.list(target="carrier")) == 1
    assert letter.to_dict()["event"] == letter.event
    # Listing receives nothing: a pipe reading the queue still gets the message.
    assert len(await SqliteQueue(dlq).receive(10)) == 1
    await dead.aclose()


async def test_a_redrive_reaches_only_the_target_it_failed_for(tmp_path: Path) -> None:
    dlq = tmp_path / "dlq.db"
    bus, audit = failing_bus(dlq)
    fixed = Collector()
    async with bus:
        await bus.put_events([entry(detail={"n": 1}), entry(detail={"n": 2})])
        assert await bus.wait_idle(5)
        assert len(audit.payloads) == 2
        bus.put_targets("ship", [RuleTarget(id="carrier", target=fixed, retry_policy=RetryPolicy())])
        dead = DeadLetterQueue(dlq)
        report = await dead.redrive(bus, limit=1)
        assert len(report.redriven) == 1 and report.left == []
        assert await bus.wait_idle(5)
        # The two events fail concurrently: either may have reached the queue first.
        [first] = [p["detail"]["n"] for p in fixed.payloads]
        assert first in (1, 2)
        rest = await dead.redrive({"orders": bus})
        assert len(rest.redriven) == 1
        assert await bus.wait_idle(5)
    assert sorted(p["detail"]["n"] for p in fixed.payloads) == [1, 2]
    assert len(audit.payloads) == 2  # the rule that had its events is not called again
    assert fixed.contexts[0].attempt == 1  # a fresh start
    assert await dead.list() == []
    await dead.aclose()


async def test_a_dead_letter_whose_target_is_gone_stays(tmp_path: Path) -> None:
    dlq = tmp_path / "dlq.db"
    bus, _ = failing_bus(dlq)
    async with bus:
        await bus.put_events([entry()])
        assert await bus.wait_idle(5)
        bus.remove_targets("ship", ["carrier"])
        dead = DeadLetterQueue(dlq)
        report = await dead.redrive(bus)
        assert report.redriven == [] and "has no target carrier" in report.left[0][1]
        assert len(await dead.list()) == 1
        missing = await dead.redrive({})
        assert "no bus named orders" in missing.left[0][1]
    await dead.aclose()


async def test_a_redrive_through_the_state_file_reaches_the_serving_process(tmp_path: Path) -> None:
    dlq, state = tmp_path / "dlq.db", tmp_path / "state.db"
    bus, _ = failing_bus(dlq, SqliteEventLog(state))
    fixed = Collector()
    async with bus:
        await bus.put_events([entry(detail={"n": 7})])
        assert await bus.wait_idle(5)
        bus.put_targets("ship", [RuleTarget(id="carrier", target=fixed)])
        dead = DeadLetterQueue(dlq)
        # As `eventbus dlq redrive` does from another process: into the bus's inbox, and a nudge.
        report = await dead.redrive(StateFile(state).bus)
        assert len(report.redriven) == 1
        with anyio.fail_after(10):
            while not fixed.payloads:
                await anyio.sleep(0.01)
        assert await bus.wait_idle(5)
    assert [p["detail"]["n"] for p in fixed.payloads] == [7]
    assert await dead.list() == []
    await dead.aclose()
