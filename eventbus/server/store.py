"""``ResourceStore``: where the API keeps what it created, so a restart finds it again.

What the API creates (buses, rules and their targets, connections, API destinations, pipes, and
the tags on buses and rules) is
kept as the request documents that made it, by kind and name; on start the server puts them
back through the same code paths the API uses, so a restored rule is exactly the rule the API
made. ``MemoryStore`` keeps them for the life of the process (and for tests that restart a server
in one process); a durable store keeps them in the runtime's state database.
"""

from __future__ import annotations

import copy
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["KINDS", "MemoryStore", "ResourceKind", "ResourceStore"]

ResourceKind = Literal["bus", "rule", "connection", "api-destination", "pipe", "tags"]
#: The order resources are restored in: what a later kind refers to comes first (tags, by the
#: ARN of what they are on, last).
KINDS: tuple[ResourceKind, ...] = ("bus", "connection", "api-destination", "rule", "pipe", "tags")


@runtime_checkable
class ResourceStore(Protocol):
    """Documents by (kind, name); a rule's name is ``BUS/RULE``."""

    def save(self, kind: ResourceKind, name: str, document: dict[str, Any]) -> None:
        """Create or replace one document (committed when this returns)."""
        ...

    def delete(self, kind: ResourceKind, name: str) -> None:
        """Forget one document; an unknown one is no error."""
        ...

    def load(self, kind: ResourceKind) -> dict[str, dict[str, Any]]:
        """Every document of ``kind``, by name."""
        ...


class MemoryStore:
    """A ``ResourceStore`` in a dict: gone with the process."""

    durable = False

    def __init__(self) -> None:
        self._documents: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}

    def save(self, kind: ResourceKind, name: str, document: dict[str, Any]) -> None:
        self._documents[kind][name] = copy.deepcopy(document)

    def delete(self, kind: ResourceKind, name: str) -> None:
        self._documents[kind].pop(name, None)

    def load(self, kind: ResourceKind) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self._documents[kind])
