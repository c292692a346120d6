from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import nats
import pytest

from eventbus.errors import ConfigError, ResourceNotFoundError, RetryableError
from eventbus.targets.base import DeliveryContext
from eventbus.targets.nats import NatsTarget
from eventbus.targets.registry import build_target

from .http_app import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
async def stream(nats_server: str) -> AsyncIterator[tuple[str, str]]:
    """A fresh JetStream stream on its own subject; yields (stream name, subject)."""
    name = f"S{uuid.uuid4().hex[:8]}"
    subject = f"events.{name}"
    nc = await nats.connect(nats_server)
    js = nc.jetstream()
    await js.add_stream(name=name, subjects=[subject], duplicate_window=60)
    try:
        yield name, subject
    finally:
        await js.delete_stream(name)
        await nc.close()


async def _stored(server: str, stream: str) -> list[tuple[bytes, str | None]]:
    nc = await nats.connect(server)
    js = nc.jetstream()
    info = await js.stream_info(stream)
    out = []
    for seq in range(1, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        out.append((msg.data, (msg.headers or {}).get("Nats-Msg-Id")))
    await nc.close()
    return out


async def test_publishes_with_event_ids_as_dedup_ids(nats_server: str, stream: tuple[str, str]) -> None:
    name, subject = stream
    target = build_target("nats", {"servers": [nats_server], "subject": subject})
    context = DeliveryContext(kind="rule", event_ids=("id-1", "id-2"))
    acks = await target.deliver(['{"n":1}', '{"n":2}'], context)
    assert [(a["stream"], a["seq"], a["duplicate"]) for a in acks] == [(name, 1, False), (name, 2, False)]
    # A retry of the same events is recognised as a duplicate and not stored again.
    again = await target.deliver(['{"n":1}', '{"n":2}'], context)
    assert [a["duplicate"] for a in again] == [True, True]
    await target.aclose()
    assert await _stored(nats_server, name) == [(b'{"n":1}', "id-1"), (b'{"n":2}', "id-2")]


async def test_missing_stream_is_no_resource(nats_server: str) -> None:
    target = NatsTarget.create("nobody.listens.here", servers=[nats_server])
    with pytest.raises(ResourceNotFoundError) as info:
        await target.deliver(["{}"], DeliveryContext())
    assert info.value.error_code == "NO_RESOURCE"
    await target.aclose()


async def test_unreachable_server_is_retryable() -> None:
    target = NatsTarget.create("x", servers=[f"nats://127.0.0.1:{free_port()}"], connect_timeout=0.5)
    with pytest.raises(RetryableError, match="Cannot connect to NATS"):
        await target.deliver(["{}"], DeliveryContext())
    await target.aclose()


def test_subject_must_be_a_concrete_subject() -> None:
    with pytest.raises(ConfigError, match="subject"):
        build_target("nats", {"subject": "events.>"})


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_is_refused_clearly(anyio_backend: str) -> None:
    with pytest.raises(ConfigError, match="asyncio"):
        await NatsTarget.create("x").deliver(["{}"], DeliveryContext())
