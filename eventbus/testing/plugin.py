"""The eventbus pytest plugin (registered through the ``pytest11`` entry point).

Fixtures, for tests run by anyio's pytest plugin (``@pytest.mark.anyio``):

* ``event_bus``: a running in-memory ``EventBus``, closed (and drained) after the test. Its
  retries wait milliseconds (``TEST_BACKOFF``), not the production second; the
  ``@pytest.mark.eventbus(clock=..., config=..., backoff=..., name=..., **settings)`` marker
  changes how it is built;
* ``make_event_bus``: ``bus = await make_event_bus(name=None, clock=None, config=None,
  **settings)`` starts a bus built so (as many as a test needs), each closed after the test;
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
    "TEST_BACKOFF",
    "ConfigLoader",
    "captured",
    "default_config_loader",
    "event_bus",
    "eventbus_config_loader",
    "load_config",
    "make_event_bus",
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
    its ``Runtime``, its buses' and pipes' retries waiting milliseconds (``TEST_BACKOFF``)."""
    from eventbus.bus import Backoff
    from eventbus.config import Runtime
    from eventbus.config import load_config as load
    from eventbus.config.backends import MemoryBackend

    fast = Backoff.model_validate(TEST_BACKOFF)
    # As in config tests: retries wait milliseconds, whatever backoff the file sets.
    return Runtime(
        [load(path, environ)],
        backend=MemoryBackend(),  # hermetic: the file's runtime.backend is not touched
        target_factory=target_factory,
        adapt_bus=lambda name, settings: settings.model_copy(update={"backoff": fast}),
        adapt_pipe=lambda name, pipe: pipe.model_copy(update={"backoff": fast}),
    )


def _bus_name(node_name: str) -> str:
    # Unique per test and readable in logs; bus names allow only these characters.
    return "test-" + (re.sub(r"[^\.\-_A-Za-z0-9]", "_", node_name)[:200] or "bus")


#: Retry waits of the buses the fixtures make: milliseconds, so a test that exhausts retries
#: into a dead letter takes moments rather than the production backoff's seconds.
TEST_BACKOFF = {"base": 0.001, "cap": 0.01}

_MARKER_HELP = (
    "eventbus(clock=None, config=None, backoff=None, name=None, **settings): how the event_bus "
    "fixture builds its bus. clock: a Clock, or a callable making one (ManualClock) so each test "
    "gets its own; config: a BusConfig; backoff: {base, cap} in seconds (default: milliseconds); "
    "settings: BusConfig fields."
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_HELP)


def _build_bus(
    name: str,
    *,
    clock: Any = None,
    config: Any = None,
    backoff: Any = None,
    **settings: Any,
) -> EventBus:
    """An ``EventBus`` for a test: the given settings, and fast retries unless told otherwise."""
    from eventbus.bus import Clock, EventBus

    # A class passes the Clock protocol check (it has the methods): call it, as any factory.
    if clock is not None and (isinstance(clock, type) or not isinstance(clock, Clock)):
        if not callable(clock):
            raise TypeError(f"clock must be a Clock or a callable making one (ManualClock), not {clock!r}")
        clock = clock()
    if backoff is not None:
        settings["backoff"] = backoff
    elif "backoff" not in (getattr(config, "model_fields_set", None) or ()):
        settings.setdefault("backoff", TEST_BACKOFF)
    return EventBus(name, config=config, clock=clock, **settings)


@pytest.fixture
async def event_bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    """A running in-memory ``EventBus`` named after the test; closed after it.

    ``@pytest.mark.eventbus(...)`` on the test sets its clock, config, backoff or settings.
    """
    marker = request.node.get_closest_marker("eventbus")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        raise TypeError("@pytest.mark.eventbus takes keyword arguments only: clock=, config=, backoff=, ...")
    name = options.pop("name", None) or _bus_name(request.node.name)
    async with _build_bus(name, **options) as bus:
        yield bus


@pytest.fixture
async def make_event_bus(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Awaitable[EventBus]]]:
    """``bus = await make_event_bus(name=None, *, clock=None, config=None, backoff=None, **settings)``:
    a started bus (fast retries unless ``backoff`` or ``config`` says otherwise), closed after the
    test. Names default to the test's, numbered."""
    async with contextlib.AsyncExitStack() as stack:
        made = 0

        async def make(name: str | None = None, **options: Any) -> EventBus:
            nonlocal made
            made += 1
            bus = _build_bus(name or f"{_bus_name(request.node.name)}-{made}", **options)
            return await stack.enter_async_context(bus)

        yield make


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
