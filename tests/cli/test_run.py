"""``eventbus run`` as a real process: SIGTERM drains, and a reload under load loses nothing."""

from __future__ import annotations

import json
import queue
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

from tests.cli.helpers import ROOT, cli_command, cli_env


class Running:
    """An ``eventbus run`` subprocess whose stderr lines are collected as they come."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            cli_command("run", *args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**cli_env(), **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert self.process.stderr is not None
        threading.Thread(target=self._pump, args=(self.process.stderr,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} on stderr within {timeout} s; saw {self.seen}")

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def close_stdin(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()

    def stop(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def event(n: int) -> str:
    return json.dumps({"source": "shop", "detail-type": "OrderPlaced", "detail": {"n": n}})


SLOW_SINK = """\
import json, os, time

def record(event):
    time.sleep(0.1)
    with open(os.environ["SINK_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps(event["detail"]["n"]) + "\\n")
"""


def test_sigterm_drains_accepted_events(tmp_path: Path) -> None:
    (tmp_path / "slow_sink.py").write_text(SLOW_SINK, encoding="utf-8")
    sink = tmp_path / "sink.txt"
    config = tmp_path / "drain.yaml"
    config.write_text(
        "runtime: {python_path: ['.']}\n"
        "buses:\n  orders:\n    rules:\n      all:\n        pattern: {source: [shop]}\n        targets:\n"
        "          - function: {function: 'slow_sink:record'}\n            max_concurrency: 2\n",
        encoding="utf-8",
    )
    with Running("--stdin", str(config), env={"SINK_FILE": str(sink)}) as run:
        run.wait_for("running: orders")
        for n in range(20):
            run.send(event(n))
        run.close_stdin()
        run.wait_for("stdin closed after 20 event(s)")
        assert run.stop() == 0
        run.wait_for("stopped")
    # Ten rounds of two 0.1 s calls: most were still queued when SIGTERM came.
    assert sorted(json.loads(line) for line in sink.read_text().splitlines()) == list(range(20))


CONFIG = """\
buses:
  orders:
    rules:
      all:
        pattern: {{source: [shop]}}
        targets:
          - queue: {{type: sqlite, path: "{path}"}}
"""


def bodies(path: Path) -> list[int]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return [json.loads(body)["detail"]["n"] for (body,) in db.execute("SELECT body FROM messages")]


def test_reload_under_load_loses_nothing(tmp_path: Path) -> None:
    first, second = tmp_path / "q1.db", tmp_path / "q2.db"
    config = tmp_path / "live.yaml"
    config.write_text(CONFIG.format(path=first), encoding="utf-8")
    total = 300
    with Running("--watch", "--stdin", str(config)) as run:
        run.wait_for("running: orders")
        for n in range(total):
            run.send(event(n))
            if n == 100:
                config.write_text(CONFIG.format(path=second), encoding="utf-8")
            if n == 150:
                run.wait_for("reloaded: orders")
            if n == 200:
                # An invalid change is reported and the running config stays.
                config.write_text(CONFIG.format(path=second).replace("pattern", "patern"), encoding="utf-8")
            if n == 250:
                run.wait_for("the running config stays")
            time.sleep(0.005)
        run.close_stdin()
        run.wait_for(f"stdin closed after {total} event(s)")
        assert run.stop() == 0
        assert any("patern: unknown key; did you mean 'pattern'?" in line for line in run.seen)
    got_first, got_second = bodies(first), bodies(second)
    assert sorted(got_first + got_second) == list(range(total)), "every event delivered exactly once"
    assert got_first and got_second, "both configs carried events"
    assert max(got_first) < min(got_second), "the switch happened once, in order"


FILE_PIPE = """\
pipes:
  rows:
    source: {{file: {{path: "{rows}"}}}}
    target: {{file: {{path: "{out}"}}}}
"""


def delivered_lines(path: Path, count: int, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {count} lines within {timeout} s")


def file_pipe(tmp_path: Path) -> tuple[Path, Path]:
    rows = tmp_path / "rows.csv"
    rows.write_text("n\n" + "".join(f"{n}\n" for n in range(200)), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    config = tmp_path / "rows.yaml"
    config.write_text(FILE_PIPE.format(rows=rows, out=out), encoding="utf-8")
    return config, out


def test_run_reports_file_progress_when_asked(tmp_path: Path) -> None:
    config, out = file_pipe(tmp_path)
    with Running("--progress", str(config)) as run:
        # stderr is a pipe here, so the bar falls back to plain lines, one a tenth of the file.
        run.wait_for("rows.csv: 100% (200 rows)")
        assert len(delivered_lines(out, 200)) == 200
        assert run.stop() == 0
    assert any("rows.csv: 50%" in line for line in run.seen)


def test_run_shows_no_progress_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    config, out = file_pipe(tmp_path)
    with Running(str(config)) as run:
        run.wait_for("running")
        assert len(delivered_lines(out, 200)) == 200
        assert run.stop() == 0
        run.wait_for("stopped")
    assert not any("rows.csv:" in line for line in run.seen)
