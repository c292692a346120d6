"""``Places``: where a pipe's source keeps its place, so that a restart neither repeats nor skips.

A source that reads something with a position (a file's rows, a folder's files) saves what it
has finished with, and loads it when it opens again. The in-memory ``MemoryPlaces`` keeps it for
the life of the process (a pipe stopped and started again); a durable runtime's state file keeps
it across processes (``eventbus.bus.logs.sqlite.places``). Keys and values are the source's own
text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

__all__ = ["MemoryPlaces", "Places"]


@runtime_checkable
class Places(Protocol):
    """One owner's (a pipe's) saved place: text values by text key."""

    async def load(self) -> dict[str, str]:
        """Everything saved, by key (empty the first time)."""
        ...

    async def save(self, changes: Mapping[str, str | None]) -> None:
        """Set these keys (``None`` deletes one); once this returns they survive what the store
        survives."""
        ...

    async def close(self) -> None:
        """Let go of the store; idempotent. ``load`` opens it again."""
        ...


class MemoryPlaces:
    """Places kept in this object (a pipe stopped and started in one process resumes)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def load(self) -> dict[str, str]:
        return dict(self.values)

    async def save(self, changes: Mapping[str, str | None]) -> None:
        for key, value in changes.items():
            if value is None:
                self.values.pop(key, None)
            else:
                self.values[key] = value

    async def close(self) -> None:
        return None
