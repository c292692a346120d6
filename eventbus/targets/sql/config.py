"""The sql target's config: where the table is, how payloads become rows, what a clash does.

Everything that can be checked without the database is checked here, when the config loads:
each column's JSONPath, the conflict key columns, the types ``create_table`` needs, and the
PostgreSQL connection string (whose text never appears in a message: it may hold a password).
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from eventbus import redact
from eventbus.redact import Secret
from eventbus.targets.base import TargetConfig
from eventbus.targets.sql.rows import check_context_field
from eventbus.targets.sql.statements import ColumnSpec, ColumnType, Dialect, OnConflict
from eventbus.transform.paths import compile_path

if TYPE_CHECKING:
    from eventbus.targets.sql.target import SqlTarget

__all__ = ["SqlColumn", "SqlTargetConfig", "check_dsn"]


class SqlColumn(BaseModel):
    """One column: its value is a JSONPath over the payload (``$`` is the whole payload) or a
    field of the delivery context. A plain string in ``columns`` is a ``path``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    #: ``kind``, ``name``, ``arn``, ``target_id``, ``target_arn``, ``attempt``, ``event_id``,
    #: ``attributes`` (all, as JSON) or ``attributes.NAME`` (a dead letter's ``ERROR_CODE``...).
    context: str | None = None
    #: Used to create the table, and a ``json`` column always receives JSON text.
    type: ColumnType | None = None
    #: Created ``NOT NULL`` (with ``create_table``).
    not_null: bool = False

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # Config files may write a column as its JSONPath alone; editors should accept that too.
        return {"anyOf": [{"type": "string", "description": "a JSONPath"}, handler(core_schema)]}

    @field_validator("path")
    @classmethod
    def _path_is_a_jsonpath(cls, value: str | None) -> str | None:
        if value is not None:
            compile_path(value)  # its ValueError says which path and why
        return value

    @field_validator("context")
    @classmethod
    def _context_is_known(cls, value: str | None) -> str | None:
        return check_context_field(value) if value is not None else None

    @model_validator(mode="after")
    def _one_source(self) -> SqlColumn:
        if (self.path is None) == (self.context is None):
            raise ValueError("a column takes its value from a path or from the context: give exactly one")
        return self


def _path_alone(value: Any) -> Any:
    """A column written as its JSONPath alone; checked here so a problem names that column."""
    if isinstance(value, str):
        compile_path(value)
        return {"path": value}
    return value


#: A column: a JSONPath string, or a mapping (``SqlColumn``).
Column = Annotated[SqlColumn, BeforeValidator(_path_alone)]


class SqlTargetConfig(TargetConfig):
    """Insert (or upsert) each payload as a row of ``table``: SQLite at ``path`` or PostgreSQL at
    ``dsn``; one transaction a batch."""

    kind: ClassVar[str] = "sql"
    # A rejected dsn must not be echoed in pydantic's own error text either.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    #: SQLite: the database file (created with its folders).
    path: str | None = Field(default=None, min_length=1)
    #: PostgreSQL: a libpq connection string (``host=... dbname=...``) or ``postgresql://`` URL.
    dsn: Secret | None = None
    #: PostgreSQL: the password, when it is kept out of ``dsn``.
    password: Secret | None = None
    #: ``name`` or ``schema.name``, used exactly as written (quoted).
    table: str = Field(min_length=1)
    columns: dict[str, Column] = Field(min_length=1)
    #: What a row whose key is already in the table does: fail (``error``), stay out (``ignore``)
    #: or replace the other columns of the row there (``update``).
    on_conflict: OnConflict = "error"
    #: The key columns whose clash is a conflict; ``update`` needs them. They are the primary key
    #: of a table ``create_table`` makes.
    conflict_columns: list[str] = Field(default_factory=list)
    #: Create the table when it does not exist (every column then needs a ``type``). An existing
    #: table is never altered.
    create_table: bool = False
    #: Payloads written in one transaction at most.
    max_batch_size: int = Field(default=100, ge=1, le=10_000)
    #: Seconds: SQLite waits this long for a lock; PostgreSQL for a connection and a statement.
    timeout: float = Field(default=10.0, gt=0)

    @field_validator("columns")
    @classmethod
    def _column_names(cls, value: dict[str, SqlColumn]) -> dict[str, SqlColumn]:
        for name in value:
            if not name or "\x00" in name:
                raise ValueError("a column name must be non-empty text")
        return value

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str) -> str:
        if "\x00" in value or any(not part for part in value.split(".")) or value.count(".") > 1:
            raise ValueError(f"{value!r} is not a table name: write NAME or SCHEMA.NAME")
        return value

    @field_validator("dsn")
    @classmethod
    def _dsn_parses(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            password = check_dsn(value.get_secret_value())
            if password:
                # Masked everywhere by value, not only in this target's own messages.
                redact.register(password, value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SqlTargetConfig:
        if (self.path is None) == (self.dsn is None):
            raise ValueError("give either path (a SQLite file) or dsn (a PostgreSQL server), not both or neither")
        if self.password is not None and self.dsn is None:
            raise ValueError("password is for PostgreSQL: it needs a dsn")
        unknown = [key for key in self.conflict_columns if key not in self.columns]
        if unknown:
            raise ValueError(
                f"conflict_columns {_names(unknown)} {'is' if len(unknown) == 1 else 'are'} not among the "
                f"columns ({', '.join(self.columns)}){_did_you_mean(unknown[0], list(self.columns))}"
            )
        if len(set(self.conflict_columns)) != len(self.conflict_columns):
            raise ValueError("conflict_columns names a column twice")
        if self.on_conflict == "update" and not self.conflict_columns:
            raise ValueError(
                "on_conflict: update needs conflict_columns, the key columns whose clash means the row is "
                "already there"
            )
        if self.create_table:
            untyped = [name for name, column in self.columns.items() if column.type is None]
            if untyped:
                raise ValueError(
                    f"create_table needs a type for every column; {_names(untyped)} "
                    f"{'has' if len(untyped) == 1 else 'have'} none (text, integer, real, boolean, json, timestamp)"
                )
        return self

    @property
    def dialect(self) -> Dialect:
        return "sqlite" if self.path is not None else "postgres"

    def column_specs(self) -> list[ColumnSpec]:
        return [ColumnSpec(name, column.type, column.not_null) for name, column in self.columns.items()]

    def build(self) -> SqlTarget:
        from eventbus.targets.sql.target import SqlTarget

        return SqlTarget(self)


def check_dsn(dsn: str) -> str | None:
    """The password written in ``dsn``, if any; ``ValueError`` unless psycopg is installed and
    ``dsn`` parses (never quoting ``dsn``)."""
    try:
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise ValueError("PostgreSQL needs psycopg 3: pip install 'eventbus[postgres]'") from None
    try:
        password = conninfo_to_dict(dsn).get("password")
    except ProgrammingError as exc:
        raise ValueError(f"dsn is not a valid PostgreSQL connection string: {mask_quoted(str(exc))}") from None
    return password if isinstance(password, str) else None


def mask_quoted(message: str) -> str:
    """libpq quotes the part of a connection string it could not read, which may be a password."""
    return re.sub(r'"[^"]*"', '"…"', message.strip().splitlines()[0] if message.strip() else message)


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
