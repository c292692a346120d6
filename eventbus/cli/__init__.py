"""The ``eventbus`` command line.

Each sub-command lives in a module of its own that exposes ``register(subparsers)``; ``main``
wires them together. Bad input is answered on stderr with one clear line and exit status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from eventbus.cli import (
    _archive,
    _config,
    _dlq,
    _graph,
    _patterns,
    _put,
    _run,
    _serve,
    _status,
    _test,
    _transform,
)

__all__ = ["main"]

_COMMANDS = (_patterns, _transform, _config, _graph, _put, _test, _run, _serve, _status, _archive, _dlq)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eventbus",
        description="Amazon EventBridge's event model for any application: patterns, buses, pipes, targets.",
    )
    from eventbus import __version__

    parser.add_argument("--version", action="version", version=f"eventbus {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
