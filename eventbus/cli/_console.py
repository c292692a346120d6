"""Output for the config commands: rich tables on a terminal, plain tab-separated lines otherwise.

Scripts and pipes get stable plain text; people get tables. Problems always go to stderr, one a
line, so ``2>`` captures exactly what is wrong.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventbus.config import ConfigErrors

__all__ = ["is_terminal", "logs_to_stderr", "print_problems", "print_table", "say"]


def is_terminal() -> bool:
    return sys.stdout.isatty()


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    rows = [list(row) for row in rows]
    if is_terminal():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    for row in rows:
        print("\t".join(row))


def print_problems(errors: ConfigErrors) -> None:
    for problem in errors.problems:
        print(str(problem), file=sys.stderr)


def logs_to_stderr() -> None:
    """Render the library's logs (and log targets') on stderr: stdout is for results.

    The library only writes ``logging`` records; a command is an application, so it may decide
    where they go. Every eventbus record is shown (a pipe at ``TRACE`` logs at DEBUG), other
    libraries' from WARNING up, drawn by structlog's console renderer (colours on a terminal).
    """
    import structlog

    from eventbus._logger import LogEvent

    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    # Ours at any level; others' INFO lines (httpx logs every request) would drown the output.
    handler.addFilter(lambda record: isinstance(record.msg, LogEvent) or record.levelno >= logging.WARNING)
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, _StderrHandler)]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("eventbus").setLevel(logging.DEBUG)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler on whatever ``sys.stderr`` is when a record comes (tests swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def say(message: str) -> None:
    """A status line of a long-running command, on stderr."""
    print(f"eventbus: {message}", file=sys.stderr, flush=True)
