"""Lines from a file descriptor (stdin) read on the event loop, without a thread.

A thread blocked in ``readline`` cannot be stopped: after SIGTERM it kept ``eventbus run`` alive
until the writer closed the pipe. Here the loop waits until the descriptor is readable and then
reads what is there, so cancelling the wait ends it at once, and nothing is read that is not kept.
Descriptors the loop cannot wait on (a regular file, ``/dev/null``) never block, and are read
directly.

Lines are split on ``\\n`` only and handed out as bytes (the caller decodes); a line longer than
``max_bytes`` is skipped without being held in memory and handed out as ``None``.
"""

from __future__ import annotations

import os
from collections import deque

import anyio
import anyio.lowlevel

__all__ = ["LineReader"]

_CHUNK = 65_536


class LineReader:
    """``await reader.readline()``: the next line, ``None`` for one too long, ``EOFError`` at the end."""

    def __init__(self, fd: int, max_bytes: int) -> None:
        self.fd = fd
        self.max_bytes = max_bytes
        self._pollable = True
        self._eof = False
        self._partial = bytearray()
        self._too_long = False
        self._lines: deque[bytes | None] = deque()

    @property
    def buffered(self) -> int:
        """Whole lines read from the descriptor and not handed out yet."""
        return len(self._lines)

    async def readline(self) -> bytes | None:
        """Cancelling it loses nothing: a chunk is only taken in once it has been read."""
        while not self._lines:
            if self._eof:
                raise EOFError
            self._feed(await self._read())
        return self._lines.popleft()

    async def _read(self) -> bytes:
        if self._pollable:
            try:
                await anyio.wait_readable(self.fd)
            except (OSError, ValueError, NotImplementedError):
                # epoll refuses regular files and /dev/null: reading them never blocks.
                self._pollable = False
        if not self._pollable:
            # A long file must not hold the loop: let the other tasks run between chunks.
            await anyio.lowlevel.checkpoint()
        return os.read(self.fd, _CHUNK)

    def _feed(self, chunk: bytes) -> None:
        if not chunk:
            self._eof = True
            if self._too_long or self._partial:
                self._lines.append(None if self._too_long else bytes(self._partial))
            self._partial.clear()
            return
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if not self._too_long and len(self._partial) + len(piece) > self.max_bytes:
                self._too_long = True
                self._partial.clear()
            if not self._too_long:
                self._partial += piece
            if end < 0:
                return
            self._lines.append(None if self._too_long else bytes(self._partial))
            self._partial.clear()
            self._too_long = False
            start = end + 1
