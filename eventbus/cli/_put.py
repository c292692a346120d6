"""``eventbus put``: send events to a bus declared in config files, in this process.

The buses start, the events are put in batches as PutEvents takes them, the command waits until
every accepted event is delivered or has failed for good (or ``--timeout``, which bounds the whole
command), prints the PutEvents response and where each event went (read from the buses' outcome
streams), and stops the buses. A delivery that failed for good (retries spent, dead-lettered or
dropped) makes the exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventbus.cli._console import logs_to_stderr, print_problems, print_table
from eventbus.cli._io import ArgumentError, exit_now, fail, read_text_argument
from eventbus.errors import EventBusError, InvalidEventError

if TYPE_CHECKING:
    from eventbus.bus.outcomes import Outcome, OutcomeStream


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "put",
        help="send events to a bus from a config file",
        description=(
            "Starts the buses of the config files, sends the events (JSON objects, arrays or JSON Lines; "
            "PutEvents entries or events) from the arguments, @FILE arguments or stdin, waits for "
            "delivery and prints the PutEvents response and where each event went. Exit status 1 when "
            "an entry failed, a delivery failed or did not finish in time, or a config file is invalid; "
            "2 for bad input."
        ),
    )
    parser.add_argument("--config", "-c", action="append", required=True, metavar="FILE", help="config file")
    parser.add_argument("--bus", "-b", help="the bus to put to (needed when the config has several)")
    parser.add_argument("events", nargs="*", metavar="EVENT", help="JSON text or @FILE; none reads stdin")
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds the command may take to put and deliver (default 30)",
    )
    parser.add_argument(
        "--state",
        metavar="PATH",
        help=(
            "run the buses on this SQLite state file (default: in memory, whatever the config's "
            "runtime.backend says); refused while another process serves the same bus from it"
        ),
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
    outcome = _Outcome()
    try:
        code: int = anyio.run(_put, configs, args.bus, entries, args.timeout, outcome, args.state)
    except ConfigErrors as exc:
        print_problems(exc)
        return 1
    except EventBusError as exc:
        return fail(str(exc), 1)
    if outcome.cut_short:
        # ``--timeout`` bounds the whole command, a function still running included.
        exit_now(code)
    return code


class _Outcome:
    """What ``_put`` leaves for ``run``: whether deliveries were still under way at the deadline."""

    cut_short = False


async def _put(
    configs: Any,
    bus_name: str | None,
    entries: list[dict[str, Any]],
    timeout: float,
    outcome: _Outcome,
    state: str | None = None,
) -> int:
    import anyio

    from eventbus.config import Runtime
    from eventbus.config.backends import MemoryBackend, SqliteBackend

    deadline = anyio.current_time() + timeout
    # Pipes stay off: their sources live outside this short-lived process. In memory unless
    # --state names a file: a one-off put must not take over the state of a running config.
    backend = SqliteBackend(path=str(Path(state).resolve())) if state else MemoryBackend()
    runtime = Runtime(configs, pipes=False, maps=False, backend=backend)
    bus = runtime.bus(bus_name)
    # Every bus's outcomes: an event forwarded to another bus is delivered there too.
    streams = [b.outcomes() for b in runtime.buses.values()]
    #: The last outcome per event and target address: delivered, failed for good, or retrying.
    fates: dict[str, dict[str, Outcome]] = defaultdict(dict)

    async def read(stream: OutcomeStream) -> None:
        async for step in stream:  # ends once the bus has stopped
            fates[step.event_id][step.address] = step

    response: dict[str, Any] = {"FailedEntryCount": 0, "Entries": []}
    idle = False
    unsent = 0
    undelivered: set[str] = set()
    transform_failures = 0
    error: EventBusError | None = None
    async with anyio.create_task_group() as readers:
        for stream in streams:
            readers.start_soon(read, stream)
        try:
            async with runtime:
                step = bus.config.max_entries_per_put
                with _progress(len(entries)) as advance, anyio.move_on_after(timeout):
                    for start in range(0, len(entries), step):
                        part = await bus.put_events(entries[start : start + step])
                        response["FailedEntryCount"] += part["FailedEntryCount"]
                        response["Entries"] += part["Entries"]
                        advance(len(part["Entries"]))
                unsent = len(entries) - len(response["Entries"])
                idle = await runtime.wait_idle(max(0.0, deadline - anyio.current_time()))
                if not idle:
                    # The deadline is the command's, not the drain's: stop now.
                    runtime.shorten_drain(0)
                    outcome.cut_short = True
                undelivered = {event["id"] for _, event in runtime.pending_events()}
                transform_failures = sum(b.metrics()["bus"]["TransformFailures"] for b in runtime.buses.values())
        except EventBusError as exc:
            error = exc  # raised below, once the readers are done, not inside their group
        finally:
            # A bus that never started never ends its stream: end them all here.
            for stream in streams:
                stream.close()
    if error is not None:
        raise error
    print(json.dumps(response, indent=2))
    rows, lost = _rows(response["Entries"], fates, undelivered)
    print_table("Where each event went", ["event", "target"], rows)
    missed = sum(stream.lost for stream in streams)
    if missed:
        print(f"{missed} delivery outcome(s) came too fast to be shown", file=sys.stderr)
    if lost:
        print(f"{lost} delivery(ies) failed (see the table above)", file=sys.stderr)
    if transform_failures:
        # As AWS: a path that matches nothing delivers nothing. Worth a note, not a failure.
        print(f"{transform_failures} input transformation(s) gave nothing to deliver", file=sys.stderr)
    if unsent:
        print(f"{unsent} event(s) were not put within {timeout:g} s", file=sys.stderr)
    if not idle:
        print(f"not every event was delivered within {timeout:g} s", file=sys.stderr)
    return 1 if response["FailedEntryCount"] or lost or unsent or not idle else 0


def _rows(
    results: list[dict[str, Any]], fates: dict[str, dict[str, Outcome]], undelivered: set[str]
) -> tuple[list[list[str]], int]:
    """A row per (event, target): where it was delivered, or why not; and how many deliveries
    failed for good (retries spent: dropped, dead-lettered, or the dead letter failed too)."""
    rows: list[list[str]] = []
    lost = 0
    for result in results:
        event_id = result.get("EventId")
        if not isinstance(event_id, str):
            rows.append(["-", f"failed: {result.get('ErrorCode')}: {result.get('ErrorMessage', '')}"])
            continue
        event_rows = []
        for address, last in sorted(fates.get(event_id, {}).items()):
            why = f"{last.error_type}: {last.reason}" if last.error_type else (last.reason or "")
            if last.kind == "delivered":
                event_rows.append([event_id, address])
            elif last.kind == "dropped" and last.attempt == 0:
                # Nothing was attempted: the target input could not be rendered (AWS delivers nothing).
                event_rows.append([event_id, f"{address}: nothing to deliver ({last.reason})"])
            elif last.kind in ("dead-lettered", "dropped"):
                lost += 1
                after = " (sent to its dead letter)" if last.kind == "dead-lettered" else ""
                event_rows.append([event_id, f"{address}: failed: {why}{after}"])
            else:
                event_rows.append([event_id, f"{address}: not delivered yet (last attempt: {why})"])
        rows += event_rows or [[event_id, "(not delivered yet)" if event_id in undelivered else "(no target)"]]
    return rows, lost


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
