"""examples/pipes-not-glue: the pipe and the hand-written consumer it replaces, on the same
payments, against the same (real, loopback) services, end with the same ledger and reviews."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

from eventbus import SqliteQueue
from tests.examples.helpers import ROOT, Running, environment, eventbus, eventually, example, running

FOLDER = example("pipes-not-glue")
CONFIG = FOLDER / "payments.yaml"

PAYMENTS = [
    {"type": "payment.succeeded", "id": "p-1", "customer": "c-1", "amount": 1200, "currency": "EUR"},
    {"type": "payment.succeeded", "id": "p-2", "customer": "c-2", "amount": 30, "currency": "EUR"},
    {"type": "payment.refunded", "id": "p-3", "customer": "c-1", "amount": 30, "currency": "EUR"},
    {"type": "payment.succeeded", "id": "p-4", "customer": "c-9", "amount": 5000, "currency": "EUR"},
]
LEDGER = [
    {"payment": "p-1", "amount": 1200, "customer": "Ada Lovelace"},
    {"payment": "p-2", "amount": 30, "customer": "Grace Hopper"},
    {"payment": "p-4", "amount": 5000, "customer": None},
]
REVIEWS = [
    {"payment": "p-1", "amount": 1200, "tier": "gold"},
    {"payment": "p-4", "amount": 5000, "tier": "unknown"},
]


def services() -> ModuleType:
    """A fresh copy of the example's services module (its review inbox starts empty)."""
    spec = importlib.util.spec_from_file_location("pipes_not_glue_services", FOLDER / "services.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_its_config_tests_pass(tmp_path: Path) -> None:
    result = eventbus("test", str(CONFIG), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed, 0 failed" in result.stdout


def by_payment(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: str(item["payment"]))


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def glue(tmp_path: Path, env: dict[str, str]) -> Running:
    process = subprocess.Popen(
        [sys.executable, str(FOLDER / "glue_consumer.py")],
        cwd=tmp_path,
        env=environment(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Running(process)


@pytest.mark.parametrize("version", ["pipe", "glue"])
def test_both_versions_route_the_same_payments_the_same_way(
    version: str, tmp_path: Path, asgi_server: Any
) -> None:
    inbox = services()
    url = asgi_server(inbox.app)
    queue_path, out = tmp_path / "payments.db", tmp_path / "out"
    env = {"PAYMENTS_QUEUE": str(queue_path), "SERVICES_URL": url, "PAYMENTS_OUT": str(out)}

    async def send() -> None:
        queue = SqliteQueue(queue_path)
        for payment in PAYMENTS:
            await queue.send(json.dumps(payment))
        await queue.send("not JSON")
        await queue.aclose()

    anyio.run(send)

    def done() -> bool:
        return len(lines(out / "ledger.jsonl")) == 3 and len(inbox.REVIEWS) == 2

    if version == "pipe":
        with running("run", str(CONFIG), "--state", str(tmp_path / "state.db"), cwd=tmp_path, env=env) as run:
            eventually(done, f"the ledger and the reviews\n{run.stderr}")
            assert run.stop() == 0, run.stderr
    else:
        run = glue(tmp_path, env)
        try:
            eventually(done, f"the ledger and the reviews\n{run.stderr}")
        finally:
            assert run.stop() == 0, run.stderr

    assert by_payment(lines(out / "ledger.jsonl")) == LEDGER
    assert by_payment(inbox.REVIEWS) == REVIEWS
    assert not (out / "failed.jsonl").exists()

    async def left() -> int:
        queue = SqliteQueue(queue_path)
        try:
            return await queue.count()
        finally:
            await queue.aclose()

    assert anyio.run(left) == 0  # every message acknowledged, the filtered ones included


def code_lines(path: Path) -> int:
    """What ``grep -cvE '^\\s*(#|$)' FILE`` counts: lines neither blank nor comments."""
    return sum(
        1 for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")
    )


def test_the_readme_counts_the_lines_as_they_are() -> None:
    readme = (FOLDER / "README.md").read_text()
    for version, name in (("before", "glue_consumer.py"), ("after", "payments.yaml")):
        row = f"| {version} | `{name}` | {code_lines(FOLDER / name)} |"
        assert row in readme, f"README.md should show {row}"
    counted = subprocess.run(
        ["grep", "-cvE", r"^\s*(#|$)", "glue_consumer.py", "payments.yaml"],
        cwd=FOLDER,
        capture_output=True,
        text=True,
    )
    shown = (ROOT / "docs" / "tutorials" / "pipes-not-glue.md").read_text()
    assert counted.stdout in shown, "the tutorial should show what the count prints"
    assert counted.stdout.split() == [
        f"glue_consumer.py:{code_lines(FOLDER / 'glue_consumer.py')}",
        f"payments.yaml:{code_lines(FOLDER / 'payments.yaml')}",
    ]
