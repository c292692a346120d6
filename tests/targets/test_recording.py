from __future__ import annotations

import anyio
import pytest

from eventbus.errors import RetryableError
from eventbus.targets.base import DeliveryContext
from eventbus.targets.recording import RecordingTarget, recording_target

pytestmark = pytest.mark.anyio

CTX = DeliveryContext(kind="rule", name="r")


def _has_patterns() -> bool:
    try:
        from eventbus.patterns import Pattern  # type: ignore[attr-defined,unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


async def test_records_parsed_payloads_and_contexts() -> None:
    target = RecordingTarget("t", response={"ok": True})
    assert await target.deliver(['{"a":1}', '"text"'], CTX) == {"ok": True}
    assert target.payloads == [{"a": 1}, "text"]
    assert target.received[0].context is CTX and target.received[0].raw == '{"a":1}'
    assert target.assert_received(lambda p: p == "text", count=1) == ["text"]
    target.assert_received(lambda p: isinstance(p, dict))


async def test_assert_received_failure_says_what_arrived() -> None:
    target = RecordingTarget("t")
    await target.deliver(['{"a":1}'], CTX)
    with pytest.raises(AssertionError, match=r"expected 2 payload\(s\).*found 1.*\{\"a\": 1\}"):
        target.assert_received(lambda p: True, count=2)
    with pytest.raises(AssertionError, match="at least 1"):
        target.assert_received(lambda p: p == 5)


async def test_wait_for_wakes_on_delivery_and_times_out() -> None:
    target = RecordingTarget("t")

    async def later() -> None:
        for i in range(3):
            await anyio.sleep(0.01)
            await target.deliver([f'{{"i":{i}}}'], CTX)

    async with anyio.create_task_group() as tg:
        tg.start_soon(later)
        found = await target.wait_for(lambda p: "i" in p, count=3, timeout=30)
    assert found == [{"i": 0}, {"i": 1}, {"i": 2}]
    with pytest.raises(AssertionError, match=r"waited 0\.05 s"):
        await target.wait_for(lambda p: p == "never", timeout=0.05)


async def test_fail_next_injects_failures() -> None:
    target = RecordingTarget()
    target.fail_next(RetryableError("try again"), times=2)
    for _ in range(2):
        with pytest.raises(RetryableError):
            await target.deliver(["{}"], CTX)
    await target.deliver(["{}"], CTX)
    assert target.payloads == [{}]


def test_named_targets_are_shared() -> None:
    assert recording_target("shared-x") is recording_target("shared-x")
    assert recording_target("shared-x") is not recording_target("shared-y")


@pytest.mark.skipif(not _has_patterns(), reason="eventbus.patterns.Pattern is not available yet")
async def test_patterns_select_events() -> None:
    target = RecordingTarget()
    await target.deliver(['{"source":"app","detail":{"n":5}}', '{"source":"other"}'], CTX)
    assert target.assert_received({"source": ["app"]}, count=1) == [{"source": "app", "detail": {"n": 5}}]
    target.assert_received('{"detail": {"n": [{"numeric": [">", 1]}]}}', count=1)
    assert await target.wait_for({"source": ["other"]}, timeout=30) == [{"source": "other"}]
