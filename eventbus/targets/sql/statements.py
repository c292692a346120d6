"""The SQL text the target runs: quoted names, the insert (or upsert) and the table it may create.

Both dialects take the same statements apart from the placeholder (``?`` for SQLite, ``%s`` for
psycopg) and the column types. Names are always double-quoted, so a column called ``order`` or
``Total Price`` needs nothing special, and a name is never read as SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["COLUMN_TYPES", "ColumnSpec", "ColumnType", "Dialect", "OnConflict", "Statements", "quote_name"]

Dialect = Literal["sqlite", "postgres"]
OnConflict = Literal["error", "ignore", "update"]
ColumnType = Literal["text", "integer", "real", "boolean", "json", "timestamp"]

#: What each portable column type is created as, per dialect.
COLUMN_TYPES: dict[ColumnType, dict[Dialect, str]] = {
    "text": {"sqlite": "TEXT", "postgres": "text"},
    "integer": {"sqlite": "INTEGER", "postgres": "bigint"},
    "real": {"sqlite": "REAL", "postgres": "double precision"},
    "boolean": {"sqlite": "INTEGER", "postgres": "boolean"},
    "json": {"sqlite": "TEXT", "postgres": "jsonb"},
    "timestamp": {"sqlite": "TEXT", "postgres": "timestamptz"},
}

_PLACEHOLDER: dict[Dialect, str] = {"sqlite": "?", "postgres": "%s"}


def quote_name(name: str) -> str:
    """``name`` as a quoted identifier; ``schema.table`` is quoted part by part."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """What the statements need to know of a column: its name, and how to create it."""

    name: str
    type: ColumnType | None = None
    not_null: bool = False


@dataclass(frozen=True, slots=True)
class Statements:
    """The statements of one target: built once, run for every batch."""

    insert: str
    create: str

    @classmethod
    def build(
        cls,
        dialect: Dialect,
        table: str,
        columns: Sequence[ColumnSpec],
        *,
        on_conflict: OnConflict = "error",
        conflict_columns: Sequence[str] = (),
    ) -> Statements:
        names = [quote_name(c.name) for c in columns]
        keys = [quote_name(k) for k in conflict_columns]
        placeholders = ", ".join(_PLACEHOLDER[dialect] for _ in columns)
        insert = f"INSERT INTO {quote_name(table)} ({', '.join(names)}) VALUES ({placeholders})"
        target = f" ({', '.join(keys)})" if keys else ""
        if on_conflict == "ignore":
            insert += f" ON CONFLICT{target} DO NOTHING"
        elif on_conflict == "update":
            updates = [f"{n} = excluded.{n}" for n in names if n not in keys]
            # Every column is part of the key: a clash leaves nothing to change.
            insert += f" ON CONFLICT{target} " + (f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING")
        definitions = [
            f"{quote_name(c.name)} {COLUMN_TYPES[c.type or 'text'][dialect]}" + (" NOT NULL" if c.not_null else "")
            for c in columns
        ]
        if keys:
            definitions.append(f"PRIMARY KEY ({', '.join(keys)})")
        create = f"CREATE TABLE IF NOT EXISTS {quote_name(table)} ({', '.join(definitions)})"
        return cls(insert, create)
