"""``capture_logs``: the log events eventbus writes while a block runs, as plain dicts."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["capture_logs"]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.entries: list[dict[str, Any]] = []
        self._seen: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        # Listening on two loggers, a record that propagates from one to the other comes twice.
        if id(record) in self._seen:
            return
        self._seen.add(id(record))
        fields = dict(record.msg) if isinstance(record.msg, dict) else {"event": record.getMessage()}
        fields["log_level"] = record.levelname.lower()
        fields["logger"] = record.name
        self.entries.append(fields)


@contextmanager
def capture_logs(level: int | str = logging.DEBUG, logger: str = "") -> Iterator[list[dict[str, Any]]]:
    """Collect the log records of ``logger`` (default: every logger) at ``level`` and above.

    Each record becomes a dict: the event's fields (``event``, ``rule``, ``event_id``...) plus
    ``log_level`` (``"warning"``) and ``logger`` (``"eventbus.delivery"``), the shape of
    ``structlog.testing.capture_logs``. Levels are set for the block and restored after it.
    """
    capture = _Capture()
    touched = [logging.getLogger(logger)]
    if not logger:
        # Every logger: eventbus's too, listened to directly, as an application may have
        # quietened it or stopped it propagating to the root logger.
        touched.append(logging.getLogger("eventbus"))
    saved = [(each, each.level) for each in touched]
    for each in touched:
        each.setLevel(level)
        each.addHandler(capture)
    try:
        yield capture.entries
    finally:
        for each, old in saved:
            each.removeHandler(capture)
            each.setLevel(old)
