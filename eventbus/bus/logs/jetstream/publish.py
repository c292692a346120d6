"""Publishing to JetStream with acknowledgements awaited together, not one round trip a message.

``Publisher.publish_many`` writes every message at once, each with its ``Nats-Msg-Id`` and a
reply subject of its own on one shared inbox, then waits for all the acknowledgements: a
PutEvents of ten entries costs one round trip, not ten. A message that got no acknowledgement
(a timeout, a cluster electing a leader, a reconnect) is published again with the same id until
``publish_retry`` runs out: JetStream stores it once, whichever copy arrived.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from eventbus._logger import get_logger
from eventbus.bus.logs.jetstream.settings import JetStreamSettings

__all__ = ["PublishFailed", "Publisher"]

_log = get_logger("eventbus.jetstream")

_SEQ = re.compile(rb'"seq":(\d+)')


@dataclass(slots=True)
class PublishFailed:
    """Why one message was not stored; ``final`` when publishing it again cannot help."""

    reason: str
    final: bool = False

    def __str__(self) -> str:
        return self.reason


class _Call:
    """One round of ``publish_many``: how many acknowledgements it still waits for."""

    __slots__ = ("done", "left")

    def __init__(self, left: int) -> None:
        self.left = left
        self.done = anyio.Event()


class _Pending:
    __slots__ = ("call", "result")

    def __init__(self, call: _Call) -> None:
        self.call = call
        self.result: int | PublishFailed | None = None


class Publisher:
    """Publishes with acknowledgements on one connection (``start`` subscribes its inbox)."""

    def __init__(self, nc: Any, settings: JetStreamSettings) -> None:
        self._nc = nc
        self._settings = settings
        self._prefix = ""
        self._pending: dict[str, _Pending] = {}
        self._tokens = itertools.count()
        self._sub: Any = None

    async def start(self) -> None:
        self._prefix = self._nc.new_inbox() + "."
        self._sub = await self._nc.subscribe(self._prefix + "*", cb=self._on_ack)

    async def stop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception:  # a closed connection has nothing left to unsubscribe
                return

    async def _on_ack(self, msg: Any) -> None:
        pending = self._pending.get(msg.subject[len(self._prefix) :])
        if pending is None or pending.result is not None:
            return
        headers = msg.headers
        if headers and headers.get("Status"):
            # 503: no stream answers the subject right now (no leader yet, or no stream at all).
            pending.result = PublishFailed(f"no JetStream answer (status {headers.get('Status')})")
        else:
            pending.result = _stored_at(msg.data)
        call = pending.call
        call.left -= 1
        if call.left == 0:
            call.done.set()

    async def publish_many(
        self, subject: str | Sequence[str], bodies: Sequence[bytes], ids: Sequence[str]
    ) -> list[int | PublishFailed]:
        """Publish ``bodies`` (to ``subject``, or each to its own subject) with ``ids`` as their
        ``Nats-Msg-Id``; the stream sequence of each one stored, or why it was not."""
        results: list[int | PublishFailed] = [PublishFailed("not published")] * len(bodies)
        todo = list(range(len(bodies)))
        deadline = anyio.current_time() + self._settings.publish_retry
        delay = 0.2
        while todo:
            got = await self._round(subject, bodies, ids, todo)
            again = []
            for index, result in zip(todo, got, strict=True):
                results[index] = result
                if isinstance(result, PublishFailed) and not result.final:
                    again.append(index)
            if not again or anyio.current_time() + delay > deadline:
                break
            _log.warning(
                "publish not acknowledged; publishing again", messages=len(again), reason=str(results[again[0]])
            )
            await anyio.sleep(delay)
            delay = min(delay * 2, 2.0)
            todo = again
        return results

    async def _round(
        self, subject: str | Sequence[str], bodies: Sequence[bytes], ids: Sequence[str], todo: list[int]
    ) -> list[int | PublishFailed]:
        nc = self._nc
        prefix = self._prefix
        call = _Call(len(todo))
        mine: list[tuple[str, _Pending]] = []
        try:
            for index in todo:
                token = str(next(self._tokens))
                pending = _Pending(call)
                self._pending[token] = pending
                mine.append((token, pending))
                to = subject if isinstance(subject, str) else subject[index]
                await nc.publish(to, bodies[index], reply=prefix + token, headers={"Nats-Msg-Id": ids[index]})
            with anyio.move_on_after(self._settings.publish_timeout):
                await call.done.wait()
        except Exception as exc:  # the connection closed under us
            reason = PublishFailed(f"{type(exc).__name__}: {exc}".rstrip(": "), final=True)
            out: list[int | PublishFailed] = [p.result if p.result is not None else reason for _, p in mine]
            return out + [reason] * (len(todo) - len(mine))
        finally:
            for token, _ in mine:
                self._pending.pop(token, None)
        timeout = PublishFailed("no acknowledgement in time")
        return [p.result if p.result is not None else timeout for _, p in mine]


def _stored_at(data: bytes) -> int | PublishFailed:
    """The stream sequence in a publish acknowledgement (``{"stream":"S","seq":7}``), read without
    a JSON parse in the common case; an error answer as ``PublishFailed``."""
    found = _SEQ.search(data)
    if found is not None and b'"error"' not in data:
        return int(found[1])
    try:
        answer = json.loads(data)
    except ValueError:
        return PublishFailed("an unreadable acknowledgement")
    error = answer.get("error") if isinstance(answer, dict) else None
    if error:
        code = int(error.get("code", 0) or 0)
        # 503s and timeouts pass; anything else (a limit, a wrong stream) stays.
        return PublishFailed(str(error.get("description", error)), final=code not in (503, 504))
    return int(answer.get("seq", 0)) if isinstance(answer, dict) else 0
