"""The schedule source on an injected clock: no test waits for minutes to pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from eventbus.bus import ManualClock
from eventbus.pipes import Pipe, PipeConfig, ScheduleSourceConfig
from eventbus.targets.recording import RecordingTarget
from tests.pipes.conftest import eventually, settled

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 1, 11, 59, 30, tzinfo=UTC)


async def test_rate_fires_once_a_period_and_catches_up_after_a_jump() -> None:
    clock = ManualClock(START)
    target = RecordingTarget()
    source = ScheduleSourceConfig(
        schedule_expression="rate(1 minute)", name="tick", detail={"job": "sweep"}, clock=clock
    )
    async with Pipe(PipeConfig(name="ticker", source=source, target=target)) as pipe:
        await anyio.wait_all_tasks_blocked()
        assert target.payloads == []
        clock.advance(59.999999)
        await anyio.wait_all_tasks_blocked()
        assert target.payloads == []  # not a microsecond early
        clock.advance(0.000001)
        await settled(pipe, 1)
        clock.advance(timedelta(minutes=3))
        await settled(pipe, 4)
    times = [p["time"] for p in target.payloads]
    assert times == [
        "2026-03-01T12:00:30Z",
        "2026-03-01T12:01:30Z",
        "2026-03-01T12:02:30Z",
        "2026-03-01T12:03:30Z",
    ]
    event = target.payloads[0]
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["detail"] == {"job": "sweep"}
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/tick"]


async def test_cron_and_filters_on_scheduled_events() -> None:
    clock = ManualClock(START)
    target = RecordingTarget()
    source = ScheduleSourceConfig(schedule_expression="cron(0 * * * ? *)", clock=clock)
    # Only the noon run gets through.
    config = PipeConfig(
        name="hourly", source=source, target=target, filter=[{"time": [{"prefix": "2026-03-01T12"}]}]
    )
    async with Pipe(config) as pipe:
        clock.advance(timedelta(hours=2))
        await settled(pipe, 2)
    assert [p["time"] for p in target.payloads] == ["2026-03-01T12:00:00Z"]


async def test_a_one_time_schedule_finishes() -> None:
    clock = ManualClock(START)
    target = RecordingTarget()
    source = ScheduleSourceConfig(schedule_expression="at(2026-03-01T12:30:00)", clock=clock)
    async with Pipe(PipeConfig(name="once", source=source, target=target)) as pipe:
        clock.advance(timedelta(hours=1))
        await pipe.wait_finished(timeout=5)
    assert [p["time"] for p in target.payloads] == ["2026-03-01T12:30:00Z"]


async def test_a_stopped_pipe_keeps_its_schedule_position() -> None:
    clock = ManualClock(START)
    target = RecordingTarget()
    source = ScheduleSourceConfig(schedule_expression="rate(5 minutes)", clock=clock)
    async with Pipe(PipeConfig(name="pause", source=source, target=target)) as pipe:
        clock.advance(timedelta(minutes=5))
        await settled(pipe, 1)
        await pipe.stop()
        await pipe.start()
        clock.advance(timedelta(minutes=5))
        await eventually(lambda: len(target.payloads) == 2)
    assert [p["time"] for p in target.payloads] == ["2026-03-01T12:04:30Z", "2026-03-01T12:09:30Z"]


def test_bad_expressions_fail_with_aws_message() -> None:
    with pytest.raises(ValueError, match="Parameter ScheduleExpression is not valid"):
        ScheduleSourceConfig(schedule_expression="rate(1 minutes)")
