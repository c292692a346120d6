"""The pytest plugin's fixtures, used directly (the plugin is installed with the project) and in a
separate pytest process that proves the entry point, the teardown and the loader override."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from eventbus.bus import BusConfig, EventBus, ManualClock
from eventbus.targets.recording import RecordingTarget

pytestmark = pytest.mark.anyio

CONFIG = """
buses:
  orders:
    rules:
      big:
        pattern:
          source: [shop]
          detail: {total: [{numeric: [">=", 100]}]}
        targets:
          - id: review
            http: {endpoint: "http://127.0.0.1:9/never-called"}
            input_transformer:
              input_paths_map: {order: $.detail.id}
              input_template: '{"order": <order>}'
"""


async def test_event_bus_and_captured(event_bus: EventBus, captured: RecordingTarget) -> None:
    assert event_bus.running
    event_bus.put_rule("shop", {"source": ["shop"]})
    event_bus.put_targets("shop", [{"Id": "t", "Target": captured}])
    await event_bus.put_events(
        [
            {"Source": "shop", "DetailType": "Order", "Detail": '{"id": 1}'},
            {"Source": "elsewhere", "DetailType": "Order", "Detail": '{"id": 2}'},
        ]
    )
    await captured.wait_for({"detail": {"id": [1]}}, timeout=5)
    captured.assert_received({"source": ["shop"]}, count=1)
    captured.assert_received(lambda event: event["source"] == "elsewhere", count=0)


async def test_load_config_swaps_targets_for_recording_ones(load_config: Any, tmp_path: Path) -> None:
    path = tmp_path / "orders.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    runtime = await load_config(path)
    review = runtime.targets["orders/big/review"]
    assert isinstance(review, RecordingTarget)
    await runtime.bus().put_events(
        [
            {"Source": "shop", "DetailType": "Order", "Detail": '{"id": "o-1", "total": 250}'},
            {"Source": "shop", "DetailType": "Order", "Detail": '{"id": "o-2", "total": 5}'},
        ]
    )
    await review.wait_for({"order": ["o-1"]}, timeout=5)
    assert await runtime.wait_idle(5)
    review.assert_received(lambda payload: True, count=1)


INNER_CONFTEST = """
import pytest

CALLS = []


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@pytest.fixture
def eventbus_config_loader():
    from eventbus.testing.plugin import default_config_loader

    def loader(path, *, environ, target_factory):
        CALLS.append(path.name)
        return default_config_loader(path, environ=environ, target_factory=target_factory)

    return loader
"""

INNER_TESTS = """
import sys

import pytest

import conftest

pytestmark = pytest.mark.anyio
BUSES = []


def test_plugin_import_is_cheap():
    # The plugin is loaded already (entry point); it must not have pulled in hypothesis itself.
    import eventbus.testing.plugin  # noqa: F401
    assert "eventbus.testing.strategies" not in sys.modules


async def test_bus(event_bus, captured):
    BUSES.append(event_bus)
    event_bus.put_rule("all", {"source": [{"prefix": ""}]})
    event_bus.put_targets("all", [{"Id": "t", "Target": captured}])
    await event_bus.put_events([{"Source": "s", "DetailType": "d", "Detail": "{}"}])
    await captured.wait_for({"source": ["s"]}, timeout=5)


def test_buses_were_closed():
    assert len(BUSES) == 2
    assert not any(bus.running for bus in BUSES)


async def test_loader_override(load_config):
    runtime = await load_config("orders.yaml")
    assert set(runtime.targets) == {"orders/big/review"}
    assert conftest.CALLS[-1] == "orders.yaml"
"""


def test_plugin_in_a_pytest_process_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(INNER_CONFTEST, encoding="utf-8")
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TESTS), encoding="utf-8")
    (tmp_path / "orders.yaml").write_text(CONFIG, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "6 passed" in result.stdout, result.stdout[-2000:]


def _dead_letter_setup(bus: EventBus, dead: RecordingTarget) -> None:
    from eventbus.bus import RetryPolicy, RuleTarget
    from eventbus.errors import RetryableError

    def refuse(event: dict[str, Any]) -> None:
        raise RetryableError("down")

    bus.put_rule("r", {"source": ["shop"]})
    bus.put_targets(
        "r", [RuleTarget(id="t", target=refuse, retry_policy=RetryPolicy(MaximumRetryAttempts=20), dead_letter=dead)]
    )


async def test_the_event_bus_fixture_retries_in_milliseconds(event_bus: EventBus, captured: RecordingTarget) -> None:
    assert event_bus.config.backoff.base == 0.001 and event_bus.config.backoff.cap == 0.01
    _dead_letter_setup(event_bus, captured)
    await event_bus.put_events([{"source": "shop", "detail-type": "x", "detail": {}}])
    # 20 retries: with the production backoff (1 s base) this would take minutes.
    await captured.wait_for({"source": ["shop"]}, timeout=5)
    assert captured.received[0].context.attributes["RETRY_ATTEMPTS"] == "20"


@pytest.mark.eventbus(clock=lambda: ManualClock(datetime(2026, 3, 1, tzinfo=UTC)), max_rules=3, name="marked")
async def test_the_marker_sets_clock_name_and_settings(event_bus: EventBus, captured: RecordingTarget) -> None:
    assert event_bus.name == "marked" and event_bus.config.max_rules == 3
    clock = event_bus.clock
    assert isinstance(clock, ManualClock) and clock.now() == datetime(2026, 3, 1, tzinfo=UTC)
    event_bus.put_rule("tick", schedule_expression="rate(5 minutes)")
    event_bus.put_targets("tick", [{"Id": "t", "Target": captured}])
    clock.advance(timedelta(minutes=5))
    [event] = await captured.wait_for({"detail-type": ["Scheduled Event"]}, timeout=5)
    assert event["time"] == "2026-03-01T00:05:00Z"


@pytest.mark.eventbus(config=BusConfig(backoff={"base": 2.0, "cap": 5.0}, account="111122223333"))
async def test_a_config_with_its_own_backoff_keeps_it(event_bus: EventBus) -> None:
    assert event_bus.config.account == "111122223333"
    assert (event_bus.config.backoff.base, event_bus.config.backoff.cap) == (2.0, 5.0)


@pytest.mark.eventbus(backoff={"base": 0.5, "cap": 0.5})
async def test_the_marker_sets_the_backoff(event_bus: EventBus) -> None:
    assert event_bus.config.backoff.base == 0.5


async def test_make_event_bus_starts_as_many_buses_as_needed(make_event_bus: Any) -> None:
    from eventbus.targets.bus import BusTarget

    audit = RecordingTarget()
    first = await make_event_bus()
    second = await make_event_bus("audit", clock=ManualClock)
    assert first.running and second.running and first.name.endswith("-1")
    assert isinstance(second.clock, ManualClock) and first.config.backoff.base == 0.001
    second.put_rule("all", {"source": ["shop"]})
    second.put_targets("all", [{"Id": "a", "Target": audit}])
    first.put_rule("forward", {"source": ["shop"]})
    first.put_targets("forward", [{"Id": "f", "Target": BusTarget("audit")}])
    await first.put_events([{"source": "shop", "detail-type": "x", "detail": {"n": 1}}])
    await audit.wait_for({"detail": {"n": [1]}}, timeout=5)


async def test_load_config_retries_in_milliseconds_too(load_config: Any, tmp_path: Path) -> None:
    path = tmp_path / "slow.yaml"
    path.write_text(
        CONFIG.replace("              input_template: '{\"order\": <order>}'\n",
                       "              input_template: '{\"order\": <order>}'\n"
                       "            retry_policy: {MaximumRetryAttempts: 3}\n"
                       "            dead_letter: {log: {}}\n")
        + "    settings: {backoff: {base: 60, cap: 300}}\n",
        encoding="utf-8",
    )
    runtime = await load_config(path)
    assert runtime.bus().config.backoff.base == 0.001
