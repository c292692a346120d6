"""The ``sql`` target: payloads become rows of a table, in SQLite (the standard library) or
PostgreSQL (psycopg 3, the ``eventbus[postgres]`` extra).

- ``config``: ``SqlTargetConfig`` and ``SqlColumn``, checked when a config loads;
- ``rows``: payloads to column values (JSONPaths, context fields);
- ``statements``: the INSERT / upsert and CREATE TABLE text;
- ``sqlite``, ``postgres``: one module a dialect, each classifying its own errors;
- ``target``: ``SqlTarget``, which runs them off the event loop.

psycopg is imported only when a PostgreSQL target is built or its ``dsn`` checked.
"""

from __future__ import annotations

from eventbus.targets.sql.config import SqlColumn, SqlTargetConfig
from eventbus.targets.sql.target import SqlTarget

__all__ = ["SqlColumn", "SqlTarget", "SqlTargetConfig"]
