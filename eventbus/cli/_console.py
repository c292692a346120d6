"""Output for the config commands: rich tables on a terminal, plain tab-separated lines otherwise.

Scripts and pipes get stable plain text; people get tables. Problems always go to stderr, one a
line, so ``2>`` captures exactly what is wrong.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

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
    """Send structlog's lines (the library's logs, the log target) to stderr: stdout is for results."""
    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def say(message: str) -> None:
    """A status line of a long-running command, on stderr."""
    print(f"eventbus: {message}", file=sys.stderr, flush=True)
