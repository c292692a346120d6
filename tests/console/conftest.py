"""A live server with the console, a boto3 client for it, and a headless Chromium.

The server runs ``CONFIG`` (a bus with rules whose targets record, fail and dead-letter) through
``running_server``; the browser is Debian's Chromium driven by Selenium. Both are shared by a
module's tests: starting them is the slow part.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventbus.testing import running_server

from .browser import Unavailable, browser

CONFIG = """
buses:
  orders:
    rules:
      placed:
        description: Every order the shop places
        pattern: {source: [shop], detail-type: [OrderPlaced]}
        targets:
          - id: audit
            recording: {name: console-audit}
          - id: summary
            recording: {name: console-summary}
            input_transformer:
              input_paths_map: {order: $.detail.order, total: $.detail.total}
              input_template: '{"order": <order>, "total": <total>}'
      big:
        pattern: {source: [shop], detail: {total: [{numeric: [">", 100]}]}}
        targets:
          - id: notify
            recording: {name: console-notify}
      refunds:
        pattern: {source: [shop], detail-type: [RefundIssued]}
        targets:
          - id: ledger
            function: {function: "console_functions:ledger"}
            retry_policy: {MaximumRetryAttempts: 0}
            dead_letter:
              recording: {name: console-dead-letters}
"""

FUNCTIONS = '''
"""Functions the console tests' config names."""

#: While true, the ledger refuses every refund (they are dead-lettered).
CLOSED = [False]
ENTRIES = []


def ledger(event):
    if CLOSED[0]:
        raise RuntimeError("the ledger is closed for the night")
    ENTRIES.append(event)
'''


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: pytest.MonkeyPatch) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("console")
    (folder / "console_functions.py").write_text(FUNCTIONS, encoding="utf-8")
    monkeypatch_module.syspath_prepend(str(folder))
    config = folder / "orders.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    with running_server(config) as server:
        yield server


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    try:
        with browser() as driver:
            yield driver
    except Unavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (CI installs chromium and chromium-driver: see .ci/run)")
        pytest.skip(str(exc))


def shots_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``EVENTBUS_CONSOLE_SHOTS`` (docs/console/ to refresh the docs' own),
    else a temporary folder."""
    chosen = os.environ.get("EVENTBUS_CONSOLE_SHOTS")
    if chosen:
        path = Path(chosen)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("shots")
