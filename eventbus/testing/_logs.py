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

    def emit(self, record: logging.LogRecord) -> None:
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
        # Every logger: eventbus's too, which an application may have quietened.
        touched.append(logging.getLogger("eventbus"))
    saved = [(each, each.level) for each in touched]
    for each in touched:
        each.setLevel(level)
    touched[0].addHandler(capture)
    try:
        yield capture.entries
    finally:
        touched[0].removeHandler(capture)
        for each, old in saved:
            each.setLevel(old)
