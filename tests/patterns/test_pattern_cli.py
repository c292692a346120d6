"""``eventbus test-pattern`` through a real subprocess: exit codes, output, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventbus.cli", "test-pattern", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


def test_match_exits_zero() -> None:
    result = run("--pattern", '{"source": ["shop"]}', "--event", '{"source": "shop"}')
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "true", "")


def test_no_match_exits_one_and_explains() -> None:
    result = run("-p", '{"n": [{"numeric": [">", 5]}]}', "-e", '{"n": 1}', "--explain")
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["false", '  n: numeric [">", 5] did not match 1']


def test_invalid_pattern_exits_two_with_aws_message() -> None:
    result = run("-p", '{"a": []}', "-e", "{}")
    assert result.returncode == 2
    assert result.stderr.strip() == "Event pattern is not valid. Reason: Empty arrays are not allowed"
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("pattern", "event"),
    [('{"a": [1', "{}"), ('{"a": [1]}', '{"a": '), ('{"a": [1]}', "[]"), ("@/nonexistent/file.json", "{}")],
)
def test_bad_input_never_prints_a_traceback(pattern: str, event: str) -> None:
    result = run("-p", pattern, "-e", event)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.strip()


def test_files_and_stdin(tmp_path: Path) -> None:
    pattern = tmp_path / "pattern.json"
    pattern.write_text(json.dumps({"detail": {"ip": [{"cidr": "10.0.0.0/8"}]}}))
    result = run("-p", f"@{pattern}", "-e", "@-", stdin='{"detail": {"ip": "10.1.2.3"}}')
    assert (result.returncode, result.stdout.strip()) == (0, "true")


def test_no_command_prints_help_and_exits_two() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "eventbus.cli"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "test-pattern" in result.stderr
