"""The archive store contract on the in-memory store (the SQLite and JetStream ones run it
beside their other contracts)."""

from __future__ import annotations

from eventbus.bus.logs.archives import ArchiveStore, InMemoryArchiveStore
from eventbus.testing.contracts import ArchiveStoreContract


class TestInMemoryArchiveStore(ArchiveStoreContract):
    async def new_store(self) -> ArchiveStore:
        return InMemoryArchiveStore()
