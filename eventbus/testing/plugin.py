"""The eventbus pytest plugin (registered through the ``pytest11`` entry point).

Fixtures, for tests run by anyio's pytest plugin (``@pytest.mark.anyio``):

* ``event_bus``: a running in-memory ``EventBus``, closed (and drained) after the test;
* ``captured``: a fresh ``RecordingTarget`` to give rules as a target, with
  ``assert_received(pattern_or_predicate, count=None)`` and ``await wait_for(...)``;
* ``load_config``: ``runtime = await load_config("orders.yaml")`` loads a config file with every
  target (dead letters too) swapped for a recording one, starts it, and stops it after the test.
  ``runtime.targets["bus/rule/target-id"]`` is the recording target, ``runtime.bus()`` the bus.
  The loading itself is the ``eventbus_config_loader`` fixture: override it in a ``conftest.py``
  to load configs another way.

This module is imported by every pytest run of every project with eventbus installed, so it
imports nothing at the top beyond pytest itself; each fixture imports what it needs.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from eventbus.bus import EventBus
    from eventbus.targets.base import Target, TargetConfig
    from eventbus.targets.recording import RecordingTarget

__all__ = [
    "ConfigLoader",
    "captured",
    "default_config_loader",
    "event_bus",
    "eventbus_config_loader",
    "load_config",
]


class ConfigLoader(Protocol):
    """Builds the runtime of one config file, not yet started.

    The result is an async context manager (entered to start, exited to stop) with ``targets``
    (address -> target) and ``bus(name=None)``; every target must come from ``target_factory``.
    """

    def __call__(
        self,
        path: Path,
        *,
        environ: Mapping[str, str] | None,
        target_factory: Callable[[str, TargetConfig], Target],
    ) -> Any: ...


def default_config_loader(
    path: Path,
    *,
    environ: Mapping[str, str] | None,
    target_factory: Callable[[str, TargetConfig], Target],
) -> Any:
    """``eventbus.config``: validate the file (``ConfigErrors`` with file:line problems) and build
    its ``Runtime``."""
    from eventbus.config import Runtime
    from eventbus.config import load_config as load

    return Runtime([load(path, environ)], target_factory=target_factory)


def _bus_name(node_name: str) -> str:
    # Unique per test and readable in logs; bus names allow only these characters.
    return "test-" + (re.sub(r"[^\.\-_A-Za-z0-9]", "_", node_name)[:200] or "bus")


@pytest.fixture
async def event_bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    """A running in-memory ``EventBus`` named after the test; closed after it."""
    from eventbus.bus import EventBus

    async with EventBus(_bus_name(request.node.name)) as bus:
        yield bus


@pytest.fixture
def captured() -> RecordingTarget:
    """A fresh recording target: ``bus.put_targets(rule, [{"Id": "t", "Target": captured}])``."""
    from eventbus.targets.recording import RecordingTarget

    return RecordingTarget("captured")


@pytest.fixture
def eventbus_config_loader() -> ConfigLoader:
    """How ``load_config`` builds a config; override this fixture to plug in another loader."""
    return default_config_loader


@pytest.fixture
async def load_config(
    request: pytest.FixtureRequest, eventbus_config_loader: ConfigLoader
) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await load_config(path, environ=None)``: the started runtime, with recording targets.

    A relative ``path`` is looked up beside the test file first, then in the working directory.
    """
    from eventbus.targets.recording import RecordingTarget

    def recorder(address: str, config: TargetConfig) -> Target:
        return RecordingTarget(address)

    async with contextlib.AsyncExitStack() as stack:

        async def load(path: str | Path, environ: Mapping[str, str] | None = None) -> Any:
            where = Path(path)
            if not where.is_absolute():
                beside = Path(request.path).parent / where
                if beside.exists():
                    where = beside
            runtime = eventbus_config_loader(where, environ=environ, target_factory=recorder)
            return await stack.enter_async_context(runtime)

        yield load
