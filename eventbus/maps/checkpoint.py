"""The seam for resuming a map: where it stood, saved now and then, read back on the next run.

A map given a ``MapCheckpoint`` tracks its *position*: the point in its files before which every
row has ended (rows end out of order, so this is the end of the longest run of ended rows from
the start). Every few seconds, and when it is aborted, it saves the position and the counts of
the rows before it; a map of the same name started later reads on from there, so a stopped or
crashed run is not started over. A map that succeeded or failed clears its checkpoint.

Rows after the position that had ended are run again on resume (at least once, as in every
durable source here), and a reduce function is only given the results of the run that finishes.
A durable store (the runtime's SQLite backend) implements the protocol in a few lines;
``MemoryCheckpoint`` keeps it in the process, for tests and for a map restarted in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from eventbus.maps.rows import Position

__all__ = ["MapCheckpoint", "MemoryCheckpoint", "SavedPosition"]


@dataclass(frozen=True, slots=True)
class SavedPosition:
    """A map's position and the counts of the rows before it."""

    position: Position
    succeeded: int
    failed: int
    malformed: int = 0


class MapCheckpoint(Protocol):
    async def load(self, name: str) -> SavedPosition | None:
        """Where map ``name`` stood, or ``None`` to start from the beginning."""
        ...

    async def save(self, name: str, saved: SavedPosition) -> None: ...

    async def clear(self, name: str) -> None:
        """Map ``name`` ended: its next run starts from the beginning."""
        ...


class MemoryCheckpoint:
    """Positions kept in a dict, by map name."""

    def __init__(self) -> None:
        self.saved: dict[str, SavedPosition] = {}

    async def load(self, name: str) -> SavedPosition | None:
        return self.saved.get(name)

    async def save(self, name: str, saved: SavedPosition) -> None:
        self.saved[name] = saved

    async def clear(self, name: str) -> None:
        self.saved.pop(name, None)
