"""The worked example of docs/testing.md, run as a user would: copied into a test folder of its
own and run by pytest in a separate process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"


def _block(text: str, language: str, after: str) -> str:
    start = text.index(after)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    assert match is not None, f"no {language} block after {after!r}"
    return match.group(1)


def test_worked_example_runs(tmp_path: Path) -> None:
    if not DOC.exists():
        pytest.skip("docs/testing.md is not in this checkout")
    text = DOC.read_text(encoding="utf-8")
    (tmp_path / "orders.yaml").write_text(_block(text, "yaml", "## Worked example"), encoding="utf-8")
    (tmp_path / "test_orders.py").write_text(_block(text, "python", "## Worked example"), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
