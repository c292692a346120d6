"""The invocation front: ``invoke:`` routes that run a target over HTTP, now or as a job.

The modules follow a request: ``front`` (the HTTP routes, admission) -> ``limits`` (keys' token
buckets, the concurrency gate) and ``cache`` -> ``routes`` (running the target) -> ``answers``
(the answer as HTTP, server-sent events); jobs live in ``jobs/``: ``store`` (the protocol),
``memory``, ``sqlite`` (a file of its own) and ``state`` (the runtime's state file): its stores, ``runner`` (taking and running them) and ``hub``
(their live events). ``refusals`` is every answer that is not the target's.
"""

from __future__ import annotations

from eventbus.server.invoke.front import InvokeFront
from eventbus.server.invoke.jobs.memory import MemoryJobStore
from eventbus.server.invoke.jobs.sqlite import SqliteJobStore
from eventbus.server.invoke.jobs.state import StateFileJobStore
from eventbus.server.invoke.jobs.store import Job, JobStore, JobStoreError
from eventbus.server.invoke.refusals import Refusal

__all__ = [
    "InvokeFront",
    "Job",
    "JobStore",
    "JobStoreError",
    "MemoryJobStore",
    "Refusal",
    "SqliteJobStore",
    "StateFileJobStore",
]
