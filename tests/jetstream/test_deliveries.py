"""How a worker takes deliveries: every route's from one shared consumer, in batches; what it has
no room for is parked on the route's subject of the parked stream, with the attempts it had made."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest

from eventbus.bus import ManualClock
from eventbus.bus.logs.jetstream import JetStreamEventLog
from eventbus.bus.logs.jetstream.queue import decode_delivery, encode_delivery, parked_body
from eventbus.bus.logs.protocol import Delivery

pytestmark = pytest.mark.anyio

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _delivery(n: int, route: str) -> Delivery:
    event = {"id": f"e-{n}", "source": "shop", "detail": {"n": n}}
    return Delivery(route, event, f'{{"n":{n}}}', WHEN, offset=n)


def test_a_parked_delivery_keeps_the_attempts_it_made() -> None:
    delivery = _delivery(1, "rule/t")
    body = encode_delivery(delivery, '{"id":"e-1","source":"shop","detail":{"n":1}}')
    assert decode_delivery(body, "rule/t", 1, None).attempts == 1
    back = decode_delivery(parked_body(body, 2), "rule/t", 1, None)
    assert back.attempts == 3  # two before it was parked, and this one
    assert (back.event, back.payload, back.offset) == (delivery.event, delivery.payload, 1)


async def test_a_delivery_for_a_route_the_worker_does_not_lease_waits_on_the_parked_stream(
    nats_server: str, prefix: str
) -> None:
    log = JetStreamEventLog([nats_server], stream=prefix, ack_wait=5)
    queue = await log.open("orders", ManualClock())
    try:
        async with anyio.create_task_group() as tg:
            got: list[Delivery] = []

            async def leaser() -> None:
                got.extend(await queue.lease("busy/t", 10))

            tg.start_soon(leaser)  # the worker leases "busy/t" only
            await anyio.wait_all_tasks_blocked()
            await queue.put([_delivery(0, "idle/t"), _delivery(1, "busy/t")])
        assert [d.offset for d in got] == [1]
        names = log.names
        assert names is not None
        js = log.connection.js
        with anyio.fail_after(10):
            while True:  # parked: on the parked stream, no longer on the deliveries stream
                shared = await js.stream_info(names.deliveries_stream, subjects_filter=names.deliveries_prefix + ".>")
                parked = await js.stream_info(names.parked_stream, subjects_filter=names.parked_prefix + ".>")
                if (shared.state.subjects, parked.state.subjects) == (
                    {names.shared_subject("busy/t"): 1},
                    {names.parked_subject("idle/t"): 1},
                ):
                    break
                await anyio.sleep(0.05)
        # The deliveries stream has one consumer; the routes' own (made for the routes leased
        # here) live beside the parked deliveries.
        assert [c.name for c in await js.consumers_info(names.deliveries_stream)] == ["deliveries"]
        assert [c.name for c in await js.consumers_info(names.parked_stream)] == ["busy__t"]
        assert dict(await queue.routes()) == {"idle/t": 1, "busy/t": 1}
        await queue.ack(got)
        with anyio.fail_after(10):
            parked = await queue.lease("idle/t", 10)
        assert [(d.offset, d.attempts, d.route) for d in parked] == [(0, 1, "idle/t")]
        await queue.ack(parked)
        assert await queue.pending() == 0
    finally:
        await queue.close()
        await log.close()
