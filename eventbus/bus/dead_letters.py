"""Dead letters you can see and send back: ``DeadLetterQueue`` over a SQLite queue used as a rule
target's dead-letter target.

Each dead letter keeps the original event (the message body), AWS's attributes (``ERROR_CODE``,
``ERROR_MESSAGE``, ``RULE_ARN``, ``TARGET_ARN``, ``RETRY_ATTEMPTS``, ``EXHAUSTED_RETRY_CONDITION``)
and, beside them, where it failed to go: the bus, the rule and the target id. ``list`` shows them
without receiving them; ``redrive`` sends each back to the one rule target it failed for (not to
every rule that matches it) and removes it from the queue only once its bus has accepted it again:
a running bus in this process (``EventBus.redeliver``), or a bus's state file (``StateFile``:
the process serving it takes it now, or at its next start). A redriven event keeps its id and
starts afresh: attempts from one, its age from now.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from eventbus.errors import EventBusError
from eventbus.targets.queue import SqliteQueue

__all__ = ["DeadLetter", "DeadLetterQueue", "Redelivers", "RedriveReport"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead letter: the event, where it failed to go, and why."""

    message_id: str
    event: dict[str, Any]
    bus: str
    rule: str
    target: str
    error_code: str
    error_message: str
    #: ``MaximumRetryAttempts`` or ``MaximumEventAgeInSeconds``; ``None`` for an error no retry fixes.
    condition: str | None
    retry_attempts: int
    sent: datetime
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{self.bus}/{self.rule}/{self.target}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (what ``eventbus dlq list`` prints a line of when piped)."""
        return {
            "message_id": self.message_id,
            "sent": self.sent.isoformat().replace("+00:00", "Z"),
            "bus": self.bus,
            "rule": self.rule,
            "target": self.target,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "exhausted_retry_condition": self.condition,
            "retry_attempts": self.retry_attempts,
            "event": self.event,
        }


class Redelivers(Protocol):
    """Where a redrive sends a dead letter: something that takes it back for one rule target."""

    async def redeliver(self, event: Mapping[str, Any], *, rule: str, target: str) -> None: ...


@dataclass
class RedriveReport:
    """What a redrive did: the dead letters sent back (and removed), and those left, with why."""

    redriven: list[DeadLetter] = field(default_factory=list)
    left: list[tuple[DeadLetter, str]] = field(default_factory=list)


class DeadLetterQueue:
    """The dead letters of a SQLite queue (``queue: {type: sqlite, path: ...}`` as a dead letter)."""

    def __init__(self, queue: SqliteQueue | str | os.PathLike[str]) -> None:
        if isinstance(queue, SqliteQueue):
            self.queue = queue
            self._owned = False
        else:
            path = Path(queue)
            if not path.exists():
                raise EventBusError(f"{path} does not exist: no dead letter was written there yet")
            self.queue = SqliteQueue(path)
            self._owned = True

    def __repr__(self) -> str:
        return f"DeadLetterQueue({self.queue!r})"

    async def list(
        self,
        *,
        bus: str | None = None,
        rule: str | None = None,
        target: str | None = None,
        limit: int | None = None,
    ) -> list[DeadLetter]:
        """The dead letters, oldest first (only those of ``bus``, ``rule``, ``target`` when given),
        at most ``limit``; nothing is received or changed. Messages that are not a rule target's
        dead letters (no origin: a pipe's, or sent by hand) are left out."""
        out: list[DeadLetter] = []
        for message, origin in await self.queue.peek():
            if not origin.get("rule"):
                continue
            letter = _letter(message.message_id, message.body, message.attributes, origin, message.sent_timestamp)
            if (bus is None or letter.bus == bus) and (rule is None or letter.rule == rule) and (
                target is None or letter.target == target
            ):
                out.append(letter)
                if limit is not None and len(out) >= limit:
                    break
        return out

    async def redrive(
        self,
        to: Redelivers | Mapping[str, Redelivers] | Callable[[str], Redelivers],
        *,
        bus: str | None = None,
        rule: str | None = None,
        target: str | None = None,
        limit: int | None = None,
    ) -> RedriveReport:
        """Send each dead letter (of ``bus``, ``rule``, ``target``, at most ``limit``) back to its
        rule target, through ``to``: a running ``EventBus``, buses by name, or a function of the
        bus name (``StateFile(path).bus`` for buses served by another process). Each is removed
        from the queue once accepted again; one that is refused stays, and is reported."""
        report = RedriveReport()
        for letter in await self.list(bus=bus, rule=rule, target=target, limit=limit):
            try:
                destination = _destination(to, letter.bus)
                await destination.redeliver(letter.event, rule=letter.rule, target=letter.target)
            except (EventBusError, LookupError, ValueError) as exc:
                report.left.append((letter, str(exc)))
                continue
            await self.queue.delete_messages([letter.message_id])
            report.redriven.append(letter)
        return report

    async def aclose(self) -> None:
        if self._owned:
            await self.queue.aclose()


def _destination(to: Any, bus: str) -> Redelivers:
    if hasattr(to, "redeliver") and not isinstance(to, Mapping):
        if getattr(to, "name", bus) != bus:
            raise LookupError(f"it failed on bus {bus}, not {to.name}")
        found: Redelivers = to
        return found
    if isinstance(to, Mapping):
        if bus not in to:
            raise LookupError(f"no bus named {bus} to send it back to")
        mapped: Redelivers = to[bus]
        return mapped
    made: Redelivers = to(bus)
    return made


def _letter(
    message_id: str, body: str, attributes: Mapping[str, str], origin: Mapping[str, str], sent: float
) -> DeadLetter:
    try:
        event = json.loads(body)
    except ValueError:
        event = {"body": body}
    try:
        retries = int(attributes.get("RETRY_ATTEMPTS", "0"))
    except ValueError:
        retries = 0
    return DeadLetter(
        message_id=message_id,
        event=event if isinstance(event, dict) else {"body": event},
        bus=origin.get("bus", "default"),
        rule=origin.get("rule", ""),
        target=origin.get("target", ""),
        error_code=attributes.get("ERROR_CODE", ""),
        error_message=attributes.get("ERROR_MESSAGE", ""),
        condition=attributes.get("EXHAUSTED_RETRY_CONDITION"),
        retry_attempts=retries,
        sent=datetime.fromtimestamp(sent, UTC),
        attributes=dict(attributes),
    )
