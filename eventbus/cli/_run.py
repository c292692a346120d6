"""``eventbus run``: run every bus, rule, schedule and pipe of config files until SIGINT or SIGTERM.

On a signal the buses stop taking events and drain what they accepted (each up to its
``drain_timeout``). With ``--watch`` a changed file is loaded again; a valid one replaces the
running config, an invalid one is reported and the running config stays. A reload holds new
events back while the old buses drain and the new ones start, so nothing accepted is dropped and
nothing is put on a bus that is going away. With ``--stdin`` the process also reads events
(JSON Lines: events or PutEvents entries, ``EventBusName`` choosing the bus) from its stdin.
"""

from __future__ import annotations

import argparse
from typing import Any

from eventbus.cli._console import logs_to_stderr, print_problems, say


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="run the buses, schedules and pipes of config files",
        description=(
            "Runs every bus, rule, schedule and pipe the files declare until SIGINT or SIGTERM, then drains "
            "gracefully. Exit status 1 when a file is invalid at start."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--watch", "-w", action="store_true", help="reload files when they change")
    parser.add_argument(
        "--stdin", action="store_true", help="read events (JSON Lines) from stdin and put them on the buses"
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show how far file sources have read (default: when stderr is a terminal)",
    )
    parser.add_argument("--bus", "-b", help="the bus for stdin events that name none (default: the only bus)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import sys

    import anyio

    from eventbus.cli._server import Server
    from eventbus.config import ConfigErrors, load_configs
    from eventbus.pipes.sources.files import progress_default

    logs_to_stderr()
    # File sources whose config leaves ``progress`` unset follow the command line.
    progress_default.set(sys.stderr.isatty() if args.progress is None else args.progress)
    try:
        server = Server(args.files, load_configs(args.files), args.bus)
    except ConfigErrors as exc:
        print_problems(exc)
        return 1
    try:
        anyio.run(server.serve, args.watch, args.stdin)
    except Exception as exc:
        # Whatever stops the buses from starting (a source that cannot open, a port in use)
        # ends the command with its reason, not a traceback.
        say(f"cannot run: {type(exc).__name__}: {exc}")
        return 1
    return 0
