"""The per-entry fast path agrees with the envelope's validation, and the log keeps its bound."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus.bus import EventLog, InMemoryEventLog, LogClosedError, LogRecord
from eventbus.bus.entries import fast_event, new_event_id
from eventbus.envelope import EnvelopeDefaults, event_from_entry, parse_time, validate_entry

texts = st.one_of(st.text(max_size=12), st.sampled_from(["", "shop", "é", "x" * 130]))
details = st.one_of(
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3).map(json.dumps),
    st.sampled_from(["", "[]", "1", "{", '{"a": NaN}', "null", '{"k": "é"}']),
    st.integers(),
)
optional = {
    "Resources": st.one_of(st.lists(texts, max_size=3), st.just("arn"), st.none()),
    "EventBusName": st.one_of(st.none(), st.text(max_size=5), st.integers()),
    "Time": st.sampled_from(["2025-01-01T00:00:00Z", "yesterday"]),
    "TraceHeader": st.sampled_from(["", "t"]),
    "Other": st.just(1),
}
entries = st.fixed_dictionaries(
    {}, optional={"Source": texts | st.integers(), "DetailType": texts, "Detail": details, **optional}
)


@settings(max_examples=300, deadline=None)
@given(entry=entries, limit=st.sampled_from([10, 256 * 1024]))
def test_fast_path_accepts_only_what_validate_entry_accepts(entry: dict[str, Any], limit: int) -> None:
    event = fast_event(
        entry,
        account="111111111111",
        region="eu-west-1",
        now_text="2026-01-01T00:00:00Z",
        max_entry_size=limit,
    )
    if event is None:
        return
    assert validate_entry(entry, max_entry_size=limit) is None
    expected = event_from_entry(
        entry,
        EnvelopeDefaults(account="111111111111", region="eu-west-1"),
        now=parse_time("2026-01-01T00:00:00Z"),
    ).to_dict()
    assert {k: v for k, v in event.items() if k != "id"} == {k: v for k, v in expected.items() if k != "id"}


def test_plain_valid_entries_take_the_fast_path() -> None:
    entry = {"Source": "shop", "DetailType": "order", "Detail": '{"n": 1}', "Resources": ["arn:a"]}
    event = fast_event(entry, account="111111111111", region="r", now_text="t", max_entry_size=1024)
    assert event is not None and event["detail"] == {"n": 1} and event["resources"] == ["arn:a"]


def test_event_ids_are_uuid4() -> None:
    import uuid

    for _ in range(200):
        text = new_event_id()
        value = uuid.UUID(text)
        assert str(value) == text and value.version == 4 and value.variant == uuid.RFC_4122


def record(n: int) -> LogRecord:
    return LogRecord({"n": n}, parse_time("2026-01-01T00:00:00Z"))


@pytest.mark.anyio
async def test_in_memory_log_bounds_unacknowledged_records() -> None:
    log = InMemoryEventLog(capacity=3)
    assert await log.append([record(i) for i in range(5)], wait=False) == 3
    assert await log.pending() == 3 and log.unconsumed() == 3
    got = await log.consume(2)
    assert [r.event["n"] for r in got] == [0, 1]
    assert log.unconsumed() == 1 and await log.pending() == 3
    await log.ack([got[0].offset])
    assert await log.append([record(9)], wait=False) == 1

    async def later() -> None:
        await anyio.wait_all_tasks_blocked()  # the append below is waiting for room by now
        await log.ack([got[1].offset])

    async with anyio.create_task_group() as tg:
        tg.start_soon(later)
        with anyio.fail_after(5):
            assert await log.append([record(10)]) == 1
    assert [r.event["n"] for r in await log.consume(10)] == [2, 9, 10]
    await log.close()
    assert await log.consume(10) == []
    with pytest.raises(LogClosedError):
        await log.append([record(11)])
    with pytest.raises(ValueError):
        InMemoryEventLog(capacity=0)


class CountingLog(InMemoryEventLog):
    """Another log behind the same protocol: what a durable log plugs into."""

    def __init__(self) -> None:
        super().__init__(capacity=100)
        self.appended = 0
        self.acked = 0

    async def append(self, records: Sequence[LogRecord], *, wait: bool = True) -> int:
        taken = await super().append(records, wait=wait)
        self.appended += taken
        return taken

    async def ack(self, offsets: Sequence[int]) -> None:
        self.acked += len(offsets)
        await super().ack(offsets)


@pytest.mark.anyio
async def test_the_bus_runs_on_any_event_log() -> None:
    from eventbus.bus import EventBus, RuleTarget

    from .helpers import Collector, entry

    log = CountingLog()
    assert isinstance(log, EventLog)
    target = Collector()
    bus = EventBus(log=log)
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="c", target=target)])
    async with bus:
        await bus.put_events([entry(), entry(source="other")])
    assert log.appended == 2 and log.acked == 2 and len(target.payloads) == 1


def test_batched_event_ids_are_distinct_uuid4() -> None:
    import uuid

    from eventbus.bus.entries import new_event_ids

    ids = new_event_ids(500)
    assert len(set(ids)) == 500
    for text in ids:
        value = uuid.UUID(text)
        assert str(value) == text and value.version == 4 and value.variant == uuid.RFC_4122
