from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- the sql target's databases ------------------------------------------------------------


class SqlDatabase:
    """One database the sql target writes to, and a way for a test to look at it.

    ``options`` are the target options that reach it (``path`` or ``dsn`` + ``password``);
    ``table`` is a name no other test uses; ``query``/``execute`` run plain SQL on a connection
    of their own.
    """

    def __init__(self, dialect: str, options: dict[str, Any], table: str) -> None:
        self.dialect = dialect
        self.options = options
        self.table = table

    def __repr__(self) -> str:
        return f"SqlDatabase({self.dialect})"

    def connect(self) -> Any:
        if self.dialect == "sqlite":
            return sqlite3.connect(self.options["path"], isolation_level=None)
        import psycopg

        return psycopg.connect(self.options["dsn"], password=self.options["password"], autocommit=True)

    def execute(self, sql: str) -> None:
        conn = self.connect()
        try:
            conn.execute(sql)
        finally:
            conn.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            return [tuple(row) for row in conn.execute(sql).fetchall()]
        finally:
            conn.close()

    def rows(self, columns: str, order_by: str = "") -> list[tuple[Any, ...]]:
        order = f" ORDER BY {order_by}" if order_by else ""
        return self.query(f'SELECT {columns} FROM "{self.table}"{order}')

    def column_names(self) -> list[str]:
        if self.dialect == "sqlite":
            return [row[1] for row in self.query(f"PRAGMA table_info(\"{self.table}\")")]
        return [
            row[0]
            for row in self.query(
                "SELECT column_name FROM information_schema.columns "
                f"WHERE table_name = '{self.table}' ORDER BY ordinal_position"
            )
        ]


@pytest.fixture(params=["sqlite", "postgres"])
def sql_db(request: pytest.FixtureRequest, tmp_path: Path) -> SqlDatabase:
    """The same test against a SQLite file and the throwaway PostgreSQL server."""
    table = f"t_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        return SqlDatabase("sqlite", {"path": str(tmp_path / "app.db")}, table)
    server = request.getfixturevalue("postgres_server")
    return SqlDatabase("postgres", {"dsn": server.dsn, "password": server.password}, table)
