"""``Writes``: the rows the hot path changes, merged across callers into a few statements.

Appends, fan-outs, leases, acknowledgements and releases are not functions of the connection but
rows to insert, update or delete. The writer thread merges every ``Writes`` of a transaction and
applies each kind with a handful of multi-row statements, in an order that respects cause and
effect (a row is inserted before it is updated, updated before it is deleted). That matters
beyond SQLite's own cost: Python's sqlite3 lets go of the GIL around every statement step, so a
statement per row would hand the GIL back and forth with the event loop once per row.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Writes"]

_EVENT_COLUMNS = "seq, event, ingestion_time, chain, target_rule, target_id, only_rules"
_DELIVERY_COLUMNS = "id, route, event_seq, event, payload, ingestion_time, chain, attempts, due"
_FIRED = (
    "INSERT INTO schedules (bus, rule, fired) VALUES (?, ?, ?) "
    "ON CONFLICT (bus, rule) DO UPDATE SET fired = excluded.fired"
)

#: SQLite's limit on a statement's parameters (999 before 3.32).
_VARIABLES = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999
#: ``UPDATE ... FROM`` came with 3.33.
_UPDATE_FROM = sqlite3.sqlite_version_info >= (3, 33)


@dataclass(slots=True)
class Writes:
    """Rows to write in one transaction (each list in the order it was handed over)."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    fires: list[tuple[str, str, int]] = field(default_factory=list)
    #: ``(bus, last inbox id)``: inbox rows moved into the log.
    inbox: list[tuple[str, int]] = field(default_factory=list)
    deliveries: list[tuple[Any, ...]] = field(default_factory=list)
    #: ``(first, last)`` event keys routed or acknowledged.
    gone: list[tuple[int, int]] = field(default_factory=list)
    #: ``(attempts, id)`` of leased deliveries.
    attempts: list[tuple[int, int]] = field(default_factory=list)
    #: ``(attempts, due, id)`` of released deliveries.
    releases: list[tuple[int, int, int]] = field(default_factory=list)
    #: Ids of deliveries that ended.
    acks: list[int] = field(default_factory=list)

    def merge(self, other: Writes) -> None:
        self.events += other.events
        self.fires += other.fires
        self.inbox += other.inbox
        self.deliveries += other.deliveries
        self.gone += other.gone
        self.attempts += other.attempts
        self.releases += other.releases
        self.acks += other.acks

    def apply(self, conn: sqlite3.Connection) -> None:
        if self.events:
            _insert(conn, "events", _EVENT_COLUMNS, 7, self.events)
        if self.fires:
            conn.executemany(_FIRED, self.fires)
        for bus, upto in self.inbox:
            conn.execute("DELETE FROM inbox WHERE bus = ? AND id <= ?", (bus, upto))
        if self.deliveries:
            _insert(conn, "deliveries", _DELIVERY_COLUMNS, 9, self.deliveries)
        for first, last in _merged(self.gone):
            conn.execute("DELETE FROM events WHERE seq BETWEEN ? AND ?", (first, last))
        # Attempt counts only grow: MAX makes a lease and a release of one delivery in one
        # transaction agree whatever their order.
        if self.attempts:
            _update(conn, "attempts = MAX(attempts, v.column1)", 2, self.attempts)
        if self.releases:
            _update(conn, "attempts = MAX(attempts, v.column1), due = v.column2", 3, self.releases)
        if self.acks:
            for chunk in _chunks(self.acks, 1):
                conn.execute(f"DELETE FROM deliveries WHERE id IN ({_marks(len(chunk))})", chunk)


def ranges(keys: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted ``keys`` as runs of consecutive numbers, ``(first, last)`` each."""
    out: list[tuple[int, int]] = []
    for key in sorted(keys):
        if out and key == out[-1][1] + 1:
            out[-1] = (out[-1][0], key)
        else:
            out.append((key, key))
    return out


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for first, last in sorted(spans):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(last, out[-1][1]))
        else:
            out.append((first, last))
    return out


def _chunks(rows: list[Any], width: int) -> Iterator[list[Any]]:
    """``rows`` in chunks whose sizes are powers of two (a few statement texts, each prepared
    once and cached), none with more parameters than SQLite takes."""
    largest = 1
    while largest * 2 * width <= _VARIABLES and largest < 512:
        largest *= 2
    start = 0
    size = largest
    while start < len(rows):
        while size > len(rows) - start:
            size //= 2
        yield rows[start : start + size]
        start += size


@functools.cache
def _marks(n: int, width: int = 1) -> str:
    one = "(" + ", ".join("?" * width) + ")" if width > 1 else "?"
    return ", ".join([one] * n)


def _insert(conn: sqlite3.Connection, table: str, columns: str, width: int, rows: list[tuple[Any, ...]]) -> None:
    for chunk in _chunks(rows, width):
        values = [value for row in chunk for value in row]
        conn.execute(f"INSERT INTO {table} ({columns}) VALUES {_marks(len(chunk), width)}", values)


def _update(conn: sqlite3.Connection, assignments: str, width: int, rows: list[tuple[Any, ...]]) -> None:
    key = f"v.column{width}"
    if not _UPDATE_FROM:  # pragma: no cover - SQLite before 3.33
        sets = assignments.replace("v.column1", "?").replace("v.column2", "?")
        conn.executemany(f"UPDATE deliveries SET {sets} WHERE id = ?", rows)
        return
    for chunk in _chunks(rows, width):
        values = [value for row in chunk for value in row]
        conn.execute(
            f"UPDATE deliveries SET {assignments} FROM (VALUES {_marks(len(chunk), width)}) AS v "
            f"WHERE deliveries.id = {key}",
            values,
        )
