"""``eventbus run CONFIG`` with a jetstream backend is a worker: two of them share the bus's work,
and ``eventbus status CONFIG`` shows the streams, the consumers' counts and both workers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import eventbus
from tests.cli.test_run import Running
from tests.conftest import serve_asgi

from .receiver import Receiver

EVENTS = 400


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    app = Receiver()
    with serve_asgi(app) as url:
        yield app, url


def write_config(tmp_path: Path, server: str, prefix: str, url: str) -> Path:
    config = tmp_path / "orders.yaml"
    config.write_text(
        "runtime:\n"
        "  backend:\n"
        "    type: jetstream\n"
        f"    servers: ['{server}']\n"
        f"    stream: {prefix}\n"
        "    ack_wait: 5\n"
        "buses:\n"
        "  orders:\n"
        "    rules:\n"
        "      all:\n"
        "        pattern: {source: [load]}\n"
        "        targets:\n"
        "          - http:\n"
        f"              endpoint: '{url}/events'\n"
        "              invocation_rate_limit_per_second: null\n"
        "              timeout: 60\n"
        "              header_parameters: {X-Worker: '${WORKER:-none}'}\n",
        encoding="utf-8",
    )
    return config


def status(config: Path) -> dict[str, object]:
    result = eventbus("status", str(config), "--json")
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def wait_until(condition: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(0.2)


@pytest.mark.timeout(300)
def test_two_runs_of_one_config_share_the_bus_and_status_shows_them(
    tmp_path: Path, nats_server: str, prefix: str, receiver: tuple[Receiver, str]
) -> None:
    app, url = receiver
    config = write_config(tmp_path, nats_server, prefix, url)
    with (
        Running(str(config), "--stdin", env={"WORKER": "front"}) as front,
        Running(str(config), env={"WORKER": "second"}) as second,
    ):
        front.wait_for("running:", 60)
        second.wait_for("running:", 60)
        # Both workers are listed once each has started routing.
        wait_until(
            lambda: len(status(config)["workers"]) == 2,  # type: ignore[arg-type]
            "both workers to be listed",
            60,
        )
        for n in range(EVENTS):
            front.send(json.dumps({"source": "load", "detail-type": "t", "detail": {"n": n}}))
        wait_until(lambda: len(app.ids()) == EVENTS, "every event to arrive", 120)

        shown: dict[str, Any] = status(config)
        assert shown["prefix"] == prefix
        streams = {s["name"]: s for s in shown["streams"]}
        events = streams[f"{prefix}_orders_EVENTS"]
        assert [c["name"] for c in events["consumers"]] == ["router"]
        deliveries = streams[f"{prefix}_orders_DELIVERIES"]
        # Every route's deliveries come through ``deliveries``; a route's own consumer, on the
        # parked stream, leases those a worker parked.
        assert [c["name"] for c in deliveries["consumers"]] == ["deliveries"]
        assert [c["name"] for c in streams[f"{prefix}_orders_PARKED"]["consumers"]] == ["all__http"]
        workers = shown["workers"]
        assert len(workers) == 2 and all(w["buses"] == ["orders"] for w in workers)
        text = eventbus("status", str(config)).stdout
        assert f"{prefix}_orders_DELIVERIES" in text and "workers: 2" in text

        assert front.stop() == 0
        assert second.stop() == 0
    ids = app.ids()
    assert len(ids) == EVENTS and max(ids.values()) == 1, "an event arrived twice though nothing failed"
    assert set(app.by_worker()) == {"front", "second"}, f"not every worker delivered: {app.by_worker()}"
    # Stopped workers leave the list at once.
    assert status(config)["workers"] == []


@pytest.mark.timeout(300)
def test_eventbus_serve_is_a_front_and_a_worker_beside_eventbus_run(
    tmp_path: Path, nats_server: str, prefix: str, receiver: tuple[Receiver, str]
) -> None:
    from tests.server.helpers import LiveServer

    app, url = receiver
    config = write_config(tmp_path, nats_server, prefix, url)
    with Running(str(config), env={"WORKER": "second"}) as worker:
        worker.wait_for("running:", 60)
        server = LiveServer([config], cwd=tmp_path)
        try:
            events = server.client()
            ids: list[str] = []
            for start in range(0, 200, 10):
                answer = events.put_events(
                    Entries=[
                        {"Source": "load", "DetailType": "t", "Detail": json.dumps({"n": n}), "EventBusName": "orders"}
                        for n in range(start, start + 10)
                    ]
                )
                assert answer["FailedEntryCount"] == 0
                ids += [e["EventId"] for e in answer["Entries"]]
            wait_until(lambda: set(app.ids()) >= set(ids), "every event to arrive", 120)
        finally:
            assert server.stop() == 0
        assert worker.stop() == 0
    got = app.ids()
    assert set(got) == set(ids) and max(got.values()) == 1


def test_status_of_a_config_on_another_backend_says_so(tmp_path: Path) -> None:
    config = tmp_path / "local.yaml"
    config.write_text("runtime: {backend: memory}\nbuses: {orders: {}}\n", encoding="utf-8")
    result = eventbus("status", str(config))
    assert result.returncode == 1
    assert "runtime.backend is memory, not jetstream" in result.stdout
    assert "no file names a jetstream runtime.backend" in result.stderr


def test_status_names_the_servers_it_cannot_reach(tmp_path: Path) -> None:
    from tests.conftest import free_port

    config = tmp_path / "gone.yaml"
    server = f"nats://127.0.0.1:{free_port()}"
    config.write_text(
        f"runtime: {{backend: {{type: jetstream, servers: ['{server}'], connect_retry: 0}}}}\nbuses: {{orders: {{}}}}\n",
        encoding="utf-8",
    )
    result = eventbus("status", str(config))
    assert result.returncode == 1
    assert "127.0.0.1" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.timeout(300)
def test_two_runs_of_a_config_with_an_archive_archive_each_event_once(
    tmp_path: Path, nats_server: str, prefix: str, receiver: tuple[Receiver, str]
) -> None:
    import asyncio

    from eventbus.bus.logs.jetstream import JetStreamArchiveStore, JetStreamConnection, JetStreamSettings

    app, url = receiver
    config = write_config(tmp_path, nats_server, prefix, url)
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "    rules:\n", "    archives:\n      loads: {pattern: {source: [load]}, retention_days: 30}\n    rules:\n"
        ),
        encoding="utf-8",
    )
    total = EVENTS
    with (
        Running(str(config), "--stdin", env={"WORKER": "front"}) as front,
        Running(str(config), env={"WORKER": "second"}) as second,
    ):
        front.wait_for("running:", 60)
        second.wait_for("running:", 60)
        wait_until(lambda: len(status(config)["workers"]) == 2, "both workers to be listed", 60)  # type: ignore[arg-type]
        for n in range(total):
            front.send(json.dumps({"source": "load", "detail-type": "t", "detail": {"n": n}}))
        wait_until(lambda: len(app.ids()) == total, "every event to arrive", 120)
        assert front.stop() == 0
        assert second.stop() == 0
    assert set(app.by_worker()) == {"front", "second"}, f"not every worker routed: {app.by_worker()}"

    async def archived() -> tuple[int, list[str]]:
        store = JetStreamArchiveStore(JetStreamConnection(JetStreamSettings(servers=[nats_server], stream=prefix)))
        await store.open()
        try:
            [archive] = store.archives()
            assert (archive.name, archive.bus, archive.retention_days) == ("loads", "orders", 30)
            start, end = archive.created.replace(year=2000), archive.created.replace(year=2100)
            kept = await store.read("loads", start, end, None, 10 * total)
            return archive.event_count, [e.event["id"] for e in kept]
        finally:
            await store.close()

    count, ids = asyncio.run(archived())
    # Each event archived once, by whichever worker routed it.
    assert count == total and sorted(ids) == sorted(app.ids())
