"""Acknowledgements sent without waiting, and a barrier for when the count must be right.

A worker acknowledges each message with a plain ``+ACK`` and goes on: no round trip on the
delivery path. The server handles one consumer's acknowledgements in the order they arrive and
answers an acknowledgement that asks for an answer once it is handled, even a repeated one. So
``settle`` acknowledges the last message of each consumer again, asking for the answer: once the
answers are in, every acknowledgement sent before is counted, and ``pending`` says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import anyio

from eventbus._logger import get_logger

__all__ = ["Acks"]

_log = get_logger("eventbus.jetstream")

#: Seconds to wait for the server's answer to a settling acknowledgement.
_SETTLE_TIMEOUT = 5.0


def _consumer(reply: str) -> str:
    """``$JS.ACK.<stream>.<consumer>...``: the part naming the consumer."""
    parts = reply.split(".")
    return ".".join(parts[:4] if len(parts) < 12 else parts[:6])


class Acks:
    """Acknowledges messages on connection ``nc``; ``settle`` waits until they are counted."""

    def __init__(self, nc: Any) -> None:
        self._nc = nc
        #: The last message acknowledged on each consumer since the last ``settle``.
        self._last: dict[str, str] = {}
        #: The consumers seen, each as the start of its messages' reply subjects (``<key>.``):
        #: a prefix test finds a message's consumer for less than taking its subject apart.
        self._seen: list[str] = []

    def _key(self, reply: str) -> str:
        for head in self._seen:
            if reply.startswith(head):
                return head
        head = _consumer(reply) + "."
        if len(self._seen) < 64:
            self._seen.append(head)
        return head

    async def ack(self, msgs: Sequence[Any]) -> None:
        publish = self._nc.publish
        last = self._last
        try:
            for msg in msgs:
                reply = msg.reply
                await publish(reply, b"")
                last[self._key(reply)] = reply
        except Exception as exc:
            # A lost connection: the server hands them out again after the ack wait (at least once).
            _log.warning("acknowledgements not sent", messages=len(msgs), error=str(exc))

    async def settle(self) -> None:
        """Until every acknowledgement sent so far is counted by the server."""
        replies, self._last = list(self._last.values()), {}
        if not replies:
            return
        async with anyio.create_task_group() as tg:
            for reply in replies:
                tg.start_soon(self._confirm, reply)

    async def _confirm(self, reply: str) -> None:
        with contextlib.suppress(Exception):
            await self._nc.request(reply, b"+ACK", timeout=_SETTLE_TIMEOUT)
