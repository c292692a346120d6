"""``eventbus dlq list QUEUE`` and ``eventbus dlq redrive QUEUE``: a SQLite dead-letter queue's
letters, and sending each back to the one rule target it failed for.

``list`` prints a table on a terminal and one JSON object a line when piped. ``redrive`` puts each
dead letter in its bus's inbox in the state file (``--state`` or ``-c CONFIG``), where the process
serving the bus takes it at once (it is woken) or at its next start, and removes it from the
queue once it is there. With ``-c``, a letter whose rule target the config no longer has stays.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from eventbus.cli._console import is_terminal, print_table, say
from eventbus.cli._io import ArgumentError, fail
from eventbus.cli._state import state_path
from eventbus.errors import EventBusError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    dlq = subparsers.add_parser(
        "dlq",
        help="dead letters in a SQLite queue: list them, send them back",
        description="Dead letters a SQLite queue holds (queue: {type: sqlite, path: ...} as a dead-letter target).",
    )
    actions = dlq.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the dead letters (a table on a terminal, JSON Lines when piped)")
    listing.add_argument("queue", metavar="QUEUE", help="the SQLite queue file")
    _filters(listing)
    listing.set_defaults(handler=_guarded(dlq_list))
    redrive = actions.add_parser(
        "redrive",
        help="send each dead letter back to the one rule target it failed for",
        description=(
            "Puts each dead letter back on its bus for the one rule target it failed for (not for every "
            "rule), in the bus's state file: the process serving the bus delivers it now, or at its next "
            "start. Each is removed from the queue once it is there. Exit status 1 if any stays."
        ),
    )
    redrive.add_argument("queue", metavar="QUEUE", help="the SQLite queue file")
    _filters(redrive)
    where = redrive.add_mutually_exclusive_group(required=True)
    where.add_argument("--state", metavar="PATH", help="the state file of the buses")
    where.add_argument(
        "--config", "-c", metavar="FILE", help="the config whose state file to use (its rule targets are checked)"
    )
    redrive.set_defaults(handler=_guarded(dlq_redrive))


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bus", help="only dead letters of this bus")
    parser.add_argument("--rule", help="only dead letters of this rule")
    parser.add_argument("--target", help="only dead letters of this target id")
    parser.add_argument("--limit", type=int, help="at most this many")


def _guarded(run: Any) -> Any:
    def handler(args: argparse.Namespace) -> int:
        import anyio

        from eventbus.config import ConfigErrors

        try:
            code: int = anyio.run(run, args)
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


def _queue(args: argparse.Namespace) -> Any:
    from eventbus.bus.dead_letters import DeadLetterQueue

    if args.limit is not None and args.limit < 1:
        raise ArgumentError("--limit must be at least 1")
    return DeadLetterQueue(args.queue)


async def dlq_list(args: argparse.Namespace) -> int:
    dead = _queue(args)
    try:
        letters = await dead.list(bus=args.bus, rule=args.rule, target=args.target, limit=args.limit)
    finally:
        await dead.aclose()
    if not is_terminal():
        for letter in letters:
            sys.stdout.write(json.dumps(letter.to_dict(), ensure_ascii=False) + "\n")
        return 0
    rows = [
        [
            letter.sent.strftime("%Y-%m-%d %H:%M:%S"),
            str(letter.event.get("id", "")),
            letter.address,
            letter.error_code,
            (letter.condition or "no retry") + f", {letter.retry_attempts} retries",
            letter.error_message[:120],
        ]
        for letter in letters
    ]
    print_table(f"Dead letters in {args.queue}", ["sent", "event", "bus/rule/target", "error", "ended by", "reason"], rows)
    return 0


async def dlq_redrive(args: argparse.Namespace) -> int:
    from eventbus.bus.logs.sqlite.state_file import StateFile

    state = StateFile(state_path(args))
    known = _rule_targets(args.config) if args.config else None

    def destination(bus: str) -> Any:
        inbox = state.bus(bus)
        if known is None:
            return inbox
        checked: set[tuple[str, str, str]] = known

        class Checked:
            name = bus

            async def redeliver(self, event: Any, *, rule: str, target: str) -> None:
                if (bus, rule, target) not in checked:
                    raise LookupError(f"{args.config} has no target {target} on rule {rule} of bus {bus}")
                await inbox.redeliver(event, rule=rule, target=target)

        return Checked()

    dead = _queue(args)
    try:
        report = await dead.redrive(destination, bus=args.bus, rule=args.rule, target=args.target, limit=args.limit)
    finally:
        await dead.aclose()
    for letter, why in report.left:
        say(f"{letter.event.get('id', '?')} ({letter.address}) stays: {why}")
    buses = sorted({letter.bus for letter in report.redriven})
    served = [b for b in buses if state.served(b)]
    waiting = [b for b in buses if b not in served]
    say(
        f"redriven {len(report.redriven)} dead letter(s)"
        + (f"; {len(report.left)} stay in {args.queue}" if report.left else "")
        + (f"; bus(es) {', '.join(waiting)} take them at their next start" if waiting else "")
    )
    return 1 if report.left else 0


def _rule_targets(config_file: str) -> set[tuple[str, str, str]]:
    from eventbus.config import load_config
    from eventbus.config.validate import target_id

    model = load_config(config_file, import_functions=False).model
    out = set()
    for bus_name, bus in model.buses.items():
        for rule_name, rule in bus.rules.items():
            for index, entry in enumerate(rule.targets):
                out.add((bus_name, rule_name, target_id(entry, index, rule.targets)))
    return out
