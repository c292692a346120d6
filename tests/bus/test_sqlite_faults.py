"""Bad state files and a full disk: each a clear error; nothing accepted is lost, and PutEvents
answers what it could not store as failed rather than accepted."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import anyio
import pytest

from eventbus.bus import EventBus, RuleTarget
from eventbus.bus.logs.sqlite import SqliteEventLog
from eventbus.errors import StateError
from eventbus.testing import capture_logs

from .helpers import Collector, entry

pytestmark = pytest.mark.anyio


async def start(path: Path) -> None:
    async with EventBus("orders", log=SqliteEventLog(path)):
        pass


async def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    junk = b"these are my notes, not a database\n" * 200
    path.write_bytes(junk)
    with pytest.raises(StateError, match=r"state.db is not a usable state file \(file is not a database\)"):
        await start(path)
    assert path.read_bytes() == junk


async def test_a_database_of_something_else_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    with pytest.raises(StateError, match=r"an SQLite database of something else \(tables: customers\)"):
        await start(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("customers",)]


async def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    await start(path)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StateError, match=r"written by a newer eventbus \(state schema 99; this version reads up to 1\)"):
        await start(path)


async def test_a_path_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    with pytest.raises(StateError, match="cannot be created"):
        await start(tmp_path / "plain" / "state.db")


_READ_ONLY = """
import sys, anyio
from eventbus.bus import EventBus
from eventbus.bus.logs.sqlite import SqliteEventLog
from eventbus.errors import StateError

async def main():
    try:
        async with EventBus("orders", log=SqliteEventLog(sys.argv[1])):
            print("started")
    except StateError as exc:
        print("refused:", exc)

anyio.run(main)
"""


def test_a_read_only_state_file_is_refused_clearly() -> None:
    folder = Path(tempfile.mkdtemp(prefix="eventbus-ro-"))
    try:
        path = folder / "state.db"
        anyio.run(start, path)
        for name in os.listdir(folder):
            (folder / name).chmod(0o444)
        folder.chmod(0o555)
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_READ_ONLY), str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            # Root writes whatever the modes say: the check runs without that privilege.
            preexec_fn=_drop_capabilities if os.geteuid() == 0 else None,
        )
        assert out.stdout.startswith("refused:"), out.stdout + out.stderr
        assert "cannot be written" in out.stdout and "state.db" in out.stdout
    finally:
        folder.chmod(0o755)
        for name in os.listdir(folder):
            (folder / name).chmod(0o644)
            (folder / name).unlink()
        folder.rmdir()


def _drop_capabilities() -> None:
    """Give up root's power to ignore file modes, for this process and what it runs."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone after exec too
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _big(n: int, size: int = 60_000) -> dict[str, str]:
    return entry(detail={"n": n, "pad": "x" * size})


async def _limit(log: SqliteEventLog, extra_pages: int | None) -> None:
    assert log.store is not None

    def limit(conn: sqlite3.Connection) -> None:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + extra_pages if extra_pages is not None else 2**30}")

    await log.store.run(limit)


async def test_a_full_disk_fails_the_entries_it_could_not_store_and_loses_none_accepted(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    target = Collector()
    log = SqliteEventLog(path)
    bus = EventBus("orders", log=log)
    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets("r", [RuleTarget(id="t", target=target)])
    with capture_logs() as logs:
        async with bus:
            first = await bus.put_events([_big(0, 100)])  # small: it leaves no free pages behind
            assert first["FailedEntryCount"] == 0
            assert await bus.wait_idle(10)
            await _limit(log, 0)  # the disk is full now
            refused = await bus.put_events([_big(1), _big(2)])
            assert refused["FailedEntryCount"] == 2
            for answer in refused["Entries"]:
                assert answer["ErrorCode"] == "InternalFailure"
                assert "state.db is full" in answer["ErrorMessage"]
            await _limit(log, None)  # room again: the bus goes on
            again = await bus.put_events([_big(3)])
            assert again["FailedEntryCount"] == 0
            assert await bus.wait_idle(10)
    assert [p["detail"]["n"] for p in target.payloads] == [0, 3]
    assert any(r["event"] == "events could not be stored" for r in logs)


async def test_routing_waits_for_a_full_disk_and_delivers_once_there_is_room(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    target = Collector()
    log = SqliteEventLog(path)
    bus = EventBus("orders", log=log)
    bus.put_rule("r", {"source": ["shop"]})
    # The whole event goes to the target: each delivery stores the event once more.
    bus.put_targets("r", [RuleTarget(id="t", target=target), RuleTarget(id="u", target=target)])
    with capture_logs() as logs:
        async with bus:
            await bus.put_events([_big(0, 1000)])
            assert await bus.wait_idle(10)
            # Room for the event (about 40 pages) but not for its two deliveries as well.
            await _limit(log, 45)
            answer = await bus.put_events([_big(1, 150_000)])
            assert answer["FailedEntryCount"] == 0  # accepted: it is stored
            with anyio.fail_after(10):
                while not any(r["event"].startswith("routed events could not be stored") for r in logs):
                    await anyio.sleep(0.01)
            assert [p["detail"]["n"] for p in target.payloads] == [0, 0]
            await _limit(log, None)
            assert await bus.wait_idle(10)
    assert sorted(p["detail"]["n"] for p in target.payloads) == [0, 0, 1, 1]


async def test_an_event_accepted_while_the_disk_was_full_is_delivered_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"

    def bus(target: Collector) -> EventBus:
        b = EventBus("orders", log=SqliteEventLog(path), drain_timeout=0)
        b.put_rule("r", {"source": ["shop"]})
        b.put_targets("r", [RuleTarget(id="t", target=target), RuleTarget(id="u", target=target)])
        return b

    first = Collector()
    with capture_logs() as logs:
        async with bus(first) as running:
            await running.put_events([_big(0, 100)])
            assert await running.wait_idle(10)
            log = running.log
            assert isinstance(log, SqliteEventLog)
            await _limit(log, 45)  # room for the event, not for its deliveries
            answer = await running.put_events([_big(1, 150_000)])
            with anyio.fail_after(10):
                while not any(r["event"].startswith("routed events could not be stored") for r in logs):
                    await anyio.sleep(0.01)
        # Stopped (or killed) before it could route: the event stays accepted in the file.
    assert answer["FailedEntryCount"] == 0
    again = Collector()
    async with bus(again) as restarted:
        assert await restarted.wait_idle(10)
    assert [p["id"] for p in again.payloads] == [answer["Entries"][0]["EventId"]] * 2


def test_the_resource_store_keeps_documents_across_instances(tmp_path: Path) -> None:
    from eventbus.bus.logs.sqlite.resources import SqliteResourceStore
    from eventbus.server.store import ResourceStore

    path = tmp_path / "state.db"
    first = SqliteResourceStore(path)
    assert isinstance(first, ResourceStore)
    first.save("rule", "orders/big", {"Name": "big", "EventPattern": "{}"})
    first.save("bus", "orders", {"Name": "orders"})
    first.save("rule", "orders/big", {"Name": "big", "EventPattern": '{"source": ["shop"]}'})
    again = SqliteResourceStore(path)
    assert again.load("rule") == {"orders/big": {"Name": "big", "EventPattern": '{"source": ["shop"]}'}}
    again.delete("rule", "orders/big")
    again.delete("rule", "nothing")
    assert SqliteResourceStore(path).load("rule") == {} and again.load("bus") == {"orders": {"Name": "orders"}}
    # It shares the file with the buses' state.
    anyio.run(start, path)
    assert SqliteResourceStore(path).load("bus") == {"orders": {"Name": "orders"}}
