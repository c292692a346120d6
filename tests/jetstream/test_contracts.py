"""The storage contracts on the JetStream backend, against a real nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from eventbus.bus import Clock, DeliveryQueue, EventLog
from eventbus.bus.logs.archives import ArchiveStore
from eventbus.bus.logs.jetstream import (
    JetStreamArchiveStore,
    JetStreamConnection,
    JetStreamDeliveryQueue,
    JetStreamEventLog,
)
from eventbus.bus.logs.jetstream.settings import JetStreamSettings
from eventbus.testing.contracts import ArchiveStoreContract, DeliveryQueueContract, EventLogContract


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    # Also on uvloop, the loop `eventbus serve` runs on: a log closed there once hung.
    return ("asyncio", {"use_uvloop": True}) if request.param == "uvloop" else "asyncio"


class _OnServer:
    server: str
    deployment: str
    logs: list[JetStreamEventLog]

    @pytest.fixture(autouse=True)
    async def _server(self, nats_server: str, prefix: str) -> AsyncIterator[None]:
        self.server, self.deployment, self.logs = nats_server, prefix, []
        yield
        for log in self.logs:  # the queue tests close only the queues
            await log.close()

    def log(self) -> JetStreamEventLog:
        log = JetStreamEventLog([self.server], stream=self.deployment, ack_wait=5)
        self.logs.append(log)
        return log


class TestJetStreamEventLog(_OnServer, EventLogContract):
    async def new_log(self) -> EventLog:
        return self.log()

    async def reopen(self, log: EventLog) -> EventLog | None:
        return self.log()


class TestJetStreamDeliveryQueue(_OnServer, DeliveryQueueContract):
    clock_driven = False

    async def new_queue(self, clock: Clock) -> DeliveryQueue:
        return await self.log().open("orders", clock)

    async def reopen(self, queue: DeliveryQueue, clock: Clock) -> DeliveryQueue | None:
        assert isinstance(queue, JetStreamDeliveryQueue)
        return await self.log().open("orders", clock)


class TestJetStreamArchiveStore(_OnServer, ArchiveStoreContract):
    def store(self) -> JetStreamArchiveStore:
        settings = JetStreamSettings(servers=[self.server], stream=self.deployment)
        return JetStreamArchiveStore(JetStreamConnection(settings))

    async def new_store(self) -> ArchiveStore:
        return self.store()

    async def reopen(self, store: ArchiveStore) -> ArchiveStore | None:
        return self.store()
