"""The pytest plugin's fixtures, used directly (the plugin is installed with the project) and in a
separate pytest process that proves the entry point, the teardown and the loader override."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from eventbus.bus import EventBus
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
