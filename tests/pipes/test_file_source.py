"""The file source on real CSV and JSON Lines files."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from eventbus.errors import ConfigError
from eventbus.pipes import FileSource, FileSourceConfig, Pipe, PipeConfig
from eventbus.targets.function import FunctionTargetConfig
from eventbus.targets.recording import RecordingTarget
from tests.pipes.conftest import eventually

pytestmark = pytest.mark.anyio


async def test_csv_rows_become_records_and_filters_match_columns(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text('id,status,note\n1,paid,"multi\nline"\n2,open,x\n3,paid,y\n', encoding="utf-8")
    target = RecordingTarget()
    config = PipeConfig(
        name="csv",
        source={"file": {"path": str(path)}},
        filter=[{"data": {"status": ["paid"]}}],
        target=target,
        target_input_template='{"order": <$.data.id>, "line": <$.lineNumber>}',
    )
    async with Pipe(config) as pipe:
        await pipe.wait_finished(timeout=5)
    assert target.payloads == [{"order": "1", "line": 3}, {"order": "3", "line": 5}]
    assert pipe.metrics()["filtered_out"] == 1


async def test_json_lines_with_a_line_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"level": "error", "msg": "disk"}\n\nnot json at all\n{"level": "info"}\n', encoding="utf-8"
    )
    target = RecordingTarget()
    config = PipeConfig(
        name="jsonl",
        source={"file": {"path": str(path)}},
        filter=[{"data": {"level": ["error"]}}, {"data": [{"prefix": "not json"}]}],
        target=target,
    )
    async with Pipe(config) as pipe:
        await pipe.wait_finished(timeout=5)
    assert [p["data"] for p in target.payloads] == ['{"level": "error", "msg": "disk"}', "not json at all"]
    first = target.payloads[0]
    assert first["eventID"] == "events.jsonl:1" and first["eventSource"] == "eventbus:file"


async def test_a_slow_pipe_slows_the_reading_down(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(3000)), encoding="utf-8")
    gate = anyio.Event()

    async def slow(batch: list[Any]) -> None:
        await gate.wait()

    source = FileSource(path, capacity=50)
    config = PipeConfig(name="slow", source=source, target=FunctionTargetConfig(function=slow), batch_size=10)
    async with Pipe(config) as pipe:
        await eventually(lambda: pipe.in_flight == 20, what="a batch at the target and one read ahead")
        await eventually(lambda: source.rows_read >= 10 + 10 + 50, what="the buffer full")
        await anyio.wait_all_tasks_blocked()  # the reader waits for room: it read all it may
        # One batch at the target, one read ahead, the buffer full, and one row waiting to go in.
        assert source.rows_read <= 10 + 10 + 50 + 1
        gate.set()
        await pipe.wait_finished(timeout=20)
    assert pipe.metrics()["delivered"] == 3000 and source.rows_read == 3000


async def test_progress_is_plain_text_when_not_a_terminal(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("n\n" + "".join(f"{i}\n" for i in range(1000)), encoding="utf-8")
    out = io.StringIO()
    source = FileSource(path, progress=True, progress_stream=out)
    async with Pipe(PipeConfig(name="p", source=source, target=RecordingTarget(), batch_size=100)) as pipe:
        await pipe.wait_finished(timeout=10)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("rows.csv: reading")
    assert "rows.csv: 100% (1,000 rows)" in lines
    assert lines[-1] == "rows.csv: done (1,000 rows)"
    assert "\x1b[" not in out.getvalue()


async def test_several_files_in_order_and_stop_start_carries_on(tmp_path: Path) -> None:
    first = tmp_path / "a.jsonl"
    second = tmp_path / "b.jsonl"
    first.write_text("".join(json.dumps({"f": "a", "n": i}) + "\n" for i in range(30)), encoding="utf-8")
    second.write_text("".join(json.dumps({"f": "b", "n": i}) + "\n" for i in range(30)), encoding="utf-8")
    target = RecordingTarget()
    source = FileSource([first, second], capacity=5)
    async with Pipe(PipeConfig(name="two", source=source, target=target, batch_size=5)) as pipe:
        await eventually(lambda: len(target.payloads) >= 10)
        await pipe.stop()
        await pipe.start()
        await pipe.wait_finished(timeout=10)
    seen = [json.loads(p["data"]) for p in target.payloads]
    assert sorted((s["f"], s["n"]) for s in seen) == sorted(
        [("a", i) for i in range(30)] + [("b", i) for i in range(30)]
    )


def test_bad_file_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        FileSource(tmp_path / "missing.csv")
    odd = tmp_path / "data.xyz"
    odd.write_text("x")
    with pytest.raises(ValueError, match="unknown encoding"):
        FileSourceConfig(path=str(odd), encoding="klingon")
    with pytest.raises(ConfigError, match="Cannot tell the format"):
        FileSource(odd)
    assert FileSource(odd, format="jsonl").paths == [odd.resolve()]


def test_file_directory_and_schedule_sources_run_on_trio(tmp_path: Path) -> None:
    import trio

    from eventbus.bus import ManualClock
    from eventbus.pipes import ScheduleSource

    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"n": 1}\n{"n": 2}\n', encoding="utf-8")
    inbox = tmp_path / "inbox"
    inbox.mkdir()

    async def main() -> tuple[int, list[str], int]:
        files = RecordingTarget()
        async with Pipe(
            PipeConfig(name="t-file", source={"file": {"path": str(rows)}}, target=files)
        ) as pipe:
            await pipe.wait_finished(timeout=5)
        folder = RecordingTarget()
        watched = {"directory": {"path": str(inbox), "stable_seconds": 0.1}}
        async with Pipe(PipeConfig(name="t-dir", source=watched, target=folder)):
            (inbox / "a.txt").write_text("a")
            await eventually(lambda: len(folder.payloads) == 1)
        clock = ManualClock()
        ticks = RecordingTarget()
        source = ScheduleSource("rate(1 minute)", clock=clock)
        async with Pipe(PipeConfig(name="t-sched", source=source, target=ticks)):
            clock.advance(120)
            await eventually(lambda: len(ticks.payloads) == 2)
        return (
            len(files.payloads),
            [e["detail"]["object"]["key"] for e in folder.payloads],
            len(ticks.payloads),
        )

    assert trio.run(main) == (2, ["a.txt"], 2)
