"""``validate``, ``put`` and ``run`` on broken function modules, deep JSON and failed deliveries:
one clear line and the right exit status, never a traceback or a false success."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.cli.helpers import eventbus
from tests.conftest import free_port

MODULES = {
    "raises.py": "raise RuntimeError('boom at import')\n",
    "syntax.py": "def broken(:\n",
    "holder.py": "X = 42\n\ndef ok(event):\n    return None\n",
}

FUNCTIONS = """\
runtime: {python_path: ['.']}
buses:
  orders:
    rules:
      all:
        pattern: {source: [shop]}
        targets:
          - id: a
            function: {function: 'os:nosuchfn'}
          - id: b
            function: {function: 'holder:X'}
          - id: c
            function: {function: 'raises:f'}
          - id: d
            function: {function: 'syntax:f'}
          - id: e
            function: {function: 'missing_module:f'}
"""


@pytest.fixture
def functions(tmp_path: Path) -> Path:
    for name, text in MODULES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    config = tmp_path / "functions.yaml"
    config.write_text(FUNCTIONS, encoding="utf-8")
    return config


def test_validate_imports_and_checks_every_function_reference(functions: Path) -> None:
    result = eventbus("validate", str(functions))
    assert result.returncode == 1 and result.stdout == ""
    where = f"{functions}:%d buses.orders.rules.all.targets[%d].function.function: "
    assert result.stderr.splitlines() == [
        where % (9, 0) + "module 'os' has no attribute 'nosuchfn'",
        where % (11, 1) + "'X' in module 'holder' is not callable (it is a int)",
        where % (13, 2) + "cannot import module 'raises': RuntimeError: boom at import",
        where % (15, 3) + "cannot import module 'syntax': SyntaxError: invalid syntax (syntax.py, line 1)",
        where % (17, 4) + "cannot find module 'missing_module' (is its folder in runtime.python_path?)",
    ]
    # Without imports only what can be told without running a module is checked.
    quick = eventbus("validate", "--no-import", str(functions))
    assert quick.returncode == 1
    assert quick.stderr.splitlines() == [
        where % (17, 4) + "cannot find module 'missing_module' (is its folder in runtime.python_path?)"
    ]


@pytest.mark.parametrize("command", ["put", "run"])
def test_put_and_run_report_a_broken_function_module_as_validate_does(tmp_path: Path, command: str) -> None:
    (tmp_path / "raises.py").write_text(MODULES["raises.py"], encoding="utf-8")
    config = tmp_path / "c.yaml"
    config.write_text(
        "runtime: {python_path: ['.']}\nbuses:\n  orders:\n    rules:\n      all:\n        pattern: {source: [shop]}\n"
        "        targets:\n          - function: {function: 'raises:f'}\n",
        encoding="utf-8",
    )
    validate = eventbus("validate", str(config))
    args = ["run", str(config)] if command == "run" else ["put", "-c", str(config), '{"source": "shop", "detail-type": "d", "detail": {}}']
    result = eventbus(*args)
    assert result.returncode == 1
    assert result.stderr.splitlines() == validate.stderr.splitlines() == [
        f"{config}:8 buses.orders.rules.all.targets[0].function.function: "
        "cannot import module 'raises': RuntimeError: boom at import"
    ]


LOG_CONFIG = """\
buses:
  orders:
    rules:
      all:
        pattern: {source: [shop]}
        targets:
          - log: {level: debug}
"""


@pytest.mark.parametrize("depth", [990, 10_000])
def test_put_answers_json_nested_too_deeply_in_one_line(tmp_path: Path, depth: int) -> None:
    config = tmp_path / "log.yaml"
    config.write_text(LOG_CONFIG, encoding="utf-8")
    deep = tmp_path / "deep.json"
    deep.write_text(
        '{"source": "shop", "detail-type": "d", "detail": ' + '{"a": ' * depth + "1" + "}" * depth + "}",
        encoding="utf-8",
    )
    result = eventbus("put", "-c", str(config), f"@{deep}")
    assert result.returncode == 2
    assert result.stderr.strip() == "events: the JSON is nested too deeply"


def test_put_reports_a_failed_delivery_and_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "refused.yaml"
    # Nothing listens on the port: every connection is refused.
    config.write_text(
        "buses:\n  orders:\n    rules:\n      all:\n        pattern: {source: [shop]}\n        targets:\n"
        f"          - http: {{endpoint: 'http://127.0.0.1:{free_port()}/hook'}}\n"
        "            retry_policy: {MaximumRetryAttempts: 0}\n",
        encoding="utf-8",
    )
    result = eventbus("put", "-c", str(config), '{"source": "shop", "detail-type": "d", "detail": {}}')
    assert result.returncode == 1
    response = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    assert response["FailedEntryCount"] == 0
    [event_id] = [e["EventId"] for e in response["Entries"]]
    [row] = [line.split("\t") for line in result.stdout.splitlines() if line.startswith(event_id)]
    assert row[1].startswith("orders/all/http: failed: ")
    assert "(no target)" not in result.stdout
    assert "1 delivery(ies) failed" in result.stderr


def test_put_timeout_bounds_the_whole_command(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text("import time\n\ndef wait(event):\n    time.sleep(120)\n", encoding="utf-8")
    config = tmp_path / "slow.yaml"
    config.write_text(
        "runtime: {python_path: ['.']}\ndefaults: {bus: {drain_timeout: 60}}\n"
        "buses:\n  orders:\n    rules:\n      all:\n        pattern: {source: [shop]}\n        targets:\n"
        "          - function: {function: 'slow:wait'}\n",
        encoding="utf-8",
    )
    started = time.monotonic()
    result = eventbus(
        "put", "-c", str(config), "--timeout", "3", '{"source": "shop", "detail-type": "d", "detail": {}}', timeout=100
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "not every event was delivered within 3 s" in result.stderr
    # Before, the drain's 60 s came after the 3 s; the call itself would have taken 120 s more.
    assert elapsed < 45, elapsed
