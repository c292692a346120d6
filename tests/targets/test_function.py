from __future__ import annotations

import json
import threading
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus.errors import ConfigError, NonRetryableError, RetryableError, TargetTimeoutError
from eventbus.targets.base import DeliveryContext
from eventbus.targets.function import FunctionTarget, FunctionTargetConfig
from eventbus.targets.registry import build_target
from eventbus.testing import capture_logs

from . import sample_functions

# Whatever name pytest imported this package under (it depends on how pytest is started).
SAMPLES = sample_functions.__name__
PACKAGE = SAMPLES.rpartition(".")[0]

pytestmark = pytest.mark.anyio

EVENT = {"version": "0", "id": "e1", "source": "app", "detail-type": "Thing", "detail": {"n": 1}}
RULE = DeliveryContext(kind="rule", name="r1", event_ids=("e1",))
PIPE = DeliveryContext(kind="pipe", name="p1")


async def test_sync_function_gets_parsed_event_in_a_worker_thread() -> None:
    seen: list[Any] = []
    main = threading.get_ident()

    def handler(event: dict[str, Any]) -> str:
        seen.append((event, threading.get_ident() != main))
        return "ok"

    target = FunctionTarget(handler)
    result = await target.deliver([json.dumps(EVENT), json.dumps(EVENT)], RULE)
    assert result == ["ok", "ok"]
    assert seen == [(EVENT, True), (EVENT, True)]


async def test_async_function_is_awaited_and_pipe_batch_is_one_array() -> None:
    batches: list[Any] = []

    async def handler(batch: list[Any]) -> dict[str, Any]:
        batches.append(batch)
        return {"batchItemFailures": []}

    target = FunctionTarget(handler)
    result = await target.deliver(['{"a":1}', '{"b":2}'], PIPE)
    assert batches == [[{"a": 1}, {"b": 2}]]
    assert result == {"batchItemFailures": []}
    enrich = await FunctionTarget(sample_functions.async_echo).deliver(["1"], DeliveryContext(kind="enrichment"))
    assert enrich == {"async": [1]}


async def test_string_reference_from_config() -> None:
    target = build_target("function", {"function": f"{SAMPLES}:echo"})
    assert await target.deliver(['{"x":1}'], RULE) == [{"got": {"x": 1}}]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (f"{PACKAGE}.no_such_module:f", "Cannot import module"),
        (f"{SAMPLES}:missing", "has no attribute"),
        (f"{SAMPLES}:not_callable", "is not callable"),
    ],
)
def test_bad_references_are_clear_errors(ref: str, message: str) -> None:
    with pytest.raises(ConfigError, match="reference"):
        FunctionTarget("no_colon_here")
    with pytest.raises(ConfigError, match=message):
        FunctionTarget(ref)


def test_malformed_reference_is_rejected_by_the_config() -> None:
    with pytest.raises(ConfigError, match=r"package\.module:function"):
        build_target("function", {"function": "not a reference"})


async def test_exception_is_a_retryable_failure() -> None:
    with pytest.raises(RetryableError, match="raised ValueError: bad input") as info:
        await FunctionTarget(sample_functions.fail).deliver(["{}"], RULE)
    assert isinstance(info.value.__cause__, ValueError)


async def test_delivery_errors_pass_through_unchanged() -> None:
    def refuse(event: Any) -> None:
        raise NonRetryableError("no such order", error_code="NO_RESOURCE")

    with pytest.raises(NonRetryableError) as info:
        await FunctionTarget(refuse).deliver(["{}"], RULE)
    assert info.value.error_code == "NO_RESOURCE"


async def test_timeout_is_target_timeout_error_for_sync_and_async() -> None:
    with pytest.raises(TargetTimeoutError, match=r"did not return within 0\.05 seconds") as info:
        await FunctionTarget(sample_functions.slow, timeout=0.05).deliver(["{}"], RULE)
    assert info.value.error_code == "TIMEOUT"

    async def hang(event: Any) -> None:
        await anyio.sleep(10)

    with pytest.raises(TargetTimeoutError):
        await FunctionTarget(hang, timeout=0.05).deliver(["{}"], RULE)


async def test_max_concurrency_caps_parallel_invocations() -> None:
    active = 0
    peak = 0
    release = anyio.Event()

    async def handler(event: Any) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await release.wait()
        active -= 1

    target = FunctionTarget(handler, max_concurrency=2)
    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(target.deliver, ["{}"], RULE)
        await anyio.wait_all_tasks_blocked()
        assert active == 2  # the other four wait for a slot
        release.set()
    assert peak == 2


async def test_fire_and_forget_returns_at_once_and_logs_errors() -> None:
    started = anyio.Event()
    release = anyio.Event()
    done: list[Any] = []

    async def handler(event: Any) -> None:
        started.set()
        await release.wait()
        done.append(event)
        raise RuntimeError("boom after the fact")

    target = FunctionTarget(handler, invocation_type="FIRE_AND_FORGET")
    with capture_logs() as logs:
        assert await target.deliver(['{"k":1}'], RULE) is None
        with anyio.fail_after(30):
            await started.wait()
        assert done == []
        release.set()
        await target.aclose()
    assert done == [{"k": 1}]
    assert [(e["event"], e["log_level"]) for e in logs] == [("fire-and-forget invocation failed", "error")]
    assert "boom after the fact" in logs[0]["error"]


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_fire_and_forget_on_trio(anyio_backend: str) -> None:
    done = anyio.Event()

    async def handler(event: Any) -> None:
        done.set()

    target = FunctionTarget(handler, invocation_type="FIRE_AND_FORGET")
    await target.deliver(["{}"], RULE)
    with anyio.fail_after(30):
        await done.wait()
    await target.aclose()


def test_constructor_and_config_validation() -> None:
    with pytest.raises(ValueError, match="invocation_type"):
        FunctionTarget(sample_functions.echo, invocation_type="EVENT")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="timeout"):
        build_target("function", {"function": "a.b:c", "timeout": 0})
    config = FunctionTargetConfig(function=sample_functions.echo, max_concurrency=3)
    target = config.build()
    assert target.max_concurrency == 3
    assert "echo" in repr(target)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3), max_size=5))
def test_pipe_batch_arrives_intact(batch: list[dict[str, Any]]) -> None:
    received: list[Any] = []

    async def main() -> Any:
        async def handler(items: list[Any]) -> int:
            received.append(items)
            return len(items)

        return await FunctionTarget(handler).deliver([json.dumps(item) for item in batch], PIPE)

    assert anyio.run(main) == len(batch)
    assert received == [batch]


async def test_a_timeout_error_raised_by_the_function_is_its_own_failure() -> None:
    def gives_up(event: Any) -> None:
        raise TimeoutError("upstream took too long")

    with pytest.raises(RetryableError, match="raised TimeoutError: upstream took too long") as info:
        await FunctionTarget(gives_up, timeout=5).deliver(["{}"], RULE)
    assert not isinstance(info.value, TargetTimeoutError)
