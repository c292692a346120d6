"""The file target: appends JSON Lines to a file, with optional fsync and size-based rotation.

Rotation works like logging's RotatingFileHandler: ``events.jsonl`` becomes ``events.jsonl.1``,
``.1`` becomes ``.2`` and so on, keeping ``backups`` old files. A batch is never split across
two files.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, ClassVar, Literal

import anyio
from pydantic import Field

from eventbus import json_strict
from eventbus.errors import RetryableError, TargetPermissionError
from eventbus.targets._common import parse_payload
from eventbus.targets.base import DeliveryContext, TargetConfig

__all__ = ["FileTarget", "FileTargetConfig"]

LineFormat = Literal["payload", "record"]


class FileTarget:
    """``format="payload"`` writes each payload as a line; ``"record"`` wraps it with its context."""

    max_batch_size: int = 10_000

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = False,
        max_bytes: int | None = None,
        backups: int = 5,
        format: LineFormat = "payload",
    ) -> None:
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        if backups < 0:
            raise ValueError("backups must not be negative")
        self.path = Path(path)
        self.fsync = fsync
        self.max_bytes = max_bytes
        self.backups = backups
        self.format = format
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileTarget({str(self.path)!r})"

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> None:
        data = "".join(self._line(i, p, context) for i, p in enumerate(payloads)).encode()
        try:
            await anyio.to_thread.run_sync(self._write, data)
        except PermissionError as exc:
            raise TargetPermissionError(f"Cannot write {self.path}: {exc.strerror}") from None
        except OSError as exc:
            raise RetryableError(f"Cannot write {self.path}: {exc.strerror or exc}") from None

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._close)

    def _line(self, index: int, payload: str, context: DeliveryContext) -> str:
        value: Any = parse_payload(payload)
        if self.format == "record":
            value = {
                "kind": context.kind,
                "name": context.name,
                "target_id": context.target_id,
                "attempt": context.attempt,
                "event_id": context.event_ids[index] if index < len(context.event_ids) else None,
                "attributes": dict(context.attributes),
                "payload": value,
            }
        # Re-encoded so that a pretty-printed payload still takes exactly one line (and a lone
        # surrogate a dead letter carries escaped stays escaped, so the line can be written).
        return json_strict.dumps_writable(value) + "\n"

    def _write(self, data: bytes) -> None:
        with self._lock:
            handle = self._open()
            if self.max_bytes is not None and handle.tell() > 0 and handle.tell() + len(data) > self.max_bytes:
                self._rotate()
                handle = self._open()
            handle.write(data)
            handle.flush()
            if self.fsync:
                os.fsync(handle.fileno())

    def _open(self) -> IO[bytes]:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 - kept open across deliveries
        return self._file

    def _rotate(self) -> None:
        self._close_file()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        oldest = self.path.with_name(f"{self.path.name}.{self.backups}")
        oldest.unlink(missing_ok=True)
        for n in range(self.backups - 1, 0, -1):
            source = self.path.with_name(f"{self.path.name}.{n}")
            if source.exists():
                source.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _close(self) -> None:
        with self._lock:
            self._close_file()


class FileTargetConfig(TargetConfig):
    kind: ClassVar[str] = "file"

    path: str = Field(min_length=1)
    fsync: bool = False
    max_bytes: int | None = Field(default=None, ge=1)
    backups: int = Field(default=5, ge=0)
    format: LineFormat = "payload"

    def build(self) -> FileTarget:
        return FileTarget(
            self.path, fsync=self.fsync, max_bytes=self.max_bytes, backups=self.backups, format=self.format
        )
