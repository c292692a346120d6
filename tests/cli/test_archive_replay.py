"""``eventbus archive`` and ``eventbus replay`` against a real ``eventbus run`` process: a replay is
asked for from another process, runs in the one serving the bus, and is followed to its end."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import eventbus
from tests.cli.test_run import Running
from tests.cli.test_run_faults import SINK, wait_until

CONFIG = """\
runtime: {python_path: ['.']}
buses:
  orders:
    archives:
      all: {description: every order}
    rules:
      all:
        pattern: {source: [shop]}
        targets:
          - function: {function: 'sink:record'}
            max_concurrency: 1
"""


def order(n: int, minute: int) -> str:
    return json.dumps({"Source": "shop", "DetailType": "OrderPlaced", "Detail": json.dumps({"n": n}), "Time": f"2026-03-01T12:{minute:02d}:00Z"})


def sink_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_replay_asked_for_from_the_command_line_runs_in_the_serving_process(tmp_path: Path) -> None:
    (tmp_path / "sink.py").write_text(SINK, encoding="utf-8")
    config = tmp_path / "orders.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    sink = tmp_path / "sink.jsonl"
    env = {"SINK_FILE": str(sink), "GATE_FILE": str(tmp_path / "gate")}
    with Running("--stdin", str(config), env=env) as run:
        run.wait_for("running: orders")
        for n in range(6):
            run.send(order(n, n * 10))  # 12:00, 12:10, ... 12:50
        wait_until(lambda: len(sink_ids(sink)) == 6, "six orders delivered")

        def archived() -> int:
            out = eventbus("archive", "describe", "all", "-c", str(config))
            return int(json.loads(out.stdout)["EventCount"]) if out.returncode == 0 else -1

        wait_until(lambda: archived() == 6, "six orders archived")
        listing = eventbus("archive", "list", "-c", str(config))
        assert listing.returncode == 0 and listing.stdout.split("\t")[:3] == ["all", "orders", "ENABLED"]

        started = eventbus(
            "replay", "start", "again", "--archive", "all", "--from", "2026-03-01T12:10:00Z",
            "--to", "2026-03-01T12:30:00Z", "-c", str(config),
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        assert "3 event(s) in the window" in started.stderr
        assert "replay again COMPLETED: 3 event(s) replayed, the last from 2026-03-01T12:30:00Z" in started.stderr
        wait_until(lambda: len(sink_ids(sink)) == 9, "the three replayed orders delivered")
        first, replayed = sink_ids(sink)[:6], sink_ids(sink)[6:]
        assert replayed == first[1:4]  # the same events (same ids), in time order

        described = json.loads(eventbus("replay", "describe", "again", "-c", str(config)).stdout)
        assert described["State"] == "COMPLETED" and described["EventLastReplayedTime"] == "2026-03-01T12:30:00Z"
        assert described["Destination"] == {"Arn": "arn:aws:events:us-east-1:123456789012:event-bus/orders"}
        refused = eventbus("replay", "cancel", "again", "-c", str(config))
        assert refused.returncode == 1 and "not in a state that can be cancelled" in refused.stderr
        # Replayed events are not archived again.
        assert archived() == 6
        assert run.stop() == 0


def test_a_replay_asked_for_while_no_process_serves_the_bus_waits_for_one(tmp_path: Path) -> None:
    (tmp_path / "sink.py").write_text(SINK, encoding="utf-8")
    config = tmp_path / "orders.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    sink = tmp_path / "sink.jsonl"
    env = {"SINK_FILE": str(sink), "GATE_FILE": str(tmp_path / "gate")}
    with Running("--stdin", str(config), env=env) as run:
        run.wait_for("running: orders")
        run.send(order(1, 5))
        wait_until(lambda: len(sink_ids(sink)) == 1, "the order delivered")
        assert run.stop() == 0
    asked = eventbus(
        "replay", "start", "later", "--archive", "all", "--from", "2026-03-01T12:00:00Z", "--to",
        "2026-03-01T13:00:00Z", "-c", str(config),
    )  # fmt: skip
    assert asked.returncode == 0 and "the replay starts when one does" in asked.stderr
    assert json.loads(eventbus("replay", "describe", "later", "-c", str(config)).stdout)["State"] == "STARTING"
    with Running(str(config), env=env) as run:
        run.wait_for("running: orders")
        wait_until(lambda: len(sink_ids(sink)) == 2, "the replay ran when the bus started")
        assert run.stop() == 0
    assert json.loads(eventbus("replay", "describe", "later", "-c", str(config)).stdout)["State"] == "COMPLETED"


def test_bad_state_arguments_are_one_clear_line(tmp_path: Path) -> None:
    missing = eventbus("archive", "list", "--state", str(tmp_path / "nowhere.db"))
    assert missing.returncode == 1 and "nowhere.db does not exist" in missing.stderr
    memory = tmp_path / "mem.yaml"
    memory.write_text("runtime: {backend: memory}\nbuses: {orders: {}}\n", encoding="utf-8")
    refused = eventbus("archive", "list", "-c", str(memory))
    assert refused.returncode == 2 and "keeps its buses in memory" in refused.stderr
    assert "Traceback" not in missing.stderr + refused.stderr
