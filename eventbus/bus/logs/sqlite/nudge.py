"""Waking the process that serves a bus when another process wrote work for it.

Inside a process, whoever writes work wakes whoever waits for it directly. Another process (a
dead-letter redrive, a replay started from the command line) writes its work into the state
file and then *nudges* the process serving the bus: one empty datagram on a local socket that
process listens on. A nudge carries nothing; the woken process reads what is new from the
file. Nobody listening (the bus is not served now) is fine: the work waits in the file for the
next start. So nothing polls the file.

The socket is named after the state file and the bus: in Linux's abstract namespace (no file,
gone with the process), elsewhere a socket file in the temporary folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["Listener", "nudge"]

_ABSTRACT = sys.platform.startswith("linux")


def _address(state: Path, bus: str) -> str:
    digest = hashlib.sha256(f"{os.path.realpath(state)}\0{bus}".encode()).hexdigest()[:32]
    if _ABSTRACT:
        return f"\0eventbus-{digest}"
    return os.path.join(tempfile.gettempdir(), f"eventbus-{digest}.sock")


def nudge(state: Path, bus: str) -> bool:
    """Wake the process serving ``bus`` of ``state``, if there is one; whether one heard it."""
    if not hasattr(socket, "AF_UNIX"):  # pragma: no cover - Windows
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(b"n", _address(state, bus))
        except OSError:
            return False
    return True


class Listener:
    """Calls ``on_nudge()`` (in a thread of its own) whenever ``bus`` of ``state`` is nudged."""

    def __init__(self, state: Path, bus: str, on_nudge: Callable[[], None]) -> None:
        self._on_nudge = on_nudge
        self._address = _address(state, bus)
        self._closed = False
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        if not hasattr(socket, "AF_UNIX"):  # pragma: no cover - Windows
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            if not _ABSTRACT:
                # Whoever holds the bus's lock owns the name: a file left by a crash is stale.
                with contextlib.suppress(OSError):
                    os.unlink(self._address)
            sock.bind(self._address)
        except OSError:
            sock.close()
            return  # no nudges then: work from other processes waits for the next start
        self._sock = sock
        self._thread = threading.Thread(target=self._listen, name=f"eventbus-nudge {bus}", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        sock = self._sock
        assert sock is not None
        try:
            while True:
                try:
                    sock.recv(64)
                except OSError:
                    return
                if self._closed:
                    return
                try:
                    self._on_nudge()
                except Exception:  # a nudge must never end the listener
                    continue
        finally:
            sock.close()
            if not _ABSTRACT:
                with contextlib.suppress(OSError):
                    os.unlink(self._address)

    def close(self) -> None:
        """Stop listening and free the name (blocking, briefly: call it from a worker thread)."""
        if self._closed or self._sock is None:
            self._closed = True
            return
        self._closed = True
        # recv() is not woken by another thread closing the socket: send it one more datagram.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
            sock.sendto(b"x", self._address)
        if self._thread is not None:
            # The name is free once the thread closed the socket: a reload binds it again at once.
            self._thread.join(timeout=2.0)
