"""The sql target in config files (a rule's target, its dead letter, a pipe's target), the
checks made when a config loads, and secrets kept out of what a user reads."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import ValidationError

from eventbus.config import ConfigErrors, Runtime, load_config
from eventbus.errors import ConfigError
from eventbus.targets.registry import build_target
from eventbus.targets.sql import SqlTarget, SqlTargetConfig
from tests.conftest import PostgresServer

SHOP = """\
targets:
  orders-table:
    sql:
      path: "{db}"
      table: orders
      create_table: true
      on_conflict: update
      conflict_columns: [id]
      columns:
        id: {{path: $.detail.id, type: integer}}
        customer: {{path: $.detail.customer, type: text}}
        event: {{path: $, type: json}}
buses:
  shop:
    settings: {{backoff: {{base: 0.01, cap: 0.02}}}}
    rules:
      orders:
        pattern: {{detail-type: [Order Placed]}}
        targets:
          - ref: orders-table
      refunds:
        pattern: {{detail-type: [Refund]}}
        targets:
          - id: refunds
            sql:
              path: "{db}"
              table: refunds
              create_table: true
              conflict_columns: [order_id]
              columns:
                order_id: {{path: $.detail.id, type: integer}}
            dead_letter:
              sql:
                path: "{db}"
                table: failures
                create_table: true
                columns:
                  event_id: {{context: event_id, type: text}}
                  error: {{context: attributes.ERROR_CODE, type: text}}
                  message: {{context: attributes.ERROR_MESSAGE, type: text}}
                  body: {{path: $.detail, type: json}}
pipes:
  import:
    source: {{file: {{path: "{csv}"}}}}
    batch_size: 50
    # A record's data is JSON text: the template makes it the payload's fields.
    target_input_template: '{{"id": <$.data.id>, "name": <$.data.name>, "line": <$.lineNumber>}}'
    target:
      sql:
        path: "{db}"
        table: imported
        create_table: true
        max_batch_size: 20
        columns:
          id: {{path: $.id, type: integer}}
          name: {{path: $.name, type: text}}
          line: {{path: $.line, type: integer}}
"""


def entry(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"Source": "shop", "DetailType": detail_type, "Detail": json.dumps(detail)}


def test_rule_target_dead_letter_and_pipe_target_from_a_config_file(tmp_path: Path) -> None:
    db, csv = tmp_path / "shop.db", tmp_path / "customers.csv"
    csv.write_text("id,name\n" + "".join(f"{n},name {n}\n" for n in range(1, 121)), encoding="utf-8")
    path = tmp_path / "shop.yaml"
    path.write_text(SHOP.format(db=db, csv=csv), encoding="utf-8")
    config = load_config(path)

    async def scenario() -> None:
        async with Runtime([config]) as runtime:
            bus = runtime.bus("shop")
            answer = await bus.put_events(
                [
                    entry("Order Placed", {"id": 1, "customer": "Ada"}),
                    entry("Order Placed", {"id": 1, "customer": "Ada L."}),
                    entry("Refund", {"id": 1}),
                ]
            )
            assert answer["FailedEntryCount"] == 0
            assert await runtime.wait_idle(timeout=15)
            assert (await bus.put_events([entry("Refund", {"id": 1})]))["FailedEntryCount"] == 0
            assert await runtime.wait_idle(timeout=15)
            await runtime.pipes["import"].wait_finished(timeout=30)

    anyio.run(scenario)
    with sqlite3.connect(db) as conn:
        [(order_id, customer, event)] = conn.execute("SELECT id, customer, event FROM orders").fetchall()
        refunds = conn.execute("SELECT order_id FROM refunds").fetchall()
        failures = conn.execute("SELECT event_id, error, message, body FROM failures").fetchall()
        imported = conn.execute("SELECT id, name, line FROM imported ORDER BY id").fetchall()
    assert (order_id, customer) == (1, "Ada L.")  # upserted by the second event
    assert json.loads(event)["detail"] == {"id": 1, "customer": "Ada L."}
    assert refunds == [(1,)]
    # The second refund broke the key: dead-lettered at once into the failures table.
    [(event_id, error, message, body)] = failures
    assert event_id and error == "SDK_CLIENT_ERROR" and "UNIQUE constraint failed: refunds.order_id" in message
    assert json.loads(body) == {"id": 1}
    assert imported[:2] == [(1, "name 1", 2), (2, "name 2", 3)] and len(imported) == 120


def test_postgres_from_a_config_file_with_the_password_from_the_environment(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    server = postgres_server
    path = tmp_path / "pg.yaml"
    path.write_text(
        f"""\
buses:
  shop:
    rules:
      orders:
        pattern: {{source: [shop]}}
        targets:
          - sql:
              dsn: "{server.dsn}"
              password: "${{PG_PASSWORD}}"
              table: config_orders
              create_table: true
              on_conflict: ignore
              conflict_columns: [id]
              columns:
                id: {{path: $.detail.id, type: integer}}
                detail: {{path: $.detail, type: json}}
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigErrors) as caught:
        load_config(path, environ={})
    assert "environment variable PG_PASSWORD is not set" in str(caught.value)
    config = load_config(path, environ={"PG_PASSWORD": server.password})
    assert server.password not in repr(config.model)

    async def scenario() -> None:
        async with Runtime([config]) as runtime:
            entries = [entry("Order Placed", {"id": n}) for n in (1, 2, 1)]
            assert (await runtime.bus().put_events(entries))["FailedEntryCount"] == 0
            assert await runtime.wait_idle(timeout=15)

    anyio.run(scenario)
    import psycopg

    with psycopg.connect(server.dsn, password=server.password) as conn:
        rows = conn.execute("SELECT id, detail FROM config_orders ORDER BY id").fetchall()
    assert rows == [(1, {"id": 1}), (2, {"id": 2})]


# -- checked at load -------------------------------------------------------------------------


def problems(tmp_path: Path, target: str) -> list[str]:
    """The problems a config whose one rule target is ``target`` (YAML, indented) has."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        "buses:\n  shop:\n    rules:\n      r:\n        pattern: {source: [shop]}\n        targets:\n"
        + target,
        encoding="utf-8",
    )
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    return [str(p) for p in caught.value.problems]


def test_a_bad_jsonpath_is_reported_with_its_column_and_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "          - sql:\n"
        "              path: a.db\n"
        "              table: t\n"
        "              columns:\n"
        "                id: $.detail[\n"
        "                total: {path: '$.detail..[', type: real}\n",
    )
    assert any(
        p.endswith("bad.yaml:11 buses.shop.rules.r.targets[0].sql.columns.id: '$.detail[' is not a valid JSONPath")
        for p in found
    ), found
    found = problems(
        tmp_path,
        "          - sql:\n"
        "              path: a.db\n"
        "              table: t\n"
        "              columns:\n"
        "                total: {path: '$.detail..[', type: real}\n",
    )
    assert found == [
        f"{tmp_path / 'bad.yaml'}:11 buses.shop.rules.r.targets[0].sql.columns.total.path: "
        "'$.detail..[' is not a valid JSONPath"
    ]


def test_conflict_columns_must_be_columns(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "          - sql:\n"
        "              path: a.db\n"
        "              table: t\n"
        "              on_conflict: update\n"
        "              conflict_columns: [order_idd]\n"
        "              columns: {order_id: $.detail.id, total: $.detail.total}\n",
    )
    assert len(found) == 1 and found[0].endswith(
        "buses.shop.rules.r.targets[0].sql: conflict_columns 'order_idd' is not among the columns "
        "(order_id, total); did you mean 'order_id'?"
    ), found


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"on_conflict": "update"},
            "on_conflict: update needs conflict_columns, the key columns whose clash means the row is already there",
        ),
        (
            {"create_table": True, "columns": {"id": {"path": "$.id", "type": "integer"}, "note": "$.note"}},
            "create_table needs a type for every column; 'note' has none (text, integer, real, boolean, json, timestamp)",
        ),
        ({"dsn": "host=db"}, "give either path (a SQLite file) or dsn (a PostgreSQL server), not both or neither"),
        ({"path": None}, "give either path (a SQLite file) or dsn (a PostgreSQL server), not both or neither"),
        ({"password": "x"}, "password is for PostgreSQL: it needs a dsn"),
        ({"columns": {}}, "columns"),
        ({"columns": {"id": {"path": "$.id", "context": "event_id"}}}, "give exactly one"),
        ({"columns": {"id": {"context": "event"}}}, "'event' is not a context field: use one of kind, name"),
        ({"columns": {"id": "detail.id"}}, "'detail.id' does not start with $"),
        ({"table": "a.b.c"}, "'a.b.c' is not a table name: write NAME or SCHEMA.NAME"),
        ({"conflict_columns": ["id", "id"]}, "conflict_columns names a column twice"),
        ({"on_conflict": "replace"}, "on_conflict"),
        ({"max_batch_size": 0}, "max_batch_size"),
    ],
)
def test_options_checked_when_built(options: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"path": "a.db", "table": "t", "columns": {"id": "$.detail.id"}}
    with pytest.raises(ConfigError) as caught:
        build_target("sql", {**base, **options})
    assert message in str(caught.value)


def test_a_bad_dsn_is_reported_without_its_text(tmp_path: Path) -> None:
    secret = "s3%ZZcret"
    dsn = f"postgresql://app:{secret}@127.0.0.1/app"
    with pytest.raises(ValidationError) as caught:
        SqlTargetConfig(dsn=dsn, table="t", columns={"id": "$.id"})
    assert "dsn is not a valid PostgreSQL connection string: invalid percent-encoded token" in str(caught.value)
    assert secret not in str(caught.value) and "ZZ" not in str(caught.value)
    found = problems(tmp_path, f'          - sql: {{dsn: "{dsn}", table: t, columns: {{id: $.id}}}}\n')
    assert len(found) == 1 and "invalid percent-encoded token" in found[0] and secret not in found[0]


def test_python_constructors_and_reprs(tmp_path: Path) -> None:
    target = SqlTarget.sqlite(str(tmp_path / "a.db"), "orders", {"id": "$.detail.id"}, on_conflict="ignore")
    assert repr(target) == f"SqlTarget(SQLite {tmp_path / 'a.db'} table orders)"
    assert target.max_batch_size == 100
    assert target.statements.insert == 'INSERT INTO "orders" ("id") VALUES (?) ON CONFLICT DO NOTHING'
    pg = SqlTarget.postgres(
        "host=db.internal port=6543 dbname=shop user=app password=hunter2",
        "sales.orders",
        {"id": "$.id", "total": "$.total"},
        on_conflict="update",
        conflict_columns=["id"],
    )
    assert repr(pg) == "SqlTarget(PostgreSQL db.internal:6543/shop table sales.orders)"
    assert "hunter2" not in repr(pg.config) and "hunter2" not in pg.config.model_dump_json()
    assert pg.statements.insert == (
        'INSERT INTO "sales"."orders" ("id", "total") VALUES (%s, %s) '
        'ON CONFLICT ("id") DO UPDATE SET "total" = excluded."total"'
    )


# -- docs/targets.md -------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "targets.md"


def sql_section_blocks(language: str) -> list[str]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("\n## sql\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def test_the_docs_yaml_blocks_load(tmp_path: Path) -> None:
    blocks = sql_section_blocks("yaml")
    assert len(blocks) == 2
    for index, block in enumerate(blocks):
        path = tmp_path / f"block{index}.yaml"
        path.write_text(block, encoding="utf-8")
        loaded = load_config(path)
        assert "sql" in path.read_text() and (loaded.model.buses or loaded.model.pipes)


def test_the_docs_python_block_runs(tmp_path: Path) -> None:
    [block] = sql_section_blocks("python")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [sys.executable, "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with sqlite3.connect(tmp_path / "var" / "shop.db") as conn:
        assert conn.execute("SELECT id, customer FROM orders").fetchall() == [(7, "Ada")]


def test_passwords_of_a_postgres_target_are_masked_everywhere_by_value() -> None:
    from eventbus import redact

    in_dsn, kept_apart = "dsn-" + uuid.uuid4().hex, "pw-" + uuid.uuid4().hex
    config = SqlTargetConfig.model_validate(
        {"dsn": f"host=127.0.0.1 user=app password={in_dsn}", "password": kept_apart, "table": "t", "columns": {"id": "$.id"}}
    )
    text = f"a library's own message quoting {in_dsn} and {kept_apart}"
    assert in_dsn not in redact.mask(text) and kept_apart not in redact.mask(text)
    assert config.dsn is not None
