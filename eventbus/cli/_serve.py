"""``eventbus serve``: run config files behind the EventBridge and Pipes APIs on one port.

boto3, the AWS CLI and any AWS SDK point ``endpoint_url`` at it; CloudEvents producers post to
``/cloudevents/BUS``; Prometheus scrapes ``/metrics``. SIGINT or SIGTERM stops it: the API stops
answering, then the buses drain what they accepted (each up to its ``drain_timeout``). Without
``server.credentials`` or ``server.api_keys`` in the config, it only listens on loopback.
"""

from __future__ import annotations

import argparse
from typing import Any

from eventbus.cli._console import logs_to_stderr, print_problems, say


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="serve config files behind the EventBridge and Pipes APIs (boto3, the AWS CLI, CloudEvents)",
        description=(
            "Runs every bus, rule, schedule and pipe the files declare and answers the EventBridge API "
            "(AWS JSON 1.1), the Pipes API (REST-JSON), CloudEvents on /cloudevents/BUS, /healthz, /readyz "
            "and /metrics on one port, until SIGINT or SIGTERM."
        ),
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="config files (none: an empty default bus)")
    parser.add_argument("--host", help="address to listen on (default: the config's server.host, 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, help="port to listen on (default: the config's server.port, 4010; 0: any free port)"
    )
    parser.set_defaults(handler=serve)


def _server_class() -> Any:
    import signal
    from types import FrameType

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, minus re-raising the signal that stopped it: a drained stop exits 0."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            name = signal.Signals(sig).name
            if self.should_exit:
                say(f"{name} received again: stopping without waiting for open connections")
                self.force_exit = True
            else:
                say(f"{name} received; stopping: draining accepted events")
                self.should_exit = True

    return Server


def serve(args: argparse.Namespace) -> int:
    import asyncio

    import uvicorn

    from eventbus.config import ConfigErrors, Runtime, load_configs
    from eventbus.config.server import ServerSettings
    from eventbus.errors import ConfigError
    from eventbus.server import EventbusServer, ServerMetrics
    from eventbus.server.auth import check_exposure

    logs_to_stderr()
    _Server = _server_class()
    try:
        configs = load_configs(args.files)
        metrics = ServerMetrics()
        runtime = Runtime(configs, instrument=metrics.instrument)
    except ConfigErrors as exc:
        print_problems(exc)
        return 1
    server = EventbusServer(runtime, metrics=metrics)
    settings: ServerSettings = server.settings
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    try:
        check_exposure(settings, host)
    except ConfigError as exc:
        say(f"cannot serve: {exc}")
        return 1
    config = uvicorn.Config(
        server.app,
        host=host,
        port=port,
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    web = _Server(config)

    async def run() -> None:
        async def announce() -> None:
            while not web.started:
                if web.should_exit:
                    return
                await asyncio.sleep(0.01)
            bound = [s.getsockname() for srv in web.servers for s in (srv.sockets or [])]
            actual = bound[0][1] if bound else port
            shown = f"[{host}]" if ":" in host else host
            buses = ", ".join(sorted(e.bus.name for e in server.state.buses.entries()))
            say(f"serving on http://{shown}:{actual} (buses: {buses})")

        task = asyncio.create_task(announce())
        await web.serve()
        task.cancel()

    try:
        asyncio.run(run())
    except Exception as exc:
        say(f"cannot serve: {type(exc).__name__}: {exc}")
        return 1
    if not web.started:
        say("cannot serve: the server did not start (see the lines above)")
        return 1
    say("stopped")
    return 0
