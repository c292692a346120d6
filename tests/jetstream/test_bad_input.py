"""What a worker says when JetStream cannot be used: no server, a stream made with other
settings, credentials refused. Each is a ``BackendError`` with a clear message, in bounded time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import nats
import pytest

from eventbus.bus import EventBus
from eventbus.bus.logs.jetstream import JetStreamEventLog
from eventbus.errors import BackendError
from tests.conftest import free_port

from .processes import Node

pytestmark = pytest.mark.anyio


async def test_unreachable_servers_are_named_after_a_bounded_retry() -> None:
    port = free_port()
    bus = EventBus("orders", log=JetStreamEventLog([f"nats://127.0.0.1:{port}"], connect_retry=1, connect_timeout=0.5))
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        async with bus:
            pass
    message = str(caught.value)
    assert f"nats://127.0.0.1:{port}" in message and "Cannot reach NATS" in message
    assert "tried for 1 s" in message
    assert time.monotonic() - started < 30  # bounded: the retry gave up


async def test_a_stream_made_with_other_settings_is_named_with_the_setting(nats_server: str, prefix: str) -> None:
    nc = await nats.connect(nats_server)
    try:
        await nc.jetstream().add_stream(name=f"{prefix}_orders_EVENTS", subjects=[f"{prefix}.orders.events"])
    finally:
        await nc.close()
    bus = EventBus("orders", log=JetStreamEventLog([nats_server], stream=prefix))
    with pytest.raises(BackendError) as caught:
        async with bus:
            pass
    message = str(caught.value)
    assert f"stream {prefix}_orders_EVENTS" in message
    assert "retention 'limits'" in message and "'workqueue'" in message
    assert "runtime.backend.stream" in message


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    node = Node(Path(tmp_path_factory.mktemp("guarded")), extra=["--user", "eventbus", "--pass", "s3cret-pass-word"])
    node.start()
    try:
        yield node.url
    finally:
        node.stop()


async def test_refused_credentials_fail_at_once_without_showing_the_password(guarded_server: str, prefix: str) -> None:
    wrong = JetStreamEventLog([guarded_server], stream=prefix, user="eventbus", password="not-the-pass-word", connect_retry=30)
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        async with EventBus("orders", log=wrong):
            pass
    message = str(caught.value)
    assert "refused the credentials" in message and guarded_server in message
    assert "not-the-pass-word" not in message
    assert time.monotonic() - started < 25  # no retrying what cannot pass
    right = JetStreamEventLog([guarded_server], stream=prefix, user="eventbus", password="s3cret-pass-word")
    async with EventBus("orders", log=right) as bus:
        assert (await bus.put_events([{"Source": "s", "DetailType": "t", "Detail": "{}"}]))["FailedEntryCount"] == 0
        with anyio.fail_after(10):
            while await right.pending():
                await anyio.sleep(0.05)
