"""Which state file a command works on: ``--state PATH``, or the one a config keeps its buses in."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from eventbus.cli._io import ArgumentError

__all__ = ["add_state_arguments", "state_path"]


def add_state_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--state", metavar="PATH", help="the SQLite state file")
    where.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help="the config whose state file to use (its runtime.backend, else .eventbus/NAME.db beside it)",
    )


def state_path(args: Any) -> Path:
    """The state file the arguments name; ``ArgumentError`` for a config kept in memory."""
    if args.state:
        return Path(args.state)
    from eventbus.config import load_config
    from eventbus.config.backends import MemoryBackend, SqliteBackend

    config = load_config(args.config, import_functions=False)
    backend = config.model.runtime.backend
    if isinstance(backend, MemoryBackend):
        raise ArgumentError(
            f"{args.config} keeps its buses in memory (runtime.backend: memory): nothing outlives its "
            "process; use a SQLite backend, or the Python API inside the process"
        )
    if backend is None:
        backend = SqliteBackend()
    if not isinstance(backend, SqliteBackend):
        kind = getattr(backend, "type", type(backend).__name__)
        raise ArgumentError(f"{args.config}: runtime.backend {kind!r} has no state file to read")
    return backend.state_path(config.file)
