"""``running_server``: ``eventbus serve`` in a background thread, for tests and notebooks.

::

    with running_server("orders.yaml") as server:
        events = server.client("events")          # boto3, pointed at it
        events.put_events(Entries=[...])

The server listens on a free loopback port (``server.url``), runs the configs' buses, rules and
pipes like ``eventbus serve`` (its event loop is the thread's own), and stops on the way out: the
API stops answering, then the buses drain what they accepted. It keeps them in memory, unless a
file's ``runtime.backend`` says otherwise or ``state`` names a SQLite state file (as ``eventbus
serve --state``): then what the API creates, and what the buses accepted, are there for the next
``running_server`` on that file.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["RunningServer", "running_server"]


class RunningServer:
    """A server started by ``running_server``: its ``url`` and the ``EventbusServer`` itself."""

    def __init__(self, url: str, server: Any) -> None:
        self.url = url
        self.server = server

    def client(self, service: str = "events", **options: Any) -> Any:
        """A boto3 client for ``events`` or ``pipes`` on this server (boto3 must be installed).

        Credentials default to placeholders (an anonymous loopback server checks none)."""
        import boto3

        settings = {
            "endpoint_url": self.url,
            "region_name": "us-east-1",
            "aws_access_key_id": "local",
            "aws_secret_access_key": "local",
            **options,
        }
        return boto3.client(service, **settings)


@contextlib.contextmanager
def running_server(
    *configs: str | Path,
    timeout: float = 60.0,
    state: str | Path | None = None,
    console: bool = True,
    clock: Any = None,
) -> Iterator[RunningServer]:
    """Serve ``configs`` (none: just a ``default`` bus) on ``127.0.0.1`` at a free port, with the
    web console at ``/console`` unless ``console`` is false; on the SQLite state file ``state``
    when given.

    ``clock`` (a ``ManualClock``) times the invocation front's rate limits, cache and jobs, so a
    test steps time instead of waiting."""
    import asyncio

    import uvicorn

    from eventbus.config import Runtime, load_configs
    from eventbus.config.backends import SqliteBackend
    from eventbus.server import EventbusServer, ServerMetrics

    metrics = ServerMetrics()
    backend = SqliteBackend(path=str(Path(state).resolve())) if state is not None else None
    runtime = Runtime(load_configs(list(configs)), instrument=metrics.instrument, backend=backend)
    server = EventbusServer(runtime, metrics=metrics, clock=clock)
    if console:
        from eventbus.console import mount_console

        mount_console(server)
    web = uvicorn.Server(
        uvicorn.Config(server.app, host="127.0.0.1", port=0, lifespan="on", log_level="warning", access_log=False)
    )
    failure: list[BaseException] = []

    async def serve_here() -> None:
        # Remembered so that stopping can end the server's event streams from this thread.
        web._eventbus_loop = asyncio.get_running_loop()  # type: ignore[attr-defined]
        await web.serve()

    def serve() -> None:
        try:
            asyncio.run(serve_here())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)

    thread = threading.Thread(target=serve, name="eventbus-server", daemon=True)
    thread.start()
    ended = threading.Event()
    waited = 0.0
    while not web.started and thread.is_alive() and waited < timeout:
        ended.wait(0.01)
        waited += 0.01
    if not web.started:
        web.should_exit = True
        thread.join(timeout)
        reason = f": {failure[0]}" if failure else ""
        raise RuntimeError(f"the server did not start{reason}")
    port = web.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", server)
    finally:
        loop = getattr(web, "_eventbus_loop", None)
        web.should_exit = True
        if loop is not None:
            loop.call_soon_threadsafe(server.stopping)
        thread.join(timeout)


