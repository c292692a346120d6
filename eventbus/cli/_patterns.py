"""``eventbus test-pattern``: does an event match a pattern, and if not, why."""

from __future__ import annotations

import argparse
from typing import Any

from eventbus.cli._io import ArgumentError, fail, read_text_argument
from eventbus.errors import InvalidEventError, PatternError
from eventbus.patterns import Pattern


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "test-pattern",
        help="test an event against an event pattern",
        description=(
            "Prints true or false. Exit status 0 on a match, 1 on no match, 2 for an invalid "
            "pattern or malformed JSON (AWS's message on stderr)."
        ),
    )
    parser.add_argument("--pattern", "-p", required=True, help="the pattern: JSON text, or @FILE")
    parser.add_argument("--event", "-e", required=True, help="the event: JSON text, or @FILE (@- for stdin)")
    parser.add_argument("--explain", action="store_true", help="on no match, print why")
    parser.add_argument(
        "--max-size", type=int, default=2048, help="pattern size limit in characters (default 2048, as AWS)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        pattern_text = read_text_argument(args.pattern, "pattern")
        event_text = read_text_argument(args.event, "event")
    except ArgumentError as exc:
        return fail(str(exc))
    try:
        pattern = Pattern(pattern_text, max_size=args.max_size)
    except PatternError as exc:
        return fail(str(exc))
    try:
        reasons = pattern.explain(event_text) if args.explain else None
        matched = (not reasons) if reasons is not None else pattern.matches(event_text)
    except InvalidEventError as exc:
        return fail(str(exc))
    print("true" if matched else "false")
    if not matched and reasons:
        for reason in reasons:
            print(f"  {reason}")
    return 0 if matched else 1
