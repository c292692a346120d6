"""What the dead-letter pages drive: a ``DeadLetterService`` (the archive and replay pages drive
the server's ``ArchiveService``).

Keeping dead letters with their event, rule, target and reason, and sending one back to the one
rule target it failed for, is the SQLite dead-letter queues' job (``eventbus.bus.dead_letters``).
The console lists and redrives through this protocol (``mount_console`` gives it the SQLite
queues of the served rules); a console given none shows the page with a note saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

__all__ = ["DeadLetter", "DeadLetterQueueInfo", "DeadLetterService", "Redriven"]

UNAVAILABLE_DEAD_LETTERS = (
    "This console was given no dead-letter service: mount it with mount_console(server) to read "
    "the SQLite dead-letter queues of the served rules, or pass dead_letters=... of your own."
)
UNAVAILABLE_ARCHIVES = (
    "This server was given no archive service (its ArchivesApi has none): EventbusServer serves "
    "the archives of its buses unless told otherwise."
)


@dataclass(frozen=True, slots=True)
class DeadLetterQueueInfo:
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One undeliverable event, as its dead-letter queue keeps it."""

    id: str
    queue: str
    event: dict[str, Any]
    bus: str | None = None
    rule: str | None = None
    target_id: str | None = None
    #: AWS's ``ERROR_CODE`` and ``ERROR_MESSAGE`` attributes.
    error_code: str | None = None
    reason: str | None = None
    retry_attempts: int = 0
    #: The retry limit that ran out (``EXHAUSTED_RETRY_CONDITION``), if any.
    condition: str | None = None
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Redriven:
    """What a redrive did: the ids sent back (and removed from the queue), and those that were not,
    each with why."""

    sent: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = field(default_factory=tuple)


@runtime_checkable
class DeadLetterService(Protocol):
    async def queues(self) -> Sequence[DeadLetterQueueInfo]: ...

    async def entries(self, queue: str, limit: int) -> Sequence[DeadLetter]: ...

    async def redrive(self, queue: str, ids: Sequence[str] | None) -> Redriven:
        """Send the entries ``ids`` (``None``: all of them) back to the rule target each failed
        for, removing each from the queue once the bus has accepted it again."""
        ...
