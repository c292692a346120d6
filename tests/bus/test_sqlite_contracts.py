"""The contract suites on the SQLite backend, restarts included: a real file, reopened."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from eventbus.bus import Clock, DeliveryQueue, EventLog, SystemClock
from eventbus.bus.logs.archives import ArchiveStore
from eventbus.bus.logs.sqlite import SqliteDeliveryQueue, SqliteEventLog
from eventbus.testing.contracts import ArchiveStoreContract, DeliveryQueueContract, EventLogContract


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


class TestSqliteArchiveStore(ArchiveStoreContract):
    logs: list[SqliteEventLog]

    @pytest.fixture(autouse=True)
    async def _logs(self) -> AsyncIterator[None]:
        self.logs = []
        yield
        for log in self.logs:
            await log.close()

    async def new_store(self) -> ArchiveStore:
        log = SqliteEventLog(self.tmp_path / "state.db")
        self.logs.append(log)
        await log.open("orders", SystemClock())
        return log.archive_store()

    async def reopen(self, store: ArchiveStore) -> ArchiveStore | None:
        await self.logs.pop().close()  # the process that held the bus is gone
        return await self.new_store()
