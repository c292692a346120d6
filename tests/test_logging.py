"""Logs go through ``logging``, never stdout; every recipe of docs/logging.md does what it says.

Each program runs in a subprocess of its own (logging configuration is process-wide): the recipe
from the docs, then a bus whose target fails, retries once and dead-letters the event, with
``trace_events`` on so INFO records are logged too.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from eventbus._logger import LogEvent

DOC = Path(__file__).resolve().parents[1] / "docs" / "logging.md"

WORKLOAD = """
import anyio
from eventbus import EventBus, RecordingTarget, RetryPolicy, RuleTarget

def charge(event):
    raise ValueError("card declined")

async def main():
    bus = EventBus("orders", trace_events=True, backoff={"base": 0.001, "cap": 0.001})
    bus.put_rule("placed", {"source": ["shop"]})
    bus.put_targets("placed", [RuleTarget(id="charge", target=charge,
        retry_policy=RetryPolicy(MaximumRetryAttempts=1), dead_letter=RecordingTarget("dead"))])
    async with bus:
        await bus.put_events([{"Source": "shop", "DetailType": "OrderPlaced", "Detail": '{"id": 1}'}])
        assert await bus.wait_idle(5)
    print("done")

anyio.run(main)
"""


def _recipes() -> dict[str, list[str]]:
    """The Python blocks of docs/logging.md, by the heading they sit under."""
    text = DOC.read_text(encoding="utf-8")
    found: dict[str, list[str]] = {}
    heading = ""
    for match in re.finditer(r"^(#+ [^\n]*)$|^```python\n(.*?)^```", text, re.M | re.S):
        if match.group(1):
            heading = match.group(1).lstrip("# ").strip()
        else:
            found.setdefault(heading, []).append(match.group(2))
    return found


def _run(tmp_path: Path, prelude: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", prelude + "\n" + WORKLOAD],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _recipe(heading: str, index: int = 0) -> str:
    if not DOC.exists():
        pytest.skip("docs/logging.md is not in this checkout")
    return _recipes()[heading][index]


def test_without_configuration_warnings_reach_stderr_and_nothing_reaches_stdout(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    lines = result.stderr.splitlines()
    assert [line.split()[0] for line in lines] == ["retried", "dead-lettered"]
    assert "rule=placed target=charge" in lines[1] and 'error="Function charge raised ValueError' in lines[1]
    # INFO records (the traced "accepted", "matched", "delivered") are dropped without configuration.
    assert "accepted" not in result.stderr


@pytest.mark.parametrize("index", [0, 1])
def test_silence_recipes_print_nothing(tmp_path: Path, index: int) -> None:
    result = _run(tmp_path, _recipe("Silence them", index))
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("done\n", "")


def test_basic_config_recipe_shows_info_with_logger_names(tmp_path: Path) -> None:
    result = _run(tmp_path, _recipe("Show them, INFO included"))
    assert result.returncode == 0 and result.stdout == "done\n"
    assert "INFO eventbus.bus: accepted bus=orders event_id=" in result.stderr
    assert "WARNING eventbus.delivery: retried bus=orders" in result.stderr
    assert "WARNING eventbus.delivery: dead-lettered bus=orders" in result.stderr


def test_file_recipe_writes_the_file_and_nothing_else(tmp_path: Path) -> None:
    result = _run(tmp_path, _recipe("Redirect them to a file"))
    assert (result.returncode, result.stdout, result.stderr) == (0, "done\n", "")
    written = (tmp_path / "eventbus.log").read_text(encoding="utf-8")
    assert "INFO eventbus.bus: accepted" in written and "WARNING eventbus.delivery: dead-lettered" in written


def test_stdlib_json_recipe_writes_one_json_object_a_line(tmp_path: Path) -> None:
    result = _run(tmp_path, _recipe("JSON lines, with the standard library only"))
    assert result.returncode == 0 and result.stdout == "done\n"
    records = [json.loads(line) for line in result.stderr.splitlines()]
    dead = next(r for r in records if r["event"] == "dead-lettered")
    assert dead["level"] == "warning" and dead["logger"] == "eventbus.delivery"
    assert dead["rule"] == "placed" and dead["attempt"] == 2 and "card declined" in dead["error"]
    assert any(r["event"] == "accepted" and r["level"] == "info" for r in records)


def test_structlog_json_recipe_writes_structured_events(tmp_path: Path) -> None:
    result = _run(tmp_path, _recipe("JSON lines, with structlog"))
    assert result.returncode == 0 and result.stdout == "done\n"
    records = [json.loads(line) for line in result.stderr.splitlines()]
    dead = next(r for r in records if r["event"] == "dead-lettered")
    assert dead["level"] == "warning" and dead["logger"] == "eventbus.delivery" and "timestamp" in dead
    assert dead["target"] == "charge" and dead["exhausted_retry_condition"] == "MaximumRetryAttempts"


def test_the_tests_recipe_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _recipe("In tests")], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout) == (0, ""), result.stderr


def test_a_log_event_renders_words_bare_and_everything_else_as_json() -> None:
    event = LogEvent(event="retried", rule="big", attempt=2, error="a b", chain=["x", "y"], none=None)
    assert str(event) == 'retried rule=big attempt=2 error="a b" chain=["x", "y"] none=null'
