"""``eventbus serve``: run config files behind the EventBridge and Pipes APIs on one port.

boto3, the AWS CLI and any AWS SDK point ``endpoint_url`` at it; CloudEvents producers post to
``/cloudevents/BUS``; Prometheus scrapes ``/metrics``. Durable by default, as ``eventbus run``: the
config's buses and what the API creates (buses, rules, targets, connections, API destinations,
pipes, archives) are kept in a SQLite state file (``--state PATH``, else each file's
``runtime.backend``, else ``.eventbus/<config name>.db`` beside it).

SIGINT or SIGTERM stops it: the API stops answering, then the buses drain what they accepted
(each up to its ``drain_timeout``); a second signal stops at once. Either way the last lines say
what happened to the deliveries (the buses' counters) and what was left: pending deliveries kept
in the state file for the next start (nothing lost), or, for buses kept in memory, the events
written to a file (exit status 1). Without ``server.credentials`` or ``server.api_keys`` in the
config, it only listens on loopback.
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
            "and /metrics on one port, with a web console at /console, until SIGINT or SIGTERM."
        ),
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="config files (none: an empty default bus)")
    parser.add_argument("--host", help="address to listen on (default: the config's server.host, 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, help="port to listen on (default: the config's server.port, 4010; 0: any free port)"
    )
    parser.add_argument(
        "--state",
        metavar="PATH",
        help=(
            "the SQLite file the buses, and what the API creates, are kept in, whatever the files' "
            "runtime.backend says (default: the first file's runtime.backend, else .eventbus/CONFIG-NAME.db "
            "beside it; .eventbus/eventbus.db without files)"
        ),
    )
    parser.add_argument(
        "--abandoned",
        metavar="FILE",
        help=(
            "where to write events accepted by buses kept in memory and left undelivered at shutdown "
            "(default: eventbus-abandoned-DATE-TIME-PID.jsonl in the current folder)"
        ),
    )
    parser.add_argument(
        "--no-console", action="store_true", help="do not serve the web console at /console"
    )
    parser.set_defaults(handler=serve)


def _server_class(served: Any, abandoned: str | None) -> Any:
    import signal
    from types import FrameType

    import uvicorn

    from eventbus.cli._io import exit_now

    class Server(uvicorn.Server):
        """uvicorn's server, minus re-raising the signal that stopped it: a drained stop exits 0;
        a second signal ends the process at once, saying what it leaves."""

        #: Called as a stop begins (the server ends its long-lived streams).
        on_exit: tuple[Any, ...] = ()

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            for hook in self.on_exit:
                hook()
            name = signal.Signals(sig).name
            if self.should_exit:
                code = report(served, f"{name} received again: stopping now;", abandoned)
                exit_now(code)
            else:
                say(f"{name} received; stopping: draining accepted events")
                self.should_exit = True

    return Server


def report(served: Any, prefix: str, abandoned: str | None) -> int:
    """Say what the deliveries came to and what is left; the exit status (1: events lost)."""
    from eventbus.cli._runner import write_abandoned

    buses = [entry.bus for entry in served.state.buses.entries()]
    say(outcome_line(buses))
    durable = [bus for bus in buses if getattr(bus.log, "durable", False)]
    kept = sum(bus.pending() for bus in durable)
    leftovers = [(bus.name, event) for bus in buses if bus not in durable for event in bus.pending_events()]
    if kept:
        files = ", ".join(sorted({str(getattr(bus.log, "path", "the state file")) for bus in durable if bus.pending()}))
        prefix += f" {kept} pending delivery(ies) are kept in {files} for the next start (nothing lost);"
    if not leftovers:
        say(f"{prefix} every other accepted event was delivered" if kept else f"{prefix} every accepted event was delivered")
        return 0
    count = f"{len(leftovers)} accepted event(s) kept in memory were not delivered"
    path = write_abandoned(abandoned, leftovers)
    if path is None:
        say(f"{prefix} {count} (no file could be written; their ids: {', '.join(e.get('id', '?') for _, e in leftovers)})")
    else:
        say(f"{prefix} {count}; their ids and the events are in {path}")
    return 1


def outcome_line(buses: list[Any]) -> str:
    """The buses' counters in one line: events accepted, target invocations and how they ended."""
    accepted = sum(bus.metrics()["bus"]["AcceptedEvents"] for bus in buses)
    totals: dict[str, int] = {}
    for bus in buses:
        for counters in bus.metrics()["targets"].values():
            for key, value in counters.items():
                totals[key] = totals.get(key, 0) + value
    return (
        f"outcomes: {accepted} event(s) accepted; {totals.get('Invocations', 0)} target invocation(s), "
        f"{totals.get('RetriedInvocations', 0)} retried, {totals.get('FailedInvocations', 0)} failed for good "
        f"({totals.get('InvocationsSentToDLQ', 0)} sent to a dead-letter queue, "
        f"{totals.get('DroppedInvocations', 0)} dropped)"
    )


def serve(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    import uvicorn

    from eventbus.config import ConfigErrors, Runtime, load_configs
    from eventbus.config.backends import SqliteBackend
    from eventbus.config.server import ServerSettings
    from eventbus.errors import ConfigError
    from eventbus.server import EventbusServer, ServerMetrics
    from eventbus.server.auth import check_exposure

    logs_to_stderr()
    from eventbus.server.invoke import JobStoreError

    try:
        configs = load_configs(args.files)
        metrics = ServerMetrics()
        # Durable by default, as ``eventbus run``: SQLite beside each file unless it says otherwise.
        backend = SqliteBackend(path=str(Path(args.state).resolve())) if args.state else None
        runtime = Runtime(
            configs, instrument=metrics.instrument, backend=backend, default_backend=SqliteBackend()
        )
        server = EventbusServer(runtime, metrics=metrics)
        server.invoke.open_now()
    except ConfigErrors as exc:
        print_problems(exc)
        return 1
    except JobStoreError as exc:
        say(f"cannot serve: {exc}")
        return 1
    _Server = _server_class(server, args.abandoned)
    if not args.no_console:
        from eventbus.console import mount_console

        mount_console(server)
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
    web.on_exit = (server.stopping,)

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
    return report(server, "stopped;", args.abandoned)
