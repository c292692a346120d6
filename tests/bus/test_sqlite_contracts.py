"""The contract suites on the SQLite backend, restarts included: a real file, reopened."""

from __future__ import annotations

from eventbus.bus import Clock, DeliveryQueue, EventLog
from eventbus.bus.logs.sqlite import SqliteDeliveryQueue, SqliteEventLog
from eventbus.testing.contracts import DeliveryQueueContract, EventLogContract


class TestSqliteEventLog(EventLogContract):
    capacity = 3

    async def new_log(self) -> EventLog:
        return SqliteEventLog(self.tmp_path / "state.db", capacity=3)

    async def reopen(self, log: EventLog) -> EventLog | None:
        return SqliteEventLog(self.tmp_path / "state.db", capacity=3)


class TestSqliteDeliveryQueue(DeliveryQueueContract):
    async def new_queue(self, clock: Clock) -> DeliveryQueue:
        return await SqliteEventLog(self.tmp_path / "state.db").open("orders", clock)

    async def reopen(self, queue: DeliveryQueue, clock: Clock) -> DeliveryQueue | None:
        assert isinstance(queue, SqliteDeliveryQueue)
        await queue.log.close()  # the process that held the bus is gone
        return await SqliteEventLog(self.tmp_path / "state.db").open("orders", clock)
