"""A map on the JetStream backend: ``eventbus run`` workers on one config share its rows.

One worker (elected) reads the CSV and publishes the rows; every worker runs rows; the reader
collects the outcomes into the reduce table and the summary, which every worker prints. The
function holds its rows while a file exists, so the test decides when rows flow: only once the
second worker is taking rows (the rows consumer has a pull request waiting while the first
worker's rows are all held), so each worker surely runs a share.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_run import Running

ROWS = 3000
CONCURRENCY = 100

FUNCTION = '''\
import asyncio, os
from pathlib import Path

HOLD = Path(os.environ["MAP_HOLD"])
LOG = os.environ["MAP_LOG"]
HANG_AFTER = int(os.environ.get("MAP_HANG_AFTER", "0"))
count = 0


async def work(row):
    global count
    count += 1
    with open(LOG, "a", encoding="utf-8") as out:
        out.write(f"{os.getpid()} {row['id']}\\n")
    if HANG_AFTER and count > HANG_AFTER:
        Path(f"{LOG}.hung-{os.getpid()}").touch()
        await asyncio.sleep(3600)
    while HOLD.exists():
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.002)
    if int(row["amount"]) < 0:
        raise ValueError(f"a negative amount: {row['amount']}")
    return {"pid": os.getpid(), "id": int(row["id"])}
'''


def write(tmp_path: Path, server: str, prefix: str) -> Path:
    (tmp_path / "rowfn.py").write_text(FUNCTION, encoding="utf-8")
    with open(tmp_path / "rows.csv", "w", encoding="utf-8") as out:
        out.write("id,amount\n")
        for n in range(1, ROWS + 1):
            out.write(f"{n},{-n if n % 100 == 0 else n}\n")
    config = tmp_path / "map.yaml"
    config.write_text(
        f"""\
runtime:
  python_path: ['{tmp_path}']
  backend:
    type: jetstream
    servers: ['{server}']
    stream: {prefix}
    ack_wait: 2
maps:
  scores:
    source: {{file: {{path: '{tmp_path / "rows.csv"}'}}}}
    target: {{function: {{function: 'rowfn:work'}}}}
    max_concurrency: {CONCURRENCY}
    retry_policy: {{maximum_retry_attempts: 0}}
    log_level: 'OFF'
    reduce:
      sql:
        path: '{tmp_path / "results.db"}'
        table: scores
        create_table: true
        on_conflict: update
        conflict_columns: [line]
        columns:
          line: {{path: $.line, type: integer}}
          status: {{path: $.status, type: text}}
          pid: {{path: $.output.pid, type: integer}}
""",
        encoding="utf-8",
    )
    return config


def rows_consumer(server: str, prefix: str) -> Any:
    async def ask() -> Any:
        import nats

        nc = await nats.connect(server)
        try:
            return await nc.jetstream().consumer_info(f"{prefix}_MAP_scores_ROWS", "rows")
        finally:
            await nc.close()

    return asyncio.run(ask())


def wait_until(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except Exception:  # the stream is not made yet
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(0.1)


def output(run: Running, timeout: float = 120) -> str:
    """Everything the worker wrote to stderr, once it stopped on its own."""
    run.wait_for("stopped", timeout)
    assert run.process.wait(30) == 0, "\n".join(run.seen)
    return "\n".join(run.seen)


SUMMARY = re.compile(r"map scores: SUCCEEDED in [\d.]+ s: 3,000 rows, 2,970 succeeded, 30 failed")


def check_results(tmp_path: Path, text: str) -> set[int]:
    assert SUMMARY.search(text), text
    # The first ten failed rows (in the order they failed), with their lines: row n is on line
    # n + 1, and every hundredth row fails.
    listed = re.findall(r"rows\.csv:(\d+): SDK_CLIENT_ERROR: Function work raised ValueError: a negative amount", text)
    assert len(listed) == 10 and all(int(line) % 100 == 1 for line in listed), text
    with sqlite3.connect(tmp_path / "results.db") as db:
        assert db.execute("select count(*), count(distinct line) from scores").fetchone() == (ROWS, ROWS)
        failed = [line for (line,) in db.execute("select line from scores where status = 'FAILED' order by line")]
        pids = {pid for (pid,) in db.execute("select distinct pid from scores where status = 'SUCCEEDED'")}
    assert failed == [100 * k + 1 for k in range(1, 31)]
    return pids


def start_held(tmp_path: Path, config: Path, server: str, prefix: str, env: dict[str, str]) -> Running:
    """The first worker, with every row it may have out held by the function."""
    first = Running(str(config), "--no-progress", env=env)
    wait_until(lambda: rows_consumer(server, prefix).num_ack_pending == CONCURRENCY, "the first rows to be taken")
    return first


@pytest.mark.timeout(300)
def test_two_workers_share_the_rows_and_both_print_the_exact_summary(
    tmp_path: Path, nats_server: str, prefix: str
) -> None:
    config = write(tmp_path, nats_server, prefix)
    hold = tmp_path / "hold"
    hold.touch()
    env = {"MAP_HOLD": str(hold), "MAP_LOG": str(tmp_path / "ran.log")}
    with start_held(tmp_path, config, nats_server, prefix, env) as first, Running(
        str(config), "--no-progress", env=env
    ) as second:
        # The second worker takes rows: the first holds all it may have out, so a pull
        # request waiting on the consumer is the second's.
        wait_until(lambda: rows_consumer(nats_server, prefix).num_waiting >= 1, "the second worker to take rows")
        hold.unlink()
        texts = [output(first), output(second)]

    ran = [int(re.search(r"this worker ran ([\d,]+) row", t).group(1).replace(",", "")) for t in texts]  # type: ignore[union-attr]
    assert all(n > 0 for n in ran) and sum(ran) >= ROWS, ran
    for text in texts:
        check_results(tmp_path, text)
    pids = check_results(tmp_path, texts[0])
    assert len(pids) == 2, f"the results come from {pids}, not from both workers"


@pytest.mark.timeout(300)
def test_a_worker_killed_mid_map_loses_no_row_and_none_is_counted_twice(
    tmp_path: Path, nats_server: str, prefix: str
) -> None:
    config = write(tmp_path, nats_server, prefix)
    hold = tmp_path / "hold"
    hold.touch()
    log = tmp_path / "ran.log"
    env = {"MAP_HOLD": str(hold), "MAP_LOG": str(log)}
    with start_held(tmp_path, config, nats_server, prefix, env) as reader, Running(
        str(config), "--no-progress", env={**env, "MAP_HANG_AFTER": "20"}
    ) as doomed:
        wait_until(lambda: rows_consumer(nats_server, prefix).num_waiting >= 1, "the second worker to take rows")
        hold.unlink()
        # The second worker runs 20 rows, then hangs on every row it takes: killed holding them.
        wait_until(lambda: Path(f"{log}.hung-{doomed.process.pid}").exists(), "the second worker to hang")
        doomed.process.send_signal(signal.SIGKILL)
        doomed.process.wait(10)
        text = output(reader)

    check_results(tmp_path, text)
    runs = Counter(line.split()[1] for line in log.read_text(encoding="utf-8").splitlines())
    again = [row for row, n in runs.items() if n > 1]
    assert again, "no row the killed worker held was run again"
    assert len(runs) == ROWS
