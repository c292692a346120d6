from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from eventbus.errors import (
    NonRetryableError,
    ResourceNotFoundError,
    RetryableError,
    TargetPermissionError,
    TargetTimeoutError,
)
from eventbus.targets.base import DeliveryContext
from eventbus.targets.command import CommandTarget
from eventbus.targets.registry import build_target

pytestmark = pytest.mark.anyio

PY = sys.executable
RULE = DeliveryContext(kind="rule")
PIPE = DeliveryContext(kind="pipe")

ECHO = "import sys, json; d = json.load(sys.stdin); print(json.dumps({'seen': d}))"


async def test_payload_on_stdin_stdout_is_the_response() -> None:
    target = CommandTarget([PY, "-c", ECHO])
    assert await target.deliver(['{"a":1}', '{"b":2}'], RULE) == [{"seen": {"a": 1}}, {"seen": {"b": 2}}]
    assert await target.deliver(['{"a":1}', '{"b":2}'], PIPE) == {"seen": [{"a": 1}, {"b": 2}]}


async def test_plain_text_output_env_and_cwd(tmp_path: Path) -> None:
    script = "import os, sys; sys.stdin.read(); print(os.environ['GREETING'], os.getcwd())"
    target = build_target(
        "command", {"command": [PY, "-c", script], "env": {"GREETING": "hello"}, "cwd": str(tmp_path)}
    )
    out = await target.deliver(["{}"], RULE)
    assert out == [f"hello {tmp_path.resolve()}\n"]


async def test_non_inherited_env_holds_only_given_variables() -> None:
    script = "import os, json; print(json.dumps(sorted(k for k in os.environ if k == 'HOME' or k == 'ONLY')))"
    target = CommandTarget([PY, "-c", script], env={"ONLY": "1"}, inherit_env=False)
    assert await target.deliver(["{}"], RULE) == [["ONLY"]]


async def test_non_zero_exit_is_retryable_with_stderr_tail() -> None:
    script = "import sys; sys.stderr.write('x' * 5000 + 'the real reason'); sys.exit(3)"
    with pytest.raises(RetryableError, match=r"exited with 3: .*the real reason$") as info:
        await CommandTarget([PY, "-c", script]).deliver(["{}"], RULE)
    assert len(str(info.value)) < 1200


async def test_listed_exit_codes_are_not_retryable() -> None:
    target = CommandTarget([PY, "-c", "import sys; sys.exit(65)"], non_retryable_exit_codes=[65])
    with pytest.raises(NonRetryableError, match=r"exited with 65: \(no stderr\)"):
        await target.deliver(["{}"], RULE)


async def test_missing_and_non_executable_commands(tmp_path: Path) -> None:
    with pytest.raises(ResourceNotFoundError, match="Command not found"):
        await CommandTarget([str(tmp_path / "nope")]).deliver(["{}"], RULE)
    plain = tmp_path / "plain.sh"
    plain.write_text("echo hi\n")
    with pytest.raises(TargetPermissionError, match="not executable"):
        await CommandTarget([str(plain)]).deliver(["{}"], RULE)


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    # The shell starts a grandchild that would outlive a plain kill of the shell.
    script = f"sleep 30 & echo $! > {marker}; wait"
    # Long enough for the shell to have started the grandchild, however busy the machine.
    target = CommandTarget(["/bin/sh", "-c", script], timeout=2)
    with pytest.raises(TargetTimeoutError, match=r"did not finish within 2 seconds"):
        await target.deliver(["{}"], RULE)
    pid = int(marker.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid)


async def test_command_that_ignores_stdin_still_succeeds() -> None:
    big = json.dumps({"blob": "x" * 1_000_000})
    out = await CommandTarget([PY, "-c", "print('ok')"]).deliver([big], RULE)
    assert out == ["ok\n"]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
