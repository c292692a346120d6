"""The file source: one record a row of CSV or JSON Lines files, with an optional progress bar.

Records look like stream records: ``eventID`` (``<file>:<line>``), ``eventSource``,
``eventSourceARN``, and the row in ``data`` as JSON text (a CSV row becomes an object of its
columns; a JSON Lines row is passed as written, and a line that is not JSON is matched and
delivered as a plain string). Rows are read in a worker thread, a chunk at a time, into a bounded
buffer, so a slow pipe slows the reading down and memory stays flat however big the file.

With ``progress`` on, reading shows a rich progress bar on a terminal and plain lines
(``rows.csv: 40% (4,000 rows)``) anywhere else. Left unset, it follows ``progress_default``:
off in a library, and what ``eventbus run`` says when run from the command line (on when its
stderr is a terminal, or as ``--progress``/``--no-progress`` ask).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import deque
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, TextIO

import anyio
from anyio.abc import TaskGroup
from pydantic import Field, field_validator

from eventbus._logger import get_logger
from eventbus.bus.logs.places import Places
from eventbus.errors import ConfigError
from eventbus.pipes.records import SourceRecord
from eventbus.pipes.sources.base import BufferedSource, SourceConfig

__all__ = ["FileFormat", "FileSource", "FileSourceConfig", "file_format", "file_record", "file_source_arn"]

FileFormat = Literal["auto", "csv", "jsonl"]

_log = get_logger("eventbus.pipes.sources.files")

#: Rows read per trip to the worker thread.
_CHUNK = 500
_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines")


def file_format(path: Path, format: FileFormat) -> Literal["csv", "jsonl"]:
    """How ``path`` is read: as configured, or by its extension; ``ConfigError`` when unsure."""
    if format != "auto":
        return format
    if path.suffix.lower() in _JSONL_SUFFIXES:
        return "jsonl"
    if path.suffix.lower() in (".csv", ".tsv"):
        return "csv"
    raise ConfigError(f"Cannot tell the format of {path.name!r}: set format to 'csv' or 'jsonl'")


class _Reader:
    """Reads one file's rows, counting the bytes consumed for the progress display."""

    def __init__(self, path: Path, fmt: Literal["csv", "jsonl"], delimiter: str, encoding: str) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.consumed = 0
        self._raw = path.open("rb")
        self._lines = self._decoded(encoding)
        self._rows: Iterator[tuple[int, str]] = self._csv(delimiter) if fmt == "csv" else self._jsonl()

    def _decoded(self, encoding: str) -> Iterator[str]:
        for raw in self._raw:
            self.consumed += len(raw)
            yield raw.decode(encoding, "replace")

    def _jsonl(self) -> Iterator[tuple[int, str]]:
        for number, line in enumerate(self._lines, 1):
            text = line.rstrip("\r\n")
            if text.strip():
                yield number, text

    def _csv(self, delimiter: str) -> Iterator[tuple[int, str]]:
        reader = csv.reader(self._lines, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return
        header = [h.lstrip("\ufeff") if i == 0 else h for i, h in enumerate(header)]
        for row in reader:
            if not row:
                continue
            fields = dict(zip(header, row, strict=False))
            if len(row) > len(header):
                fields["_extra"] = row[len(header) :]  # type: ignore[assignment]
            yield reader.line_num, json.dumps(fields, ensure_ascii=False)

    def read(self, limit: int) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        for row in self._rows:
            out.append(row)
            if len(out) >= limit:
                break
        return out

    def close(self) -> None:
        self._raw.close()


class _Progress:
    """A rich bar on a terminal, a plain line every tenth of the way anywhere else."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console

        self.console = Console(file=stream or _stderr(), highlight=False)
        self.fancy = self.console.is_terminal
        self._bar: Any = None
        self._task: Any = None
        self._next_tenth = 1

    def begin(self, name: str, total: int) -> None:
        self._next_tenth = 1
        if self.fancy:
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rows]:,} rows"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(name, total=max(total, 1), rows=0)
        else:
            self.console.print(f"{name}: reading ({total:,} bytes)")

    def update(self, name: str, done: int, total: int, rows: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done, rows=rows)
            return
        while total and done * 10 >= self._next_tenth * total and self._next_tenth <= 10:
            self.console.print(f"{name}: {self._next_tenth * 10}% ({rows:,} rows)")
            self._next_tenth += 1

    def end(self, name: str, rows: int) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        else:
            self.console.print(f"{name}: done ({rows:,} rows)")


#: Whether file sources whose ``progress`` is unset show it. A context variable rather than a
#: global, so a command line can turn it on for what it runs without touching other callers.
progress_default: ContextVar[bool] = ContextVar("eventbus_file_progress", default=False)


def _stderr() -> TextIO:
    import sys

    return sys.stderr


class FileSource(BufferedSource):
    """Reads the rows of ``paths`` in order; ``finished`` once every row is settled."""

    def __init__(
        self,
        paths: str | os.PathLike[str] | list[str | os.PathLike[str]],
        *,
        format: FileFormat = "auto",
        delimiter: str = ",",
        encoding: str = "utf-8",
        progress: bool | None = None,
        progress_stream: TextIO | None = None,
        capacity: int = 1000,
    ) -> None:
        listed = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
        if not listed:
            raise ConfigError("a file source needs at least one file")
        self.paths = [Path(p).resolve() for p in listed]
        for path in self.paths:
            if not path.is_file():
                raise ConfigError(f"The file {str(path)!r} does not exist or is not a file")
        super().__init__(arn=file_source_arn(self.paths), capacity=capacity)
        self.format = format
        for path in self.paths:
            self._format_of(path)  # an unknown extension fails now, not half-way through reading
        self.delimiter = delimiter
        self.encoding = encoding
        self.progress = progress_default.get() if progress is None else progress
        self._progress_stream = progress_stream
        #: Rows read from disk so far (read, not necessarily delivered).
        self.rows_read = 0
        self._file_index = 0
        self._file_rows = 0
        self._reader: _Reader | None = None
        self._carry: deque[tuple[int, str]] = deque()
        self._progress: _Progress | None = None
        # Where reading stands for a restart (``keep_place``): every row up to ``_at`` (file
        # index, line) is settled, and so are the rows in ``_settled`` after it.
        self._places: Places | None = None
        self._place_loaded = False
        self._at: tuple[int, int] = (-1, 0)
        self._settled: set[tuple[int, int]] = set()
        self._unsettled: deque[tuple[int, int]] = deque()
        self._index_of = {f"arn:eventbus:file:::{path}": i for i, path in enumerate(self.paths)}

    def __repr__(self) -> str:
        return f"FileSource({[p.name for p in self.paths]!r})"

    def keep_place(self, places: Places) -> None:
        """Keep where reading stands in ``places``: a new process starts after the last row
        settled (delivered, filtered out or dead-lettered), and repeats none settled after it."""
        self._places = places

    async def open(self, task_group: TaskGroup) -> None:
        await super().open(task_group)
        if self._places is not None and not self._place_loaded:
            self._place_loaded = True
            self._resume(await self._places.load())
        if not self._producer_done:
            task_group.start_soon(self._read_all)

    def _resume(self, saved: dict[str, str]) -> None:
        text = saved.get("place")
        if text is None:
            return
        place = json.loads(text)
        if place.get("paths") != [str(p) for p in self.paths]:
            _log.warning("the saved place is for other files: reading from the start", files=place.get("paths"))
            return
        index, line = place["at"]
        self._at = (int(index), int(line))
        self._settled = {(int(i), int(n)) for i, n in place.get("settled", [])}
        if self._at[0] > self._file_index:
            self._file_index = self._at[0]

    def _skipped(self, index: int, line: int) -> bool:
        return (index, line) <= self._at or (index, line) in self._settled

    async def ack(self, records: Sequence[SourceRecord]) -> None:
        await super().ack(records)
        if self._places is None:
            return
        for record in records:
            index = self._index_of.get(str(record.record.get("eventSourceARN")))
            line = record.record.get("lineNumber")
            if index is not None and isinstance(line, int):
                self._settled.add((index, line))
        unsettled = self._unsettled
        while unsettled and unsettled[0] in self._settled:
            self._at = unsettled.popleft()
            self._settled.discard(self._at)
        place = {
            "paths": [str(p) for p in self.paths],
            "at": list(self._at),
            "settled": sorted([i, n] for i, n in self._settled if (i, n) > self._at),
        }
        await self._places.save({"place": json.dumps(place)})

    def _format_of(self, path: Path) -> Literal["csv", "jsonl"]:
        return file_format(path, self.format)

    async def _read_all(self) -> None:
        try:
            await self._read_files()
        except (OSError, csv.Error) as exc:
            # Rows read so far still go through the pipe; the rest of this source is lost.
            _log.error(
                "reading failed", file=str(self.paths[self._file_index]), error=f"{type(exc).__name__}: {exc}"
            )
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            self.producer_done()

    async def _read_files(self) -> None:
        # Where reading stands lives on the object, so a stopped and restarted pipe carries on
        # from the row it was at: a cancelled ``put`` leaves its row first in ``_carry``.
        if self.progress and self._progress is None:
            self._progress = _Progress(self._progress_stream)
        while self._file_index < len(self.paths):
            path = self.paths[self._file_index]
            if self._reader is None:
                delimiter = (
                    "\t" if path.suffix.lower() == ".tsv" and self.delimiter == "," else self.delimiter
                )
                self._reader = await anyio.to_thread.run_sync(
                    _Reader, path, self._format_of(path), delimiter, self.encoding
                )
                self._file_rows = 0
                if self._progress is not None:
                    self._progress.begin(path.name, self._reader.size)
            reader = self._reader
            while True:
                if not self._carry:
                    # Shielded: a chunk read by a thread whose caller was cancelled would be lost.
                    with anyio.CancelScope(shield=True):
                        self._carry = deque(await anyio.to_thread.run_sync(reader.read, _CHUNK))
                    if not self._carry:
                        break
                now = datetime.now(UTC)
                index = self._file_index
                while self._carry:
                    line, data = self._carry[0]
                    if self._places is not None and self._skipped(index, line):
                        self._carry.popleft()  # settled by an earlier run
                        continue
                    await self.put(file_record(path, line, data, now))
                    if self._places is not None:
                        self._unsettled.append((index, line))
                    self._carry.popleft()
                    self._file_rows += 1
                    self.rows_read += 1
                if self._progress is not None:
                    self._progress.update(path.name, reader.consumed, reader.size, self._file_rows)
            reader.close()
            self._reader = None
            self._file_index += 1
            if self._progress is not None:
                self._progress.end(path.name, self._file_rows)
        self.producer_done()


def file_source_arn(paths: Sequence[Path]) -> str:
    """The source's ARN, from its resolved ``paths``: the file's name, or their folder's."""
    name = paths[0].name if len(paths) == 1 else paths[0].parent.name or "files"
    return f"arn:eventbus:file:::{name}"


def file_record(path: Path, line: int, data: str, received: datetime) -> SourceRecord:
    """Row ``data`` at ``line`` of the resolved ``path`` as a stream record."""
    event_id = f"{path.name}:{line}"
    record = {
        "eventID": event_id,
        "eventSource": "eventbus:file",
        "eventSourceARN": f"arn:eventbus:file:::{path}",
        "fileName": path.name,
        "lineNumber": line,
        "data": data,
    }
    return SourceRecord(record=record, record_id=event_id, ingestion_time=received)


class FileSourceConfig(SourceConfig):
    """``path``: one file or a list of them; ``format``: ``auto`` (by extension), ``csv`` or ``jsonl``."""

    kind: ClassVar[str] = "file"

    path: str | list[str]
    format: FileFormat = "auto"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"
    #: Unset: on when run by ``eventbus run`` with stderr on a terminal (``progress_default``).
    progress: bool | None = None
    capacity: int = Field(default=1000, ge=1)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        try:
            io.TextIOWrapper(io.BytesIO(), encoding=encoding)
        except LookupError:
            raise ValueError(f"unknown encoding {encoding!r}") from None
        return encoding

    def build(self) -> FileSource:
        paths: list[str | os.PathLike[str]] = [self.path] if isinstance(self.path, str) else list(self.path)
        return FileSource(
            paths,
            format=self.format,
            delimiter=self.delimiter,
            encoding=self.encoding,
            progress=self.progress,
            capacity=self.capacity,
        )
