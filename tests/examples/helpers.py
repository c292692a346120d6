"""Running an example the way its README does: ``eventbus run`` (or ``serve``) as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

#: How long a condition that should hold soon may take on a busy machine: the bound is for a
#: test that would hang, never a margin the test relies on.
PATIENCE = 60.0


def example(name: str) -> Path:
    return EXAMPLES / name


def eventbus(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eventbus.cli", *args],
        cwd=cwd,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("COLUMNS", None)
    env.update(extra or {})
    return env


def eventually(check: Callable[[], Any], what: str, timeout: float = PATIENCE) -> Any:
    """Wait until ``check()`` answers something true, and return it."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class Running:
    """A running ``eventbus`` process whose stderr is collected line by line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        assert process.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(process.stderr,), daemon=True)
        self._reader.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def said(self, text: str) -> str | None:
        """The first stderr line holding ``text`` (and the process still alive to say more)."""
        for line in list(self.lines):
            if text in line:
                return line
        if self.process.poll() is not None:
            self._reader.join(5)
            raise AssertionError(
                f"eventbus exited ({self.process.returncode}) before saying {text!r}:\n{self.stderr}"
            )
        return None

    def wait_for(self, text: str, timeout: float = PATIENCE) -> str:
        line: str = eventually(lambda: self.said(text), f"{text!r} on stderr", timeout)
        return line

    def stop(self, timeout: float = PATIENCE) -> int:
        """SIGTERM, once: the process drains and exits."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"eventbus did not stop within {timeout} s:\n{self.stderr}") from None
        self._reader.join(5)
        return code


@contextmanager
def running(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Iterator[Running]:
    """``eventbus ARGS`` in the background; SIGTERM (then SIGKILL) when the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-m", "eventbus.cli", *args],
        cwd=cwd,
        env=environment(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    run = Running(process)
    try:
        yield run
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(PATIENCE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
