"""The SQLite backend: a bus's events, deliveries, schedules, archives, replays and its pipes'
places in one SQLite file, durable across crashes and restarts.

- ``store.py``: the file, its schema and version, the one connection and its writer thread
  (group commit);
- ``log.py``: ``SqliteEventLog``, accepted events until routed, the bus's lock and inbox;
- ``queue.py``: ``SqliteDeliveryQueue``, deliveries from routing until they end;
- ``lock.py``: one process serves a bus of a file; ``nudge.py``: waking it from another process;
- ``inbox.py``: other processes writing work for a bus (dead letters redriven);
- ``archives.py``: archives and replays; ``places.py``: where pipes' sources are;
- ``rows.py``: how values are written.

docs/durability.md says what it promises.
"""

from __future__ import annotations

from eventbus.bus.logs.sqlite.log import SqliteEventLog
from eventbus.bus.logs.sqlite.queue import SqliteDeliveryQueue

__all__ = ["SqliteDeliveryQueue", "SqliteEventLog"]
