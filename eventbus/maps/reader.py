"""Reading a map's rows: CSV or JSON Lines files, a chunk at a time, with line numbers.

``RowReader.read(limit)`` runs in a worker thread and returns the next rows as ``Row`` objects.
A CSV file's first row is its header (or the header is given); every other row becomes an object
of its columns, all strings. A JSON Lines line is parsed strictly (no ``NaN``, no ``1e999``, no
lone surrogate: what no target could deliver). A row that cannot be read is not an error of the
map: it comes out as a malformed row (``Row.error`` says why, with the line it starts on) and the
reading goes on with the next line. Malformed means: not valid CSV (a stray quote, an unclosed
one at the end of the file), another number of fields than the header has, a line that is not
text in the file's encoding, or a JSON Lines line that is not JSON.

The reader counts the bytes it has consumed, for the progress display and for ``Row.end``: the
offset just after a row, from which reading can resume (``start``).
"""

from __future__ import annotations

import csv
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Literal

import anyio
import anyio.from_thread

from eventbus import json_strict
from eventbus.errors import ConfigError
from eventbus.maps.rows import Position, Row
from eventbus.pipes.sources.files import FileFormat, file_format

__all__ = ["MAX_ROW_TEXT", "ReadAhead", "RowReader"]

#: Longest raw text a malformed row carries (to its dead letter and its result): an unclosed
#: quote can swallow the rest of a file into one "row".
MAX_ROW_TEXT = 256 * 1024
#: Bytes read from the disk at a time.
READ_BUFFER = 4 << 20


class _File:
    """One open file: its lines, counted, and the bytes consumed."""

    def __init__(self, path: Path, encoding: str, start: int) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.encoding = encoding
        # A large buffer: each read from the disk releases the GIL, and a busy event loop can
        # keep it for a switch interval (5 ms) before this thread gets it back.
        self.handle: IO[bytes] = path.open("rb", buffering=READ_BUFFER)
        #: The number of the last line read (resuming at ``start``, the lines before it).
        self.line = _count_lines(self.handle, start) if start else 0
        self.consumed = start
        #: The first line since ``mark()`` that is not text in the encoding, if any.
        self.bad_line = 0
        self.bom = start == 0 and encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig")

    def lines(self) -> Iterator[str]:
        encoding = self.encoding
        for data in self.handle:
            self.line += 1
            self.consumed += len(data)
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError:
                if not self.bad_line:
                    self.bad_line = self.line
                text = data.decode(encoding, "replace")
            if self.bom:
                self.bom = False
                text = text.removeprefix("\ufeff")
            yield text

    def text_between(self, start: int, end: int) -> str:
        """The raw text of bytes ``start`` to ``end`` (a malformed row), cut to ``MAX_ROW_TEXT``."""
        data = os.pread(self.handle.fileno(), min(end - start, MAX_ROW_TEXT), start)
        return data.decode(self.encoding, "replace").rstrip("\r\n")

    def close(self) -> None:
        self.handle.close()


class RowReader:
    """The rows of ``paths``, in order; ``read`` is meant for a worker thread (one at a time)."""

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        format: FileFormat = "auto",
        delimiter: str = ",",
        encoding: str = "utf-8",
        header: Sequence[str] | None = None,
        max_items: int | None = None,
        start: Position | None = None,
    ) -> None:
        self.paths = list(paths)
        self.formats = [file_format(p, format) for p in self.paths]
        self.delimiter = delimiter
        self.encoding = encoding
        self.header = list(header) if header is not None else None
        self.max_items = max_items
        start = start or Position()
        self._index = start.file
        self._start = start
        #: Rows handed out so far (the whole map's, malformed included).
        self.rows = start.rows
        #: Bytes of all files, and consumed so far (the progress display's measure).
        self.size = sum(p.stat().st_size for p in self.paths)
        #: Bytes of the files before the one being read.
        self._before = sum(p.stat().st_size for p in self.paths[: start.file])
        self._file: _File | None = None
        self._rows: Iterator[Row] | None = None
        self._read_at: datetime | None = None
        self.done = False

    # -- reading -----------------------------------------------------------------------------

    def read(self, limit: int, read_at: datetime) -> list[Row]:
        """Up to ``limit`` rows; ``[]`` once every file is read (or ``max_items`` reached)."""
        out: list[Row] = []
        self._read_at = read_at
        while len(out) < limit and not self.done:
            if self.max_items is not None and self.rows >= self.max_items:
                self._finish()
                break
            if self._rows is None:
                if self._index >= len(self.paths):
                    self._finish()
                    break
                self._open()
            assert self._rows is not None
            want = limit - len(out)
            if self.max_items is not None:
                want = min(want, self.max_items - self.rows)
            for row in self._rows:
                out.append(row)
                self.rows += 1
                want -= 1
                if want <= 0:
                    break
            else:
                self._next_file()
        return out

    @property
    def consumed(self) -> int:
        """Bytes read so far, of all the files."""
        if self.done:
            return self.size
        return self._before + (self._file.consumed if self._file is not None else 0)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._rows = None

    @property
    def file_name(self) -> str:
        """The name of the file being read (the last one once all are read)."""
        return self.paths[min(self._index, len(self.paths) - 1)].name

    def _finish(self) -> None:
        self.close()
        self.done = True

    def _next_file(self) -> None:
        assert self._file is not None
        self._before += self._file.size
        self._file.close()
        self._file = None
        self._rows = None
        self._index += 1

    def _open(self) -> None:
        path = self.paths[self._index]
        resume = self._start if self._start.file == self._index and self._start.offset else None
        self._file = _File(path, self.encoding, resume.offset if resume else 0)
        fmt: Literal["csv", "jsonl"] = self.formats[self._index]
        self._rows = self._csv(self._file, path, resume is not None) if fmt == "csv" else self._jsonl(self._file)

    # -- the formats -------------------------------------------------------------------------

    def _jsonl(self, file: _File) -> Iterator[Row]:
        index = self._index
        loads = json_strict.loads
        for text in file.lines():
            line = file.line
            text = text.rstrip("\r\n")
            if not text.strip():
                continue
            bad = file.bad_line
            if bad:
                file.bad_line = 0
                yield self._malformed(file, line, text, f"line {line} is not valid {self.encoding} text")
                continue
            try:
                value = loads(text)
            except (ValueError, RecursionError) as exc:
                yield self._malformed(file, line, text, f"not JSON: {_first_line(exc)}")
                continue
            yield Row(self.rows, index, line, value, text, self._when(), file.consumed)

    def _csv(self, file: _File, path: Path, resumed: bool) -> Iterator[Row]:
        index = self._index
        delimiter = "\t" if path.suffix.lower() == ".tsv" and self.delimiter == "," else self.delimiter
        header = self.header
        if header is None:
            header = self._read_header(path, delimiter, file if not resumed else None)
            if header is None:
                return
        width = len(header)
        reader = csv.reader(file.lines(), delimiter=delimiter, strict=True)
        while True:
            start_offset = file.consumed
            start_line = file.line + 1
            file.bad_line = 0
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield self._malformed_span(file, start_line, start_offset, f"not valid CSV: {exc}")
                continue
            if not fields:
                continue  # a blank line
            if file.bad_line:
                reason = f"line {file.bad_line} is not valid {self.encoding} text"
                yield self._malformed_span(file, start_line, start_offset, reason)
            elif len(fields) != width:
                reason = f"{len(fields)} fields where the header has {width}"
                yield self._malformed_span(file, start_line, start_offset, reason)
            else:
                yield Row(self.rows, index, start_line, dict(zip(header, fields, strict=True)), None, self._when(), file.consumed)

    def _read_header(self, path: Path, delimiter: str, file: _File | None) -> list[str] | None:
        """The first row of ``path``: from ``file`` (which then reads on after it), or from a
        separate read when resuming in the middle of the file."""
        own = file is None
        source = file if file is not None else _File(path, self.encoding, 0)
        try:
            try:
                header = next(csv.reader(source.lines(), delimiter=delimiter, strict=True), None)
            except csv.Error as exc:
                raise ConfigError(f"The header of {path.name} (line 1) is not valid CSV: {exc}") from None
        finally:
            if own:
                source.close()
        if header is None:
            return None
        if source.bad_line:
            raise ConfigError(f"The header of {path.name} (line 1) is not valid {self.encoding} text")
        seen: set[str] = set()
        for name in header:
            if name in seen:
                raise ConfigError(
                    f"The header of {path.name} (line 1) names the column {name!r} twice; a row becomes an "
                    "object of its columns, so each needs a name of its own (or give header: [...])"
                )
            seen.add(name)
        return header

    def _when(self) -> datetime:
        assert self._read_at is not None
        return self._read_at

    def _malformed(self, file: _File, line: int, text: str, reason: str) -> Row:
        return Row(self.rows, self._index, line, None, text[:MAX_ROW_TEXT], self._when(), file.consumed, reason)

    def _malformed_span(self, file: _File, line: int, start: int, reason: str) -> Row:
        text = file.text_between(start, file.consumed)
        return Row(self.rows, self._index, line, None, text, self._when(), file.consumed, reason)


def _count_lines(handle: IO[bytes], end: int) -> int:
    """Lines before byte ``end`` (a line start), leaving ``handle`` there."""
    lines = 0
    left = end
    while left > 0:
        chunk = handle.read(min(left, 1 << 20))
        if not chunk:
            break
        lines += chunk.count(b"\n")
        left -= len(chunk)
    return lines


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class ReadAhead:
    """Reads chunks of rows in a worker thread of its own, up to ``depth`` chunks ahead.

    Awaiting each chunk from a fresh ``to_thread`` call costs a round trip through the event
    loop per chunk, and with thousands of rows running an iteration of the loop takes tens of
    milliseconds: the workers would wait for rows. Here the thread reads on while the loop is
    busy, and only hands finished chunks over. ``run`` is the thread's side (started with
    ``anyio.to_thread.run_sync``); ``next`` and ``done_with_one`` are the event loop's.
    """

    def __init__(self, reader: RowReader, chunk: int, now: Callable[[], datetime], depth: int = 2) -> None:
        self.reader = reader
        self.chunk = chunk
        self._now = now
        self._slots = threading.Semaphore(depth)
        self._chunks: deque[list[Row]] = deque()
        self._arrived: anyio.Event | None = None
        self._stopped = False
        #: What stopped the reading, if it failed (raised from ``next``).
        self.error: BaseException | None = None

    def run(self) -> None:
        """Read chunks until the files end, reading fails, or ``stop`` is called (a thread)."""
        try:
            while True:
                self._slots.acquire()
                if self._stopped:
                    return
                try:
                    rows = self.reader.read(self.chunk, self._now())
                except BaseException as exc:
                    self.error = exc
                    rows = []
                self._chunks.append(rows)
                anyio.from_thread.run_sync(self._wake)
                if not rows:
                    return
        finally:
            self.reader.close()

    async def next(self) -> list[Row]:
        """The next chunk; ``[]`` at the end. Raises what made reading fail."""
        while not self._chunks:
            self._arrived = anyio.Event()
            await self._arrived.wait()
        rows = self._chunks.popleft()
        if not rows and self.error is not None:
            raise self.error
        return rows

    def done_with_one(self) -> None:
        """A chunk was taken in: the thread may read another."""
        self._slots.release()

    def stop(self) -> None:
        """Read no further (the thread ends after the chunk it is reading, if any)."""
        self._stopped = True
        self._slots.release()

    def _wake(self) -> None:
        if self._arrived is not None:
            self._arrived.set()
