"""A map's progress on the command line: a rich progress bar on a terminal, plain lines elsewhere.

The bar measures the bytes read of the files (the one total known before the end) and shows
the rows that ended, how many failed and the rate. Anywhere that is not a terminal (a log file,
CI) a line is printed each tenth of the way instead. The map updates it a few times a second
from a task of its own, never per row.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

__all__ = ["MapProgress"]


class MapProgress:
    def __init__(self, name: str, total_bytes: int, stream: TextIO | None = None) -> None:
        from rich.console import Console

        self.name = name
        self.total = max(total_bytes, 1)
        self.console = Console(file=stream or sys.stderr, highlight=False)
        self.fancy = self.console.is_terminal
        self._bar: Any = None
        self._task: Any = None
        self._next_tenth = 1

    def begin(self) -> None:
        if self.fancy:
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("map {task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[ended]:,} rows, {task.fields[failed]:,} failed, {task.fields[rate]:,.0f} rows/s"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.name, total=self.total, ended=0, failed=0, rate=0.0)
        else:
            self.console.print(f"map {self.name}: started")

    def update(self, consumed: int, ended: int, failed: int, rate: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=consumed, ended=ended, failed=failed, rate=rate)
            return
        while consumed * 10 >= self._next_tenth * self.total and self._next_tenth <= 9:
            self.console.print(
                f"map {self.name}: {self._next_tenth * 10}% read ({ended:,} rows ended, {failed:,} failed)"
            )
            self._next_tenth += 1

    def end(self, consumed: int, ended: int, failed: int, rate: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=consumed, ended=ended, failed=failed, rate=rate)
            self._bar.stop()
            self._bar = None
        else:
            self.console.print(f"map {self.name}: {ended:,} rows ended, {failed:,} failed")
