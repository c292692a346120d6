"""``eventbus put``: send events to a bus declared in config files, in this process.

The buses start, the events are put in batches as PutEvents takes them, the command waits until
every accepted event is delivered (or ``--timeout``), prints the PutEvents response and where each
event went, and stops the buses.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from eventbus.cli._console import logs_to_stderr, print_problems, print_table
from eventbus.cli._io import ArgumentError, fail, read_text_argument
from eventbus.errors import EventBusError, InvalidEventError

if TYPE_CHECKING:
    from eventbus.config import Delivered


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "put",
        help="send events to a bus from a config file",
        description=(
            "Starts the buses of the config files, sends the events (JSON objects, arrays or JSON Lines; "
            "PutEvents entries or events) from the arguments, @FILE arguments or stdin, waits for "
            "delivery and prints the PutEvents response and where each event went. Exit status 1 when "
            "an entry failed or was not delivered in time, or a config file is invalid; 2 for bad input."
        ),
    )
    parser.add_argument("--config", "-c", action="append", required=True, metavar="FILE", help="config file")
    parser.add_argument("--bus", "-b", help="the bus to put to (needed when the config has several)")
    parser.add_argument("events", nargs="*", metavar="EVENT", help="JSON text or @FILE; none reads stdin")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for delivery (default 30)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import anyio

    from eventbus.config import ConfigErrors, load_configs
    from eventbus.config.entries import parse_events

    try:
        if not args.events and sys.stdin.isatty():
            print("reading events from stdin (end with Ctrl-D)", file=sys.stderr)
        texts = [read_text_argument(v, "event") for v in args.events] or [sys.stdin.read()]
        entries = [entry for text in texts for entry in parse_events(text, "events")]
    except (ArgumentError, InvalidEventError) as exc:
        return fail(str(exc))
    if not entries:
        return fail("no events given")
    try:
        configs = load_configs(args.config)
    except ConfigErrors as exc:
        print_problems(exc)
        return 1
    logs_to_stderr()
    try:
        return anyio.run(_put, configs, args.bus, entries, args.timeout)
    except EventBusError as exc:
        return fail(str(exc), 1)


async def _put(configs: Any, bus_name: str | None, entries: list[dict[str, Any]], timeout: float) -> int:
    from eventbus.config import Runtime

    delivered: dict[str, list[str]] = defaultdict(list)

    def observe(delivery: Delivered) -> None:
        for event_id in delivery.context.event_ids:
            delivered[event_id].append(delivery.address)

    # Pipes stay off: their sources live outside this short-lived process.
    runtime = Runtime(configs, observe=observe, pipes=False)
    bus = runtime.bus(bus_name)
    response: dict[str, Any] = {"FailedEntryCount": 0, "Entries": []}
    async with runtime:
        step = bus.config.max_entries_per_put
        with _progress(len(entries)) as advance:
            for start in range(0, len(entries), step):
                part = await bus.put_events(entries[start : start + step])
                response["FailedEntryCount"] += part["FailedEntryCount"]
                response["Entries"] += part["Entries"]
                advance(len(part["Entries"]))
        idle = await runtime.wait_idle(timeout)
    print(json.dumps(response, indent=2))
    rows = []
    for result in response["Entries"]:
        event_id = result.get("EventId")
        if event_id is None:
            rows.append(["-", f"failed: {result.get('ErrorCode')}: {result.get('ErrorMessage', '')}"])
            continue
        rows += [[event_id, address] for address in delivered.get(event_id, [])] or [
            [event_id, "(no target)"]
        ]
    print_table("Where each event went", ["event", "target"], rows)
    if not idle:
        print(f"not every event was delivered within {timeout:g} s", file=sys.stderr)
        return 1
    return 1 if response["FailedEntryCount"] else 0


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal and there is more than one batch."""
    if total <= 10 or not sys.stderr.isatty():
        yield lambda count: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("putting events", total=total)
        yield lambda count: progress.advance(task, count)
