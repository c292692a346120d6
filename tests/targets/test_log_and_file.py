from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from eventbus.errors import RetryableError, TargetPermissionError
from eventbus.targets.base import DeliveryContext
from eventbus.targets.files import FileTarget
from eventbus.targets.log import LogTarget
from eventbus.targets.registry import build_target
from eventbus.testing import capture_logs

pytestmark = pytest.mark.anyio

DLQ = DeliveryContext(
    kind="dead-letter", name="r1", target_id="t1", attempt=3, event_ids=("e1", "e2"),
    attributes={"ERROR_CODE": "TIMEOUT"},
)


async def test_log_target_emits_one_line_per_payload_at_the_level() -> None:
    target = build_target("log", {"level": "warning", "message": "dead letter"})
    with capture_logs() as logs:
        await target.deliver(['{"a":1}', '"plain"'], DLQ)
    assert [(entry["event"], entry["log_level"]) for entry in logs] == [("dead letter", "warning")] * 2
    assert logs[0]["payload"] == {"a": 1} and logs[1]["payload"] == "plain"
    assert logs[0]["event_id"] == "e1" and logs[1]["event_id"] == "e2"
    assert logs[0]["attributes"] == {"ERROR_CODE": "TIMEOUT"} and logs[0]["attempt"] == 3


def test_log_target_rejects_unknown_levels() -> None:
    with pytest.raises(ValueError, match="level must be one of"):
        LogTarget(level="loud")  # type: ignore[arg-type]


async def test_file_target_appends_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "events.jsonl"
    target = build_target("file", {"path": str(path), "fsync": True})
    await target.deliver(['{\n  "pretty": true\n}', '{"b":2}'], DLQ)
    await target.aclose()
    again = FileTarget(path)
    await again.deliver(['{"c":3}'], DLQ)
    await again.aclose()
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"pretty": True}, {"b": 2}, {"c": 3}]


async def test_record_format_keeps_the_context(tmp_path: Path) -> None:
    target = FileTarget(tmp_path / "dlq.jsonl", format="record")
    await target.deliver(['{"a":1}'], DLQ)
    await target.aclose()
    record = json.loads((tmp_path / "dlq.jsonl").read_text())
    assert record == {
        "kind": "dead-letter", "name": "r1", "target_id": "t1", "attempt": 3, "event_id": "e1",
        "attributes": {"ERROR_CODE": "TIMEOUT"}, "payload": {"a": 1},
    }


async def test_rotation_keeps_n_backups(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    target = FileTarget(path, max_bytes=50, backups=2)
    for i in range(10):
        await target.deliver([json.dumps({"i": i, "pad": "x" * 20})], DLQ)  # ~30 bytes a line
    await target.aclose()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    newest = [json.loads(line)["i"] for line in path.read_text().splitlines()]
    older = [json.loads(line)["i"] for line in (tmp_path / "events.jsonl.1").read_text().splitlines()]
    oldest = [json.loads(line)["i"] for line in (tmp_path / "events.jsonl.2").read_text().splitlines()]
    assert newest == [9] and older == [8] and oldest == [7]
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 50


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
async def test_unwritable_file_is_a_permission_error(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(TargetPermissionError):
        await FileTarget(folder / "x.jsonl").deliver(["{}"], DLQ)


async def test_unwritable_path_is_a_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises((RetryableError, TargetPermissionError), match="Cannot write"):
        await FileTarget(blocker / "x.jsonl").deliver(["{}"], DLQ)
