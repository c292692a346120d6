"""One process serves a bus of a state file at a time: a lock per bus.

Two processes delivering the same bus from one file would each lease the same deliveries and
deliver everything twice, so the second is refused with a clear error. The lock is a POSIX
record lock on one byte (the bus's id) of ``<state file>.lock``: the kernel drops it when the
process ends, however it ends (a SIGKILL included), so a crashed process never leaves a stale
lock behind, and several buses of one file are locked independently.

POSIX record locks belong to the process, and closing any descriptor of the file drops all of
them: this module keeps one descriptor per lock file for the whole process, and refuses a bus
that this very process serves already.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from eventbus.errors import StateError, StateLockedError

try:  # POSIX; elsewhere buses are not locked across processes (documented).
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["BusLock", "lock_path", "served_elsewhere"]


def lock_path(state: Path) -> Path:
    return state.with_name(state.name + ".lock")


@dataclass
class _LockFile:
    fd: int
    held: set[int] = field(default_factory=set)


_files: dict[str, _LockFile] = {}
_guard = threading.Lock()


class BusLock:
    """The lock on bus ``bus_id`` of the state file ``state``, held until ``release``."""

    def __init__(self, state: Path, bus_id: int, bus: str) -> None:
        self.state = state
        self.bus_id = bus_id
        self.bus = bus
        self._key = os.path.realpath(lock_path(state))
        self._released = False

    @classmethod
    def acquire(cls, state: Path, bus_id: int, bus: str, holder: str | None = None) -> BusLock:
        """Take the lock or raise ``StateLockedError`` (``holder`` describes the process that
        serves the bus, as far as the file knows)."""
        lock = cls(state, bus_id, bus)
        with _guard:
            entry = _files.get(lock._key)
            if entry is not None and bus_id in entry.held:
                raise StateLockedError(
                    f"bus {bus!r} of {state} is already served by this process: run one bus of a "
                    "name per state file (stop the other one first)"
                )
            if entry is None:
                try:
                    fd = os.open(lock._key, os.O_RDWR | os.O_CREAT, 0o644)
                except OSError as exc:
                    raise StateError(
                        f"{lock_path(state)} cannot be opened ({exc.strerror or exc}): the folder of the "
                        "state file must be writable"
                    ) from None
                entry = _LockFile(fd)
                _files[lock._key] = entry
            if fcntl is not None:
                try:
                    fcntl.lockf(entry.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, bus_id)
                except OSError:
                    if not entry.held:
                        os.close(entry.fd)
                        del _files[lock._key]
                    who = f" ({holder})" if holder else ""
                    raise StateLockedError(
                        f"bus {bus!r} of {state} is served by another process{who}: two processes "
                        "serving one bus would deliver everything twice; stop the other one, or give "
                        "this one another state file"
                    ) from None
            entry.held.add(bus_id)
        return lock

    def release(self) -> None:
        with _guard:
            if self._released:
                return
            self._released = True
            entry = _files.get(self._key)
            if entry is None:
                return
            entry.held.discard(self.bus_id)
            if fcntl is not None:
                with contextlib.suppress(OSError):
                    fcntl.lockf(entry.fd, fcntl.LOCK_UN, 1, self.bus_id)
            if not entry.held:
                # Closing drops every lock this process has on the file: only once none is left.
                os.close(entry.fd)
                del _files[self._key]


def served_elsewhere(state: Path, bus_id: int) -> bool:
    """Whether another process holds the lock of bus ``bus_id`` now (this one: ``False``)."""
    if fcntl is None:
        return False
    key = os.path.realpath(lock_path(state))
    with _guard:
        entry = _files.get(key)
        if entry is not None and bus_id in entry.held:
            return False
        fd = entry.fd if entry is not None else None
        opened = False
        if fd is None:
            try:
                fd = os.open(key, os.O_RDWR)
            except OSError:
                return False  # no lock file: nobody ever served a bus of it
            opened = True
        try:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, bus_id)
            except OSError:
                return True
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, bus_id)
            return False
        finally:
            if opened:
                os.close(fd)
