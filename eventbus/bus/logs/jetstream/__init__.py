"""The NATS JetStream backend: many worker processes, on many machines, share one bus.

``JetStreamEventLog`` (log.py) and ``JetStreamDeliveryQueue`` (queue.py) implement the bus's two
storage seams on JetStream streams; ``names.py`` says what things are called on the server,
``layout.py`` makes or checks them, ``connection.py`` connects (bounded, with clear errors),
``publish.py`` and ``pull.py`` are the two halves of the wire, ``held.py`` keeps a live worker's
messages its own, ``rules.py`` is the bucket of rules put at run time, ``archives.py`` keeps archives and
replays. See docs/scaling.md.
"""

from __future__ import annotations

from eventbus.bus.logs.jetstream.archives import JetStreamArchiveStore
from eventbus.bus.logs.jetstream.connection import JetStreamConnection
from eventbus.bus.logs.jetstream.log import JetStreamEventLog
from eventbus.bus.logs.jetstream.names import BusNames
from eventbus.bus.logs.jetstream.queue import JetStreamDeliveryQueue
from eventbus.bus.logs.jetstream.rules import RuleBucket
from eventbus.bus.logs.jetstream.settings import JetStreamSettings

__all__ = [
    "BusNames",
    "JetStreamArchiveStore",
    "JetStreamConnection",
    "JetStreamDeliveryQueue",
    "JetStreamEventLog",
    "JetStreamSettings",
    "RuleBucket",
]
