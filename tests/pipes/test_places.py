"""Pipes keep their place in a durable state file: a new process (a new pipe over the same file)
neither repeats nor skips what the last one settled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from eventbus.bus import ManualClock
from eventbus.bus.logs.places import MemoryPlaces
from eventbus.bus.logs.sqlite.places import SqlitePlaces
from eventbus.errors import StateLockedError
from eventbus.pipes import DirectorySource, FileSource, Pipe, PipeConfig
from eventbus.targets.function import FunctionTargetConfig
from eventbus.targets.recording import RecordingTarget
from tests.pipes.conftest import eventually, settled
from tests.pipes.test_directory_source import settle_files

pytestmark = pytest.mark.anyio


def rows(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(n)), encoding="utf-8")
    return path


def numbers(target: RecordingTarget) -> list[int]:
    return [json.loads(p["data"])["n"] for p in target.payloads]


async def test_a_file_source_resumes_after_the_last_row_settled(tmp_path: Path) -> None:
    path = rows(tmp_path / "rows.jsonl", 30)
    state = tmp_path / "state.db"
    first = RecordingTarget()
    gate = anyio.Event()
    taken: list[int] = []

    async def slow(batch: list[Any]) -> None:
        for record in batch:
            taken.append(json.loads(record["data"])["n"])
        if len(taken) >= 10:
            await gate.wait()  # rows 10 onwards are still in the pipe when it stops

    config = PipeConfig(
        name="rows", source=FileSource(path, capacity=5), target=FunctionTargetConfig(function=slow), batch_size=1
    )
    pipe = Pipe(config, places=SqlitePlaces(state, "pipe:rows"))
    async with pipe:
        await eventually(lambda: len(taken) >= 10, what="ten rows delivered")
        gate.set()
        await settled(pipe, 10)
    # A second process: a new source over the same file and state.
    second = Pipe(
        PipeConfig(name="rows", source=FileSource(path), target=first), places=SqlitePlaces(state, "pipe:rows")
    )
    async with second:
        await second.wait_finished(timeout=30)
    again = numbers(first)
    delivered_before = sorted(set(taken))
    assert sorted(again) == sorted(set(range(30)) - set(delivered_before))
    assert len(again) == len(set(again))  # none repeated within the run either


async def test_a_finished_file_is_not_read_again(tmp_path: Path) -> None:
    path = rows(tmp_path / "rows.jsonl", 5)
    state = tmp_path / "state.db"
    target = RecordingTarget()
    for _ in range(2):
        pipe = Pipe(PipeConfig(name="rows", source=FileSource(path), target=target), places=SqlitePlaces(state, "pipe:rows"))
        async with pipe:
            await pipe.wait_finished(timeout=30)
    assert numbers(target) == [0, 1, 2, 3, 4]


async def test_a_place_for_other_files_is_not_used(tmp_path: Path) -> None:
    places = MemoryPlaces()
    places.values["place"] = json.dumps({"paths": ["/elsewhere.jsonl"], "at": [0, 99], "settled": []})
    path = rows(tmp_path / "rows.jsonl", 3)
    target = RecordingTarget()
    pipe = Pipe(PipeConfig(name="rows", source=FileSource(path), target=target), places=places)
    async with pipe:
        await pipe.wait_finished(timeout=30)
    assert numbers(target) == [0, 1, 2]


async def test_a_directory_source_announces_what_landed_while_down_and_nothing_settled(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "before.txt").write_text("there at the very first start")
    state = tmp_path / "state.db"
    target = RecordingTarget()
    clock = ManualClock()

    def pipe() -> Pipe:
        source = DirectorySource(inbox, clock=clock, stable_seconds=0.1)
        return Pipe(PipeConfig(name="inbox", source=source, target=target), places=SqlitePlaces(state, "pipe:inbox"))

    first = pipe()
    async with first:
        (inbox / "a.txt").write_text("a")
        await settle_files(first, clock)
        await settled(first, 1)
    (inbox / "b.txt").write_text("b")  # landed while no process ran the pipe
    second = pipe()
    async with second:
        await settle_files(second, clock)
        await settled(second, 1)
        await settle_files(second, clock)  # a.txt and before.txt had their turn: not again
    assert [e["detail"]["object"]["key"] for e in target.payloads] == ["a.txt", "b.txt"]


async def test_one_process_runs_a_pipe_of_a_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    held = SqlitePlaces(state, "pipe:rows")
    await held.load()
    try:
        with pytest.raises(StateLockedError):
            await SqlitePlaces(state, "pipe:rows").load()
        other = SqlitePlaces(state, "pipe:other")
        assert await other.load() == {}
        await other.close()
    finally:
        await held.close()
