"""The directory source on real folders and files: "a file arrives, a function runs"."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import anyio
import pytest

from eventbus.bus import ManualClock
from eventbus.errors import ConfigError
from eventbus.pipes import DirectorySource, Pipe, PipeConfig
from eventbus.targets.function import FunctionTargetConfig
from eventbus.targets.recording import RecordingTarget
from tests.pipes.conftest import settled

pytestmark = pytest.mark.anyio


def watch(folder: Path, target: Any, **options: Any) -> PipeConfig:
    options.setdefault("stable_seconds", 0.2)
    return PipeConfig(name="inbox", source={"directory": {"path": str(folder), **options}}, target=target)


async def test_a_file_arriving_runs_a_function_with_an_s3_object_created_event(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    processed: list[str] = []

    def process(batch: list[Any]) -> None:
        for event in batch:
            key = event["detail"]["object"]["key"]
            processed.append((inbox / key).read_text())

    target = RecordingTarget()
    async with Pipe(watch(inbox, FunctionTargetConfig(function=process))) as pipe:
        (inbox / "hello.txt").write_text("hello world")
        await settled(pipe, 1)
    assert processed == ["hello world"]

    async with Pipe(watch(inbox, target)) as pipe:
        (inbox / "sub").mkdir()
        (inbox / "sub" / "data.csv").write_bytes(b"a,b\n1,2\n")
        await settled(pipe, 1)
    (event,) = target.payloads
    assert event["detail-type"] == "Object Created" and event["source"] == "aws.s3"
    assert event["resources"] == ["arn:aws:s3:::inbox"]
    detail = event["detail"]
    assert detail["bucket"] == {"name": "inbox"}
    assert detail["object"]["key"] == "sub/data.csv"
    assert detail["object"]["size"] == 8
    assert detail["object"]["etag"] == hashlib.md5(b"a,b\n1,2\n").hexdigest()
    assert detail["reason"] == "PutObject"


def on_clock(folder: Path, target: Any, clock: ManualClock, **options: Any) -> PipeConfig:
    """A pipe whose source times files settling on ``clock``: only ``advance`` makes them stable."""
    source = DirectorySource(folder, clock=clock, **options)
    return PipeConfig(name="inbox", source=source, target=target)


async def settle_files(pipe: Pipe, clock: ManualClock, seconds: float = 1) -> None:
    """Let the watcher see what is on disk now, then let ``seconds`` pass on its clock, then let
    it look again: every file written before the call is stable and announced (or never will be)."""
    source = pipe.source
    assert isinstance(source, DirectorySource)
    with anyio.fail_after(30):
        await source.caught_up()
        clock.advance(seconds)
        await source.caught_up()


async def test_files_already_there_are_announced_only_when_asked(tmp_path: Path) -> None:
    inbox = tmp_path / "drop"
    inbox.mkdir()
    (inbox / "old.txt").write_text("old")
    quiet = RecordingTarget()
    clock = ManualClock()
    async with Pipe(on_clock(inbox, quiet, clock, stable_seconds=0.2)) as pipe:
        (inbox / "new.txt").write_text("new")
        await settle_files(pipe, clock)
        await settled(pipe, 1)
        await settle_files(pipe, clock)  # time enough for old.txt too, were it a candidate
    assert [e["detail"]["object"]["key"] for e in quiet.payloads] == ["new.txt"]

    loud = RecordingTarget()
    async with Pipe(watch(inbox, loud, existing=True)) as pipe:
        await settled(pipe, 2)
    assert sorted(e["detail"]["object"]["key"] for e in loud.payloads) == ["new.txt", "old.txt"]


async def test_a_file_is_announced_once_it_is_stable(tmp_path: Path) -> None:
    inbox = tmp_path / "slow"
    inbox.mkdir()
    target = RecordingTarget()
    clock = ManualClock()
    async with Pipe(on_clock(inbox, target, clock, stable_seconds=0.5)) as pipe:
        source = pipe.source
        assert isinstance(source, DirectorySource)
        with (inbox / "big.bin").open("wb") as handle:
            for _ in range(5):
                handle.write(b"x" * 1000)
                handle.flush()
                await source.caught_up()  # the watcher has seen this size...
                clock.advance(0.4)  # ...and it stays for less than stable_seconds
                await source.caught_up()
                assert target.payloads == []  # growing: never announced half-way
        clock.advance(0.099)
        await source.caught_up()
        assert target.payloads == []  # 0.499 s still: not yet
        clock.advance(0.001)
        await settled(pipe, 1)
        await settle_files(pipe, clock, seconds=10)  # and never again while unchanged
    sizes = [e["detail"]["object"]["size"] for e in target.payloads]
    assert sizes == [5000]


async def test_hidden_files_are_ignored_and_rewrites_are_announced_again(tmp_path: Path) -> None:
    inbox = tmp_path / "box"
    inbox.mkdir()
    target = RecordingTarget()
    clock = ManualClock()
    async with Pipe(on_clock(inbox, target, clock, stable_seconds=0.1)) as pipe:
        (inbox / ".partial.tmp").write_text("not yet")
        (inbox / "report.txt").write_text("v1")
        await settle_files(pipe, clock)
        await settled(pipe, 1)
        (inbox / "report.txt").write_text("version 2")
        await settle_files(pipe, clock)
        await settled(pipe, 2)
    assert [e["detail"]["object"]["size"] for e in target.payloads] == [2, 9]
    assert all(e["detail"]["object"]["key"] == "report.txt" for e in target.payloads)


async def test_restart_announces_what_landed_while_stopped(tmp_path: Path) -> None:
    inbox = tmp_path / "restart"
    inbox.mkdir()
    target = RecordingTarget()
    clock = ManualClock()
    pipe = Pipe(on_clock(inbox, target, clock, stable_seconds=0.1))
    async with pipe:
        (inbox / "a.txt").write_text("a")
        await settle_files(pipe, clock)
        await settled(pipe, 1)
        await pipe.stop()
        (inbox / "b.txt").write_text("b")
        await pipe.start()
        await settle_files(pipe, clock)
        await settled(pipe, 2)
        await settle_files(pipe, clock)  # a.txt, announced before the stop, is not announced again
    assert sorted(e["detail"]["object"]["key"] for e in target.payloads) == ["a.txt", "b.txt"]


async def test_a_missing_folder_fails_the_start(tmp_path: Path) -> None:
    pipe = Pipe(watch(tmp_path / "nowhere", RecordingTarget()))
    with pytest.raises(ConfigError, match="does not exist"):
        async with pipe:
            pass
    assert pipe.state == "START_FAILED"
