"""``eventbus archive list|describe`` and ``eventbus replay start|describe|list|cancel``.

They work on a state file (``--state PATH``, or ``-c CONFIG`` for the one its buses keep their
state in), from outside the process that serves the buses: archives are read from it; a replay
is asked for by writing it there and waking that process (``eventbus run``), which runs it and
writes its progress back, which ``replay start`` follows with a progress bar on a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from eventbus.cli._console import is_terminal, print_table, say
from eventbus.cli._io import ArgumentError, fail
from eventbus.cli._state import add_state_arguments, state_path
from eventbus.errors import EventBusError

__all__ = ["register"]

#: How often a followed replay's progress is read from the file (a display, not a delivery path).
_REFRESH = 0.2


def register(subparsers: Any) -> None:
    archive = subparsers.add_parser(
        "archive", help="archives in a state file", description="List and describe the archives of a state file."
    )
    archive_commands = archive.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = archive_commands.add_parser("list", help="every archive (table on a terminal, lines when piped)")
    add_state_arguments(listing)
    listing.add_argument("--bus", help="only this bus's archives")
    listing.add_argument("--prefix", help="only archives whose name starts so")
    listing.set_defaults(handler=archive_list)
    describe = archive_commands.add_parser("describe", help="one archive, as DescribeArchive answers (JSON)")
    describe.add_argument("name")
    add_state_arguments(describe)
    describe.set_defaults(handler=archive_describe)

    replay = subparsers.add_parser(
        "replay",
        help="replays of archived events",
        description="Start, follow, describe and cancel replays of a state file's archives.",
    )
    replay_commands = replay.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = replay_commands.add_parser(
        "start",
        help="replay an archive's events whose time is in a window into its bus",
        description=(
            "Asks the process serving the archive's bus (eventbus run) to put the archived events whose "
            "time is in [--from, --to] back on the bus, in time order, each with replay-name; follows its "
            "progress until it ends (a progress bar on a terminal). Exit status 1 unless it COMPLETED."
        ),
    )
    start.add_argument("name")
    start.add_argument("--archive", required=True)
    start.add_argument("--from", dest="start", required=True, metavar="TIME", help="e.g. 2026-03-01T12:00:00Z")
    start.add_argument("--to", dest="end", required=True, metavar="TIME")
    start.add_argument("--rule", action="append", default=[], help="only to this rule (repeat for several)")
    start.add_argument("--description")
    start.add_argument("--no-wait", action="store_true", help="return once the replay is asked for")
    start.add_argument("--timeout", type=float, default=3600.0, help="seconds to follow it at most (default 3600)")
    add_state_arguments(start)
    start.set_defaults(handler=replay_start)
    for action, handler, text in (
        ("describe", replay_describe, "one replay, as DescribeReplay answers (JSON)"),
        ("cancel", replay_cancel, "cancel a replay that has not ended"),
    ):
        sub = replay_commands.add_parser(action, help=text)
        sub.add_argument("name")
        add_state_arguments(sub)
        sub.set_defaults(handler=handler)
    listing = replay_commands.add_parser("list", help="every replay (table on a terminal, lines when piped)")
    add_state_arguments(listing)
    listing.set_defaults(handler=replay_list)


def _state(args: argparse.Namespace) -> Any:
    from eventbus.bus.logs.sqlite.state_file import StateFile

    return StateFile(state_path(args))


def _guarded(run: Any) -> Any:
    def handler(args: argparse.Namespace) -> int:
        from eventbus.config import ConfigErrors

        try:
            code: int = run(args)
        except ArgumentError as exc:
            return fail(str(exc))
        except ConfigErrors as exc:
            from eventbus.cli._console import print_problems

            print_problems(exc)
            return 1
        except EventBusError as exc:
            return fail(str(exc), 1)
        return code

    return handler


@_guarded
def archive_list(args: argparse.Namespace) -> int:
    archives = [
        a
        for a in _state(args).archives()
        if (args.bus is None or a.bus == args.bus) and (args.prefix is None or a.name.startswith(args.prefix))
    ]
    rows = [
        [a.name, a.bus, a.state, str(a.event_count), str(a.size_bytes), str(a.retention_days or "forever"), a.event_pattern or "(every event)"]
        for a in archives
    ]
    print_table("Archives", ["name", "bus", "state", "events", "bytes", "retention days", "pattern"], rows)
    return 0


@_guarded
def archive_describe(args: argparse.Namespace) -> int:
    from eventbus.bus.logs.sqlite.state_file import describe

    print(json.dumps(describe(_state(args).archive(args.name)), indent=2))
    return 0


@_guarded
def replay_list(args: argparse.Namespace) -> int:
    rows = [
        [r.name, r.archive, r.bus, r.state, f"{r.replayed}/{r.total if r.total is not None else '?'}", _time(r.last_replayed)]
        for r in _state(args).replays()
    ]
    print_table("Replays", ["name", "archive", "bus", "state", "replayed", "last replayed"], rows)
    return 0


@_guarded
def replay_describe(args: argparse.Namespace) -> int:
    from eventbus.bus.logs.sqlite.state_file import describe

    print(json.dumps(describe(_state(args).replay(args.name)), indent=2))
    return 0


@_guarded
def replay_cancel(args: argparse.Namespace) -> int:
    state = _state(args)
    replay = state.cancel_replay(args.name)
    if replay.state == "CANCELLED":
        say(f"replay {replay.name} cancelled (no process serves bus {replay.bus}: it had not started)")
        return 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        replay = state.replay(args.name)
        if replay.finished:
            say(f"replay {replay.name} {replay.state.lower()} after {replay.replayed} event(s)")
            return 0
        time.sleep(_REFRESH)
    say(f"replay {replay.name} is {replay.state}: the process serving bus {replay.bus} has not stopped it yet")
    return 1


@_guarded
def replay_start(args: argparse.Namespace) -> int:
    from eventbus.envelope import parse_time

    try:
        start, end = parse_time(args.start), parse_time(args.end)
    except ValueError as exc:
        raise ArgumentError(f"--from/--to: {exc} (write times as 2026-03-01T12:00:00Z)") from None
    state = _state(args)
    replay = state.start_replay(args.name, args.archive, start, end, rules=args.rule, description=args.description)
    say(f"replay {replay.name} of archive {replay.archive} into bus {replay.bus}: {replay.total} event(s) in the window")
    if args.no_wait:
        return 0
    if not state.served(replay.bus):
        say(f"no process serves bus {replay.bus} from {state.path} now: the replay starts when one does (eventbus run)")
        return 0
    return _follow(state, replay.name, args.timeout)


def _follow(state: Any, name: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    replay = state.replay(name)
    if is_terminal() or sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[state]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        ) as progress:
            task = progress.add_task(f"replay {name}", total=replay.total or None, state=replay.state)
            while not replay.finished and time.monotonic() < deadline:
                time.sleep(_REFRESH)
                replay = state.replay(name)
                progress.update(task, completed=replay.replayed, state=replay.state)
    else:
        shown = -1
        while not replay.finished and time.monotonic() < deadline:
            time.sleep(_REFRESH)
            replay = state.replay(name)
            tenth = (replay.replayed * 10 // replay.total) if replay.total else 0
            if tenth > shown:
                shown = tenth
                say(f"replay {name}: {replay.state} {replay.replayed}/{replay.total}")
    if not replay.finished:
        say(f"replay {name} is still {replay.state} ({replay.replayed}/{replay.total}); eventbus replay describe {name} follows it")
        return 1
    say(
        f"replay {name} {replay.state}: {replay.replayed} event(s) replayed"
        + (f", the last from {_time(replay.last_replayed)}" if replay.last_replayed else "")
        + (f" ({replay.state_reason})" if replay.state_reason else "")
    )
    return 0 if replay.state == "COMPLETED" else 1


def _time(moment: Any) -> str:
    return "-" if moment is None else moment.isoformat().replace("+00:00", "Z")
