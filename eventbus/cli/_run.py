"""``eventbus run``: run every bus, rule, schedule and pipe of config files until SIGINT or SIGTERM.

On a signal the buses stop taking events and drain what they accepted (each up to its
``drain_timeout``); a second signal stops at once. Either way, events left undelivered are
written to a file the last status line names, and the exit status is 1. With ``--watch`` a
changed file is loaded again: a valid one replaces the running config while the old buses go on
delivering what they accepted; anything else is reported and the running config stays. With
``--stdin`` the process also reads events (JSON Lines: events or PutEvents entries,
``EventBusName`` choosing the bus) from its stdin. Maps start with the run and each prints its
summary when it ends; a run of files that declare only maps ends when they have (exit status 1
unless every map succeeded). ``_runner.py`` has the details.
"""

from __future__ import annotations

import argparse
from typing import Any

from eventbus.cli._console import logs_to_stderr, print_problems, say


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="run the buses, schedules, pipes and maps of config files",
        description=(
            "Runs every bus, rule, schedule, pipe and map the files declare until SIGINT or SIGTERM, then "
            "drains gracefully; a second signal stops at once. Files that declare only maps run until the "
            "maps end. Exit status 1 when a file is invalid at start, when accepted events were left "
            "undelivered (they are written to a file), or when a map did not succeed."
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
        help="show how far file sources and maps have read (default: when stderr is a terminal)",
    )
    parser.add_argument("--bus", "-b", help="the bus for stdin events that name none (default: the only bus)")
    parser.add_argument(
        "--state",
        metavar="PATH",
        help=(
            "the SQLite file the buses keep their state in, whatever the files' runtime.backend says "
            "(default: the file's runtime.backend, else .eventbus/CONFIG-NAME.db beside each config)"
        ),
    )
    parser.add_argument(
        "--abandoned",
        metavar="FILE",
        help=(
            "where to write accepted events left undelivered at shutdown (default: "
            "eventbus-abandoned-DATE-TIME-PID.jsonl in the current folder)"
        ),
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import sys

    import anyio

    from eventbus.cli._io import exit_now
    from eventbus.cli._runner import Runner
    from eventbus.config import ConfigErrors
    from eventbus.pipes.sources.files import progress_default

    logs_to_stderr()
    # File sources whose config leaves ``progress`` unset follow the command line.
    progress_default.set(sys.stderr.isatty() if args.progress is None else args.progress)
    try:
        runner = Runner(args.files, args.bus, args.abandoned, state=args.state)
    except ConfigErrors as exc:
        print_problems(exc)
        return 1
    try:
        code: int = anyio.run(runner.serve, args.watch, args.stdin)
    except Exception as exc:
        # Whatever stops the buses from starting (a source that cannot open, a port in use)
        # ends the command with its reason, not a traceback.
        say(f"cannot run: {type(exc).__name__}: {exc}")
        return 1
    if runner.abandoned_any:
        # A function still running a cut-short delivery would otherwise finish it as the
        # interpreter waits for its thread, after the events were reported undelivered.
        exit_now(code)
    return code
