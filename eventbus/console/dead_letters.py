"""The dead-letter pages over the SQLite queues the served rules dead-letter to.

A SQLite queue used as a rule target's dead letter keeps each event with where it failed to go
(bus, rule, target id) and AWS's attributes; the durable state's ``DeadLetterQueue`` lists them
without receiving them, and ``EventBus.redeliver`` takes one back for the one rule target it
failed for. ``SqliteDeadLetters`` serves them to the console by queue (named like an SQS ARN
names them: the file's stem), redriving one, some or all, each removed from its queue only once
its bus has accepted it again.

A server whose rules dead-letter to no SQLite queue shows no queue, and the page says how to
get one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eventbus.bus.dead_letters import DeadLetterQueue
from eventbus.console.services import DeadLetter, DeadLetterQueueInfo, DeadLetterService, Redriven
from eventbus.errors import EventBusError
from eventbus.server.errors import ApiError

__all__ = ["SqliteDeadLetters", "sqlite_dead_letters"]

def sqlite_dead_letters(server: Any) -> DeadLetterService:
    """The ``DeadLetterService`` over the SQLite dead-letter queues of ``server``'s rules."""
    return SqliteDeadLetters(server, DeadLetterQueue)


class SqliteDeadLetters:
    def __init__(self, server: Any, reader: Any) -> None:
        self.server = server
        self._reader = reader

    def _queues(self) -> dict[str, Any]:
        """Queue name -> the SQLite queue of every dead letter the served rules use."""
        found: dict[str, Any] = {}
        for entry in self.server.state.buses.entries():
            for rule in entry.bus.list_rules():
                for target in rule.targets:
                    queue = _sqlite_queue(target.dead_letter)
                    if queue is not None:
                        found.setdefault(Path(str(queue.path)).stem, queue)
        return found

    def _queue(self, name: str) -> Any:
        queue = self._queues().get(name)
        if queue is None:
            raise ApiError("ResourceNotFoundException", f"No rule of this server dead-letters to a queue named {name}.", 404)
        return self._reader(queue)

    async def queues(self) -> Sequence[DeadLetterQueueInfo]:
        out = []
        for name, queue in sorted(self._queues().items()):
            out.append(DeadLetterQueueInfo(name, len(await self._reader(queue).list())))
        return out

    async def entries(self, queue: str, limit: int) -> Sequence[DeadLetter]:
        letters = await self._queue(queue).list(limit=limit)
        return [_letter(queue, letter) for letter in letters]

    async def redrive(self, queue: str, ids: Sequence[str] | None) -> Redriven:
        reader = self._queue(queue)
        wanted = None if ids is None else set(ids)
        sent: list[str] = []
        failed: list[tuple[str, str]] = []
        for letter in await reader.list():
            if wanted is not None and letter.message_id not in wanted:
                continue
            try:
                bus = self.server.state.buses.get(letter.bus)
                await bus.redeliver(letter.event, rule=letter.rule, target=letter.target)
            except (ApiError, EventBusError, LookupError, ValueError) as exc:
                failed.append((letter.message_id, getattr(exc, "message", None) or str(exc)))
                continue
            await reader.queue.delete_messages([letter.message_id])
            sent.append(letter.message_id)
        if wanted is not None:
            failed += [(i, "not in the queue (already redriven?)") for i in sorted(wanted - set(sent) - {f[0] for f in failed})]
        return Redriven(tuple(sent), tuple(failed))


def _sqlite_queue(target: Any) -> Any:
    """The SQLite queue behind a dead-letter target (a ``QueueTarget``, perhaps timed by the
    server's metrics), or ``None``."""
    from eventbus.targets.queue import SqliteQueue

    for candidate in (target, getattr(target, "target", None)):
        queue = getattr(candidate, "queue", None)
        if isinstance(queue, SqliteQueue):
            return queue
    return None


def _letter(queue: str, letter: Any) -> DeadLetter:
    return DeadLetter(
        id=letter.message_id,
        queue=queue,
        event=letter.event,
        bus=letter.bus,
        rule=letter.rule,
        target_id=letter.target,
        error_code=letter.error_code or None,
        reason=letter.error_message or None,
        retry_attempts=letter.retry_attempts,
        condition=letter.condition,
        time=letter.sent,
    )
