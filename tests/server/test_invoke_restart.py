"""Jobs outlive the server: a real ``eventbus serve`` process killed or stopped, then started
again on the same job store: the runtime's state file (the default, or the one
``runtime.backend`` names), or a file of its own (``invoke.jobs.path``)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .conftest import write
from .helpers import LiveServer
from .invoke_helpers import poll, wait_for_file, write_handlers

#: Where jobs are kept: ``runtime`` and ``invoke.jobs`` options for each way.
STORES = {
    "default state file": ("", ""),
    "named state file": ("backend: {type: sqlite, path: state/state.db}, ", ""),
    "file of its own": ("", "path: state/jobs.db, "),
}


def _config(folder: Path, *, drain_timeout: float = 10, store: str = "default state file") -> Path:
    module = write_handlers(folder, "invoke_restart_handlers")
    runtime, jobs = STORES[store]
    return write(
        folder,
        "front.yaml",
        f"""
runtime: {{{runtime}python_path: ["."]}}
invoke:
  jobs: {{{jobs}drain_timeout: {drain_timeout}, max_attempts: 3}}
  routes:
    waits: {{target: {{function: {{function: "{module}:waits"}}}}, max_concurrency: 1}}
""",
    )


@pytest.mark.parametrize("store", sorted(STORES))
def test_a_job_running_when_the_server_is_killed_runs_again_after_the_restart(tmp_path: Path, store: str) -> None:
    config = _config(tmp_path, store=store)
    started, release = tmp_path / "started", tmp_path / "release"
    server = LiveServer([config], cwd=tmp_path)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        location = client.post("/jobs/waits", json={"started": str(started), "release": str(release)}).headers["location"]
        wait_for_file(started)
        assert client.get(location).json()["status"] == "RUNNING"
    server.process.kill()  # no drain, no goodbye: a crash
    server.process.wait(60)
    release.touch()
    again = LiveServer([config], cwd=tmp_path)
    try:
        with httpx.Client(base_url=again.url, timeout=60) as client:
            done = poll(client, location)
        # At least once: it ran again, and both runs are counted.
        assert (done["status"], done["attempts"]) == ("SUCCEEDED", 2)
        assert done["result"] == {"released": True, "runs": 2}
    finally:
        assert again.stop() == 0
    assert any("a job was running when the server stopped" in line for line in again.lines)
    kept = {
        "default state file": tmp_path / ".eventbus" / "front.db",
        "named state file": tmp_path / "state" / "state.db",
        "file of its own": tmp_path / "state" / "jobs.db",
    }[store]
    with sqlite3.connect(kept) as db:
        assert db.execute("SELECT status FROM jobs").fetchall() == [("SUCCEEDED",)]


def test_pending_jobs_and_a_job_cut_short_by_a_stop_all_run_after_the_restart(tmp_path: Path) -> None:
    config = _config(tmp_path, drain_timeout=0)
    started, release = tmp_path / "started", tmp_path / "release"
    body = {"started": str(started), "release": str(release)}
    server = LiveServer([config], cwd=tmp_path)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        locations = [client.post("/jobs/waits", json=body).headers["location"] for _ in range(3)]
        wait_for_file(started)
        states = [client.get(location).json()["status"] for location in locations]
        assert sorted(states) == ["PENDING", "PENDING", "RUNNING"]
    # SIGTERM: the running job gets drain_timeout (0 s) and is put back, uncounted.
    assert server.stop() == 0
    release.touch()
    again = LiveServer([config], cwd=tmp_path)
    try:
        with httpx.Client(base_url=again.url, timeout=60) as client:
            done = [poll(client, location) for location in locations]
    finally:
        assert again.stop() == 0
    assert [d["status"] for d in done] == ["SUCCEEDED"] * 3
    assert sorted(d["attempts"] for d in done) == [1, 1, 1]
    # Four runs of the function in all: the one cut short, then each job once.
    assert len(started.read_text().splitlines()) == 4


def test_a_job_that_keeps_killing_the_server_fails_after_max_attempts(tmp_path: Path) -> None:
    config = _config(tmp_path)
    started = tmp_path / "started"
    body = {"started": str(started), "release": str(tmp_path / "never")}
    location = ""
    for run in range(1, 4):
        server = LiveServer([config], cwd=tmp_path)
        with httpx.Client(base_url=server.url, timeout=60) as client:
            if not location:
                location = client.post("/jobs/waits", json=body).headers["location"]
            wait_for_file(started, lines=run)
        server.process.kill()
        server.process.wait(60)
    last = LiveServer([config], cwd=tmp_path)
    try:
        with httpx.Client(base_url=last.url, timeout=60) as client:
            failed = client.get(location).json()
    finally:
        assert last.stop() == 0
    assert (failed["status"], failed["error"], failed["attempts"]) == ("FAILED", "Interrupted", 3)
    assert failed["reason"] == "The server stopped while the job ran, 3 time(s); it is not run again."


def test_a_job_store_that_cannot_be_used_is_one_clear_line(tmp_path: Path) -> None:
    config = _config(tmp_path, store="file of its own")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "jobs.db").write_text("not a database, just words\n" * 100)
    result = subprocess.run(
        [sys.executable, "-m", "eventbus.cli", "serve", str(config), "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"cannot serve: cannot use {tmp_path / 'state' / 'jobs.db'} as the job store: file is not a database" in result.stderr
    other = tmp_path / "state" / "jobs.db"
    other.unlink()
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    result = subprocess.run(
        [sys.executable, "-m", "eventbus.cli", "serve", str(config), "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "is another program's database (tables invoices), not a job store" in result.stderr


def test_a_state_file_that_cannot_be_used_is_one_clear_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    (tmp_path / ".eventbus").mkdir()
    state = tmp_path / ".eventbus" / "front.db"
    state.write_text("not a database, just words\n" * 100)
    result = subprocess.run(
        [sys.executable, "-m", "eventbus.cli", "serve", str(config), "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"cannot serve: cannot keep jobs in the state file: {state} is not a usable state file" in result.stderr


def test_a_second_server_on_the_same_state_file_is_refused_and_the_first_goes_on(tmp_path: Path) -> None:
    config = _config(tmp_path)
    server = LiveServer([config], cwd=tmp_path)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "eventbus.cli", "serve", str(config), "--port", "0"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert f"cannot be run here: another process runs them (pid {server.process.pid} on " in result.stderr
        with httpx.Client(base_url=server.url, timeout=60) as client:
            started, release = tmp_path / "started", tmp_path / "release"
            release.touch()
            location = client.post("/jobs/waits", json={"started": str(started), "release": str(release)}).headers[
                "location"
            ]
            assert poll(client, location)["status"] == "SUCCEEDED"
    finally:
        assert server.stop() == 0
