"""``eventbus status CONFIG``: a JetStream deployment's streams, consumers and live workers.

For each distinct ``runtime.backend: {type: jetstream}`` among the files: every stream of the
deployment (its messages, and each consumer's pending, in-flight and redelivered counts) and
the workers running it (one line a process, with the buses it routes). ``--json`` prints one
JSON object a deployment instead. Files on another backend are named and skipped (their state
is in one process: `eventbus run` reports it).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from eventbus.cli._console import print_problems
from eventbus.cli._io import fail
from eventbus.errors import EventBusError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "status",
        help="a JetStream deployment's streams, consumers and workers",
        description=(
            "Shows what the JetStream deployment of the files' runtime.backend holds: each stream's "
            "messages, each consumer's pending, in-flight and redelivered counts, and the workers "
            "connected (every `eventbus run` of the config), with the buses each routes."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--json", action="store_true", help="one JSON object a deployment")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import anyio

    from eventbus.config import ConfigErrors, load_configs
    from eventbus.config.backends import JetStreamBackend

    try:
        configs = load_configs(args.files)
    except ConfigErrors as exc:
        print_problems(exc)
        return 1
    deployments: dict[tuple[tuple[str, ...], str], JetStreamBackend] = {}
    for config in configs:
        backend = config.model.runtime.backend
        if isinstance(backend, JetStreamBackend):
            deployments.setdefault((tuple(backend.servers), backend.stream), backend)
        else:
            kind = backend.type if backend is not None else "none (sqlite beside the file)"
            print(f"{config.file}: runtime.backend is {kind}, not jetstream: nothing to show", flush=True)
    if not deployments:
        return fail("no file names a jetstream runtime.backend (runtime: {backend: {type: jetstream, ...}})", 1)
    try:
        statuses = anyio.run(_gather, list(deployments.values()), backend="asyncio")
    except EventBusError as exc:
        return fail(str(exc), 1)
    for status in statuses:
        if args.json:
            print(json.dumps(status.to_dict()))
        else:
            _show(status)
    return 0


async def _gather(backends: list[Any]) -> list[Any]:
    from eventbus.bus.logs.jetstream.status import deployment_status

    return [await deployment_status(backend) for backend in backends]


def _show(status: Any) -> None:
    print(f"JetStream {status.servers}, prefix {status.prefix}")
    print(f"streams: {len(status.streams)}")
    for stream in status.streams:
        print(f"  {stream.name}: {stream.messages} message(s), {stream.replicas} replica(s)")
        for c in stream.consumers:
            print(
                f"    {c.name}: pending {c.pending}, in flight {c.in_flight}, "
                f"redelivered {c.redelivered}, waiting pulls {c.waiting}"
            )
    print(f"workers: {len(status.workers)}")
    now = time.time()
    for w in status.workers:
        print(f"  {w.worker} (pid {w.pid} on {w.host}), up {_age(now - w.since)}: {', '.join(w.buses)}")


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
