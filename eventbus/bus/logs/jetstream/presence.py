"""``Presence``: a worker says it is alive in the deployment's workers bucket, for `eventbus status`.

NATS does not tell one client which others consume a stream, so each worker routing a bus keeps
an entry in the key-value bucket ``<prefix>_WORKERS`` (key: the worker and the bus; value: host,
pid, bus, since when), rewritten every third of ``TTL``. The bucket's entries expire ``TTL``
seconds after their last write: a killed worker drops out of the list on its own, a worker that
stops deletes its entry at once. Nothing routes through it: a bucket that cannot be written only
costs the listing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from typing import Any

from eventbus._logger import get_logger
from eventbus.bus.logs.jetstream.connection import JetStreamConnection
from eventbus.bus.logs.jetstream.layout import bucket
from eventbus.bus.logs.jetstream.names import token

__all__ = ["TTL", "WORKER", "Presence", "workers_bucket"]

_log = get_logger("eventbus.jetstream")

#: Seconds a worker's entry outlives its last renewal (a killed worker's drops out after this).
TTL = 15.0
#: This process, as the workers list shows it.
WORKER = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def workers_bucket(prefix: str) -> str:
    """The bucket of deployment ``prefix``'s live workers."""
    return f"{prefix}_WORKERS"


class Presence:
    """This process's entry for bus ``bus`` in the workers bucket, kept while it runs."""

    def __init__(self, connection: JetStreamConnection, bus: str) -> None:
        self.connection = connection
        self.bus = bus
        self.key = f"{token(WORKER)}.{token(bus)}"
        self._value = json.dumps(
            {"worker": WORKER, "host": socket.gethostname(), "pid": os.getpid(), "bus": bus, "since": time.time()}
        ).encode()
        self._kv: Any = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                if self._kv is None:
                    settings = self.connection.settings
                    self._kv = await bucket(
                        self.connection.js, workers_bucket(settings.stream), settings, history=1, ttl=TTL
                    )
                await self._kv.put(self.key, self._value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a server electing a leader: say it again later
                _log.debug("could not renew the worker's entry", bus=self.bus, error=str(exc))
            await asyncio.sleep(TTL / 3)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        # Waited for, not awaited: its end (a CancelledError) is not ours to raise, and a
        # cancellation of the caller still reaches the caller.
        await asyncio.wait([task], timeout=2.0)
        if self._kv is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._kv.delete(self.key), 2.0)
