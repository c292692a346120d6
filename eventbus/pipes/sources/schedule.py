"""The schedule source: a record at every fire time of a ``rate(...)``, ``cron(...)`` or ``at(...)``.

Records are EventBridge's scheduled-rule events (``"detail-type": "Scheduled Event"``, ``"source":
"aws.events"``, the schedule's ARN in ``resources``). The clock is
injectable (``eventbus.bus.clock.ManualClock`` in tests), and fire times are counted from the
moment the source opens; a clock that jumps ahead gets one record for each fire time it passed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from anyio.abc import TaskGroup
from pydantic import ConfigDict, Field, field_validator

from eventbus.bus.clock import Clock, SystemClock
from eventbus.pipes.records import SourceRecord, aws_time
from eventbus.pipes.sources.base import DEFAULT_ACCOUNT, DEFAULT_REGION, BufferedSource, SourceConfig
from eventbus.schedule import Schedule

__all__ = ["ScheduleSource", "ScheduleSourceConfig", "schedule_arn", "scheduled_event"]


class ScheduleSource(BufferedSource):
    """Emits a scheduled event at each fire time; ``finished`` once an ``at(...)`` has fired."""

    def __init__(
        self,
        expression: str,
        *,
        name: str = "schedule",
        detail: dict[str, Any] | None = None,
        clock: Clock | None = None,
        capacity: int = 100,
        region: str = DEFAULT_REGION,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        Schedule.parse(expression)  # a bad expression fails here, with AWS's message
        super().__init__(arn=schedule_arn(name, region, account), capacity=capacity)
        self.expression = expression
        self.detail = dict(detail or {})
        self.clock: Clock = clock or SystemClock()
        self.region = region
        self.account = account
        self._last: datetime | None = None
        self._schedule: Schedule | None = None

    def __repr__(self) -> str:
        return f"ScheduleSource({self.expression!r})"

    async def open(self, task_group: TaskGroup) -> None:
        await super().open(task_group)
        # A rate counts from when the source first opened, read here rather than in the task:
        # time that passes before the task first runs still counts. A reopened source carries on.
        if self._schedule is None:
            now = self.clock.now()
            self._schedule = Schedule.parse(self.expression, start=now)
            self._last = now
        assert self._last is not None  # set on first open, moved on by every fire
        task_group.start_soon(self._tick, self._schedule, self._last)

    async def _tick(self, schedule: Schedule, last: datetime) -> None:
        while True:
            when = schedule.next_after(last)
            if when is None:
                self.producer_done()
                return
            await self.clock.sleep_until(when)
            await self.put(self._record(when))
            last = self._last = when

    def _record(self, when: datetime) -> SourceRecord:
        return scheduled_event(self.detail, arn=self.arn, when=when, region=self.region, account=self.account)


def schedule_arn(name: str, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT) -> str:
    return f"arn:aws:events:{region}:{account}:rule/{name}"


def scheduled_event(
    detail: Mapping[str, Any],
    *,
    arn: str,
    when: datetime,
    region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
) -> SourceRecord:
    """The "Scheduled Event" of the schedule ``arn`` firing at ``when``."""
    event_id = str(uuid.uuid4())
    event = {
        "version": "0",
        "id": event_id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": aws_time(when),
        "region": region,
        "resources": [arn],
        "detail": dict(detail),
    }
    return SourceRecord(record=event, record_id=event_id, ingestion_time=when)


class ScheduleSourceConfig(SourceConfig):
    """``schedule_expression``: ``rate(5 minutes)``, ``cron(0 12 * * ? *)`` or ``at(...)``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    kind: ClassVar[str] = "schedule"

    schedule_expression: str
    name: str = Field(default="schedule", min_length=1, max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict)
    #: Python only: the clock to schedule by (a ManualClock in tests).
    clock: Any = Field(default=None, exclude=True)

    @field_validator("schedule_expression")
    @classmethod
    def _check(cls, expression: str) -> str:
        Schedule.parse(expression)
        return expression

    def build(self) -> ScheduleSource:
        return ScheduleSource(self.schedule_expression, name=self.name, detail=self.detail, clock=self.clock)
