"""examples/orders-api: orders POSTed to the webhook are priced and land in a SQLite table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from tests.conftest import free_port, wait_for_port
from tests.examples.helpers import PATIENCE, eventbus, eventually, example, running

CONFIG = example("orders-api") / "orders.yaml"
TOKEN = "test-token"


def test_its_config_tests_pass(tmp_path: Path) -> None:
    result = eventbus("test", str(CONFIG), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed, 0 failed" in result.stdout


def rows(db: Path, query: str) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as connection:
        try:
            return connection.execute(query).fetchall()
        except sqlite3.OperationalError:  # the table is made with the first batch
            return []


def test_orders_posted_to_the_api_are_priced_into_the_table(tmp_path: Path) -> None:
    port, db = free_port(), tmp_path / "shop.db"
    env = {"ORDERS_API_PORT": str(port), "ORDERS_API_TOKEN": TOKEN, "ORDERS_DB": str(db)}
    url = f"http://127.0.0.1:{port}/orders"
    orders = [
        {
            "id": "o-1",
            "customer": "ada",
            "lines": [{"sku": "tea", "quantity": 2}, {"sku": "mug", "quantity": 1}],
        },
        {"id": "o-2", "customer": "bo", "lines": [{"sku": "biscuits", "quantity": 4}]},
        {"id": "o-3", "customer": "cy", "lines": [{"sku": "cake", "quantity": 1}]},
    ]
    with running("run", str(CONFIG), "--state", str(tmp_path / "state.db"), cwd=tmp_path, env=env) as run:
        wait_for_port(port, timeout=PATIENCE)
        with httpx.Client(timeout=PATIENCE) as client:
            refused = client.post(url, json=orders[0])
            assert refused.status_code == 401, refused.text
            auth = {"Authorization": f"Bearer {TOKEN}"}
            for order in [*orders, orders[0]]:  # o-1 twice: still one row
                answer = client.post(url, json=order, headers=auth)
                assert answer.status_code == 202, answer.text
                assert "messageId" in answer.json()

        placed = "select id, customer, total, json_array_length(lines) from orders order by id"
        eventually(
            lambda: len(rows(db, placed)) == 2 and rows(db, "select id from rejections"),
            f"rows\n{run.stderr}",
        )
        assert run.stop() == 0, run.stderr

    assert rows(db, placed) == [("o-1", "ada", 21.0, 2), ("o-2", "bo", 9.0, 1)]
    assert rows(db, "select id, reason from rejections") == [("o-3", "unknown product 'cake'")]
    (placed_at,) = rows(db, "select placed_at from orders where id = 'o-2'")[0]
    assert isinstance(placed_at, str) and placed_at.endswith("Z")
