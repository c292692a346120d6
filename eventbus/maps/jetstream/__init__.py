"""A map spread over the workers of a JetStream deployment (``runtime.backend: {type: jetstream}``).

Every worker (``eventbus run CONFIG``) runs the same map. One of them, elected, reads the file
and publishes its rows to the map's rows stream, a work-queue stream; every worker takes rows
from it and runs the map's target; each outcome goes back on the results stream, which the
reading worker collects: it keeps the retry decisions, the reduce and the summary, exactly as a
map in one process does (``JetStreamDispatcher`` is its ``RowDispatcher``). ``wire.py`` is what
travels, ``dispatcher.py`` the reading worker's side, ``worker.py`` every worker's side and
``shared.py`` the map as the runtime sees it (the election, the map's state, the checkpoint).
See docs/map.md and docs/scaling.md.
"""

from __future__ import annotations

from eventbus.maps.jetstream.shared import SharedMap

__all__ = ["SharedMap"]
