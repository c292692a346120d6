"""A map over real files: every row through the target, failures, retries, thresholds, reduces."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from eventbus import ManualClock, NonRetryableError, RecordingTarget, RetryableError
from eventbus.errors import ConfigError
from eventbus.maps import Map, MapConfig, MemoryCheckpoint
from tests.maps.conftest import numbered_csv
from tests.pipes.conftest import eventually

pytestmark = pytest.mark.anyio


def config(path: Path, target: Any, **options: Any) -> MapConfig:
    return MapConfig(
        name=options.pop("name", "m"),
        source={"file": {"path": str(path)}},
        target=target,
        log_level=options.pop("log_level", "OFF"),
        **options,
    )


def function(fn: Any) -> dict[str, Any]:
    return {"function": {"function": fn}}


async def test_every_row_runs_once_and_the_summary_counts_them(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    async def double(row: dict[str, str]) -> int:
        seen.append(row)
        return int(row["id"]) * 2

    out = tmp_path / "results.jsonl"
    summary = await Map(
        config(numbered_csv(tmp_path / "rows.csv", 250), function(double), max_concurrency=16, reduce={"file": {"path": str(out)}})
    ).run()
    assert summary.status == "SUCCEEDED"
    assert (summary.rows, summary.succeeded, summary.failed, summary.aborted) == (250, 250, 0, 0)
    assert sorted(int(r["id"]) for r in seen) == list(range(1, 251))
    assert seen[0] == {"id": "1", "name": "name-1"}
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary.results_written == 250
    assert sorted((r["line"], r["output"]) for r in results) == [(i + 1, 2 * i) for i in range(1, 251)]
    assert {r["status"] for r in results} == {"SUCCEEDED"} and {r["file"] for r in results} == {"rows.csv"}
    assert summary.duration > 0 and summary.rows_per_second > 0


def check(row: dict[str, str]) -> str:
    if row["id"] in ("3", "7"):
        raise ValueError(f"row {row['id']} is wrong")
    return row["name"]


def broken(results: list[Any]) -> None:
    raise KeyError("total")


async def test_a_failing_row_is_reported_with_its_line_and_never_stops_the_map(tmp_path: Path) -> None:
    dead = RecordingTarget("dead")
    out = tmp_path / "results.jsonl"
    summary = await Map(
        config(
            numbered_csv(tmp_path / "rows.csv", 10),
            function(check),
            retry_policy={"maximum_retry_attempts": 0},
            dead_letter=dead,
            reduce={"file": {"path": str(out)}},
            include_input=True,
        )
    ).run()
    assert summary.status == "SUCCEEDED"
    assert (summary.succeeded, summary.failed) == (8, 2)
    assert sorted((f.line, f.error, f.cause, f.attempts) for f in summary.failures) == [
        (4, "SDK_CLIENT_ERROR", "Function check raised ValueError: row 3 is wrong", 1),
        (8, "SDK_CLIENT_ERROR", "Function check raised ValueError: row 7 is wrong", 1),
    ]
    assert summary.errors == {"SDK_CLIENT_ERROR": 2}
    assert "rows.csv:4: SDK_CLIENT_ERROR: Function check raised ValueError: row 3 is wrong" in str(summary)
    failed = sorted((json.loads(line) for line in out.read_text().splitlines() if '"FAILED"' in line), key=lambda r: r["line"])
    assert failed[0] == {
        "file": "rows.csv",
        "line": 4,
        "status": "FAILED",
        "error": "SDK_CLIENT_ERROR",
        "cause": "Function check raised ValueError: row 3 is wrong",
        "attempts": 1,
        "input": {"id": "3", "name": "name-3"},
    }
    letters = sorted(dead.deliveries, key=lambda d: d[1].attributes["LINE"])
    assert [json.loads(p[0]) for p, _ in letters] == [{"id": "3", "name": "name-3"}, {"id": "7", "name": "name-7"}]
    attributes = letters[0][1].attributes
    assert attributes["ERROR_CODE"] == "SDK_CLIENT_ERROR"
    assert attributes["ERROR_MESSAGE"] == "Function check raised ValueError: row 3 is wrong"
    assert attributes["RETRY_ATTEMPTS"] == "0"
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert (attributes["FILE"], attributes["LINE"]) == ("rows.csv", "4")
    assert attributes["MAP_ARN"] == "arn:aws:states:us-east-1:123456789012:mapRun:m"
    assert summary.dead_lettered == 2


async def test_a_malformed_csv_line_is_reported_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text('id,name\n1,ann\n2,"bo"b\n3,cy,extra\n4,dee\n', encoding="utf-8")
    dead = RecordingTarget("dead")
    summary = await Map(config(path, function(lambda row: row["id"]), dead_letter=dead)).run()
    assert summary.status == "SUCCEEDED"
    assert (summary.rows, summary.succeeded, summary.failed, summary.malformed) == (4, 2, 2, 2)
    assert [(f.line, f.error, f.cause, f.attempts) for f in summary.failures] == [
        (3, "MALFORMED_ROW", "not valid CSV: ',' expected after '\"'", 0),
        (4, "MALFORMED_ROW", "3 fields where the header has 2", 0),
    ]
    assert [json.loads(p[0]) for p, _ in dead.deliveries] == ['2,"bo"b', "3,cy,extra"]
    assert dead.deliveries[0][1].attributes["ERROR_CODE"] == "MALFORMED_ROW"


async def test_json_lines_rows_are_parsed_and_a_line_that_is_not_json_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"n": 1}\n{"n": 2\n{"n": 3}\n', encoding="utf-8")
    summary = await Map(config(path, function(lambda row: row["n"] * 10), reduce=function(lambda results: results))).run()
    assert [(r["line"], r["status"], r.get("output")) for r in summary.output] == [
        (1, "SUCCEEDED", 10),
        (2, "FAILED", None),
        (3, "SUCCEEDED", 30),
    ]
    assert summary.failures[0].cause.startswith("not JSON: Expecting ',' delimiter")


async def test_a_reduce_function_gets_every_result_in_line_order_and_answers_the_output(tmp_path: Path) -> None:
    async def score(row: dict[str, str]) -> int:
        await anyio.sleep(0.001 * (int(row["id"]) % 3))  # rows end out of order
        return int(row["id"])

    def total(results: list[dict[str, Any]]) -> dict[str, int]:
        assert [r["line"] for r in results] == list(range(2, 42))
        return {"total": sum(r["output"] for r in results)}

    summary = await Map(config(numbered_csv(tmp_path / "rows.csv", 40), function(score), max_concurrency=8, reduce=function(total))).run()
    assert summary.output == {"total": 820}
    assert summary.results_written == 40
    assert "output: {\"total\":820}" in str(summary)


async def test_results_into_a_sqlite_table(tmp_path: Path) -> None:
    database = tmp_path / "results.db"
    reduce = {
        "sql": {
            "path": str(database),
            "table": "results",
            "create_table": True,
            "columns": {
                "line": {"path": "$.line", "type": "integer"},
                "status": {"path": "$.status", "type": "text"},
                "output": {"path": "$.output", "type": "json"},
            },
            "max_batch_size": 7,
        }
    }
    summary = await Map(
        config(numbered_csv(tmp_path / "rows.csv", 30), function(lambda row: {"id": row["id"]}), reduce=reduce, reduce_batch_size=5)
    ).run()
    assert summary.results_written == 30
    with sqlite3.connect(database) as db:
        rows = db.execute("select line, status, output from results order by line").fetchall()
    assert rows[0] == (2, "SUCCEEDED", '{"id":"1"}')
    assert len(rows) == 30


async def test_other_targets_get_each_row_as_json_with_its_file_and_line(tmp_path: Path) -> None:
    target = RecordingTarget("t", response={"ok": True})
    summary = await Map(config(numbered_csv(tmp_path / "rows.csv", 3), target, reduce=function(lambda r: r))).run()
    assert sorted(target.payloads, key=lambda p: p["id"]) == [
        {"id": "1", "name": "name-1"},
        {"id": "2", "name": "name-2"},
        {"id": "3", "name": "name-3"},
    ]
    contexts = [context for _, context in target.deliveries]
    assert {c.kind for c in contexts} == {"map"}
    assert sorted(c.event_ids for c in contexts) == [("rows.csv:2",), ("rows.csv:3",), ("rows.csv:4",)]
    assert [r["output"] for r in summary.output] == [{"ok": True}] * 3


async def test_retries_wait_on_the_maps_clock_without_holding_a_worker(tmp_path: Path) -> None:
    clock = ManualClock()
    calls: Counter[str] = Counter()

    async def flaky(row: dict[str, str]) -> str:
        calls[row["id"]] += 1
        if row["id"] == "2" and calls["2"] < 3:
            raise RetryableError("busy")
        return row["id"]

    run = Map(config(numbered_csv(tmp_path / "rows.csv", 5), function(flaky), max_concurrency=1), clock=clock, rand=lambda: 0.5)
    async with run:
        await eventually(lambda: run.metrics()["retrying"] == 1 and calls["5"] == 1, what="row 2 to wait for its retry")
        assert calls["2"] == 1  # the one worker went on with rows 3 to 5 meanwhile
        clock.advance(0.49)  # the first retry waits 0.5 x 1 s
        await anyio.wait_all_tasks_blocked()
        assert calls["2"] == 1
        clock.advance(0.01)
        await eventually(lambda: run.metrics()["retrying"] == 1 and calls["2"] == 2, what="the first retry")
        clock.advance(1.0)  # the second waits 0.5 x 2 s
        summary = await run.wait(timeout=10)
    assert summary.status == "SUCCEEDED"
    assert (summary.succeeded, summary.retried, summary.failed) == (5, 2, 0)


async def test_a_non_retryable_error_fails_the_row_at_once(tmp_path: Path) -> None:
    calls: Counter[str] = Counter()

    def refuse(row: dict[str, str]) -> None:
        calls[row["id"]] += 1
        raise NonRetryableError("no such customer")

    summary = await Map(config(numbered_csv(tmp_path / "rows.csv", 3), function(refuse))).run()
    assert calls == {"1": 1, "2": 1, "3": 1}
    assert summary.failed == 3 and summary.retried == 0
    assert {f.error for f in summary.failures} == {"SDK_CLIENT_ERROR"}
    assert summary.status == "SUCCEEDED"  # no threshold: failed rows are reported, the map goes through


async def test_crossing_tolerated_failure_count_fails_the_map_and_abandons_the_rest(tmp_path: Path) -> None:
    def odd_only(row: dict[str, str]) -> str:
        if int(row["id"]) % 2 == 0:
            raise NonRetryableError("even")
        return row["id"]

    out = tmp_path / "results.jsonl"
    summary = await Map(
        config(
            numbered_csv(tmp_path / "rows.csv", 100),
            function(odd_only),
            max_concurrency=1,
            tolerated_failure_count=5,
            reduce={"file": {"path": str(out)}},
        )
    ).run()
    assert summary.status == "FAILED"
    assert summary.cause == "6 rows failed, more than tolerated_failure_count (5) allows"
    assert (summary.succeeded, summary.failed) == (6, 6)
    assert summary.aborted == summary.rows - 12
    assert len(out.read_text().splitlines()) == 12  # the results of the rows that ended are written
    assert "cause: 6 rows failed" in str(summary)


@pytest.mark.parametrize(("failing", "status"), [(10, "SUCCEEDED"), (11, "FAILED")])
async def test_tolerated_failure_percentage_is_of_every_row(tmp_path: Path, failing: int, status: str) -> None:
    def fail_first(row: dict[str, str]) -> str:
        if int(row["id"]) <= failing:
            raise NonRetryableError("no")
        return "ok"

    summary = await Map(
        config(numbered_csv(tmp_path / "rows.csv", 100), function(fail_first), tolerated_failure_percentage=10)
    ).run()
    assert summary.status == status
    if status == "FAILED":
        assert summary.cause == "11 of 100 rows failed (11.00 %), more than tolerated_failure_percentage (10 %) allows"


async def test_no_more_than_max_concurrency_rows_run_at_once(tmp_path: Path) -> None:
    running = peak = 0
    gate = anyio.Event()

    async def wait_for_gate(row: dict[str, str]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1

    run = Map(config(numbered_csv(tmp_path / "rows.csv", 50), function(wait_for_gate), max_concurrency=7))
    async with run:
        await eventually(lambda: running == 7, what="seven rows running")
        await anyio.wait_all_tasks_blocked()
        assert running == 7 and run.metrics()["running"] == 7
        gate.set()
        summary = await run.wait(timeout=10)
    assert peak == 7 and summary.succeeded == 50


async def test_stop_aborts_the_map_and_reports_what_ended(tmp_path: Path) -> None:
    gate = anyio.Event()

    async def slow(row: dict[str, str]) -> None:
        if row["id"] != "1":
            await gate.wait()

    run = Map(config(numbered_csv(tmp_path / "rows.csv", 20), function(slow), max_concurrency=4))
    async with run:
        await eventually(lambda: run.metrics()["succeeded"] == 1 and run.metrics()["running"] == 4)
        summary = await run.stop()
    assert summary.status == "ABORTED" and summary.cause == "stopped"
    assert (summary.rows, summary.succeeded, summary.aborted) == (20, 1, 19)
    assert run.status == "ABORTED"


async def test_stopping_a_map_that_has_ended_changes_nothing(tmp_path: Path) -> None:
    run = Map(config(numbered_csv(tmp_path / "rows.csv", 3), function(lambda row: 1)))
    async with run:
        summary = await run.wait(timeout=10)
        assert await run.stop() is summary
    assert run.status == "SUCCEEDED" and summary.status == "SUCCEEDED"


async def test_leaving_the_block_aborts_a_map_still_running(tmp_path: Path) -> None:
    async def forever(row: dict[str, str]) -> None:
        await anyio.sleep_forever()

    run = Map(config(numbered_csv(tmp_path / "rows.csv", 5), function(forever)))
    async with run:
        await eventually(lambda: run.metrics()["running"] == 5)
    assert run.summary is not None and run.summary.status == "ABORTED"


async def test_an_answer_that_cannot_be_written_as_json_fails_its_row(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    summary = await Map(
        config(
            numbered_csv(tmp_path / "rows.csv", 2),
            function(lambda row: {1, 2} if row["id"] == "1" else 1),
            reduce={"file": {"path": str(out)}},
        )
    ).run()
    assert [(f.line, f.error) for f in summary.failures] == [(2, "RESULT_NOT_JSON")]
    assert summary.failures[0].cause == "The target's answer is not JSON: Object of type set is not JSON serializable"
    assert summary.failures[0].attempts == 1  # not retried: it would answer the same
    assert sorted(json.loads(line)["status"] for line in out.read_text().splitlines()) == ["FAILED", "SUCCEEDED"]


async def test_results_that_cannot_be_written_fail_the_map(tmp_path: Path) -> None:
    reduce = RecordingTarget("reduce")
    reduce.fail_next(NonRetryableError("disk full"), times=1000)
    summary = await Map(config(numbered_csv(tmp_path / "rows.csv", 5), function(lambda row: 1), reduce=reduce)).run()
    assert summary.status == "FAILED"
    assert summary.cause is not None and summary.cause.startswith("the results could not be written (5 of them")
    assert summary.cause.endswith("disk full")


async def test_a_reduce_function_that_raises_fails_the_map(tmp_path: Path) -> None:
    summary = await Map(config(numbered_csv(tmp_path / "rows.csv", 2), function(lambda row: 1), reduce=function(broken))).run()
    assert summary.status == "FAILED"
    assert summary.cause == "the reduce function failed: Function broken raised KeyError: 'total'"


async def test_a_header_that_names_a_column_twice_fails_the_map_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("id,id\n1,2\n", encoding="utf-8")
    summary = await Map(config(path, function(lambda row: 1))).run()
    assert summary.status == "FAILED"
    assert summary.cause is not None and "names the column 'id' twice" in summary.cause
    assert summary.cause.startswith("reading rows.csv failed")


async def test_a_missing_file_or_a_stage_given_by_name_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Map(config(tmp_path / "missing.csv", function(len)))
    with pytest.raises(ConfigError, match="only a config file's runtime can resolve"):
        Map(config(numbered_csv(tmp_path / "rows.csv", 1), {"ref": "named"}))
    with pytest.raises(ConfigError, match="Invalid map: max_concurrency"):
        Map({"name": "m", "source": {"file": {"path": "x.csv"}}, "target": function(len), "max_concurrency": 10_001})


async def test_a_stopped_map_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    path = numbered_csv(tmp_path / "rows.csv", 50)
    checkpoint = MemoryCheckpoint()
    calls: Counter[str] = Counter()
    gate = anyio.Event()

    async def count(row: dict[str, str]) -> str:
        calls[row["id"]] += 1
        if row["id"] == "20":
            await gate.wait()
        return row["id"]

    first = Map(config(path, function(count), max_concurrency=1), checkpoint=checkpoint)
    async with first:
        await eventually(lambda: calls["20"] == 1)
        stopped = await first.stop()
    assert (stopped.status, stopped.succeeded) == ("ABORTED", 19)
    saved = checkpoint.saved["m"]
    assert (saved.position.rows, saved.succeeded, saved.failed) == (19, 19, 0)

    gate.set()
    summary = await Map(config(path, function(count), max_concurrency=1), checkpoint=checkpoint).run()
    assert summary.status == "SUCCEEDED"
    assert (summary.rows, summary.succeeded) == (50, 50)
    assert calls == Counter({str(i): 1 for i in range(1, 20)} | {str(i): 1 for i in range(21, 51)} | {"20": 2})
    assert "m" not in checkpoint.saved  # a map that went through starts over next time


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_map_runs_on_trio(tmp_path: Path) -> None:
    async def slow(row: dict[str, str]) -> int:
        await anyio.sleep(0.001)
        return int(row["id"])

    out = tmp_path / "results.jsonl"
    summary = await Map(
        config(numbered_csv(tmp_path / "rows.csv", 300), function(slow), max_concurrency=50, reduce={"file": {"path": str(out)}})
    ).run()
    assert summary.succeeded == 300
    assert len(out.read_text().splitlines()) == 300


async def test_a_hundred_thousand_rows_a_thousand_at_once(tmp_path: Path) -> None:
    async def echo(row: dict[str, str]) -> str:
        await anyio.sleep(0)
        return row["id"]

    out = tmp_path / "results.jsonl"
    summary = await Map(
        config(numbered_csv(tmp_path / "rows.csv", 100_000), function(echo), max_concurrency=1000, reduce={"file": {"path": str(out)}})
    ).run()
    assert (summary.status, summary.succeeded, summary.failed) == ("SUCCEEDED", 100_000, 0)
    outputs = Counter(json.loads(line)["output"] for line in out.read_text().splitlines())
    assert len(outputs) == 100_000 and set(outputs.values()) == {1}
