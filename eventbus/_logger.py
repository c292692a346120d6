"""The library's logs: structured events written to the standard ``logging`` module.

A library must not decide where output goes, so eventbus configures nothing: each event is one
``logging`` record on the logger named after the module that logs it (``eventbus.delivery``,
``eventbus.bus``, ``eventbus.pipes``...). With no configuration Python prints records of level
WARNING and above to stderr (its last-resort handler) and drops the rest; never stdout.

``record.msg`` is a ``LogEvent``: a dict holding ``event`` (``"dead-lettered"``) and the fields
(``bus``, ``rule``, ``event_id``...). Its ``str()`` is one readable line, ``dead-lettered
bus=orders rule=big ...``, which is what a plain ``logging`` handler prints. The record also
carries the two attributes structlog's ``ProcessorFormatter`` looks for (those its
``wrap_for_formatter`` sets), so an application that renders its logs with structlog gets our
fields as its event dict, ready for a JSON renderer (see docs/logging.md).
"""

from __future__ import annotations

import json
import logging
from typing import Any

__all__ = ["EventLogger", "LogEvent", "get_logger"]

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/@+")


class LogEvent(dict[str, Any]):
    """One log event: ``event`` and its fields; ``str()`` renders ``event key=value ...``."""

    def __str__(self) -> str:
        parts = [str(self.get("event", ""))]
        parts += [f"{key}={_text(value)}" for key, value in self.items() if key != "event"]
        return " ".join(parts)


def _text(value: Any) -> str:
    # Plain words stay bare; anything with spaces, quotes or structure is written as JSON.
    if isinstance(value, str) and value and _SAFE.issuperset(value):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


class EventLogger:
    """``log.warning("dead-lettered", rule=..., event_id=...)`` onto one ``logging.Logger``."""

    __slots__ = ("logger",)

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)

    def __repr__(self) -> str:
        return f"EventLogger({self.logger.name!r})"

    def debug(self, event: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, "debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit(logging.INFO, "info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(logging.WARNING, "warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, "error", event, fields)

    def critical(self, event: str, **fields: Any) -> None:
        self._emit(logging.CRITICAL, "critical", event, fields)

    def _emit(self, level: int, method: str, event: str, fields: dict[str, Any]) -> None:
        logger = self.logger
        if not logger.isEnabledFor(level):
            return  # nothing is built for a record no one will see
        logger.log(
            level,
            LogEvent(event=event, **fields),
            # What structlog's ProcessorFormatter reads to treat the record as structured.
            extra={"_logger": logger, "_name": method},
            stacklevel=3,
        )


def get_logger(name: str) -> EventLogger:
    """The structured logger writing to ``logging.getLogger(name)``."""
    return EventLogger(name)
