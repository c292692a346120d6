"""The log target: one ``logging`` record a payload, at a chosen level (see docs/logging.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from eventbus._logger import get_logger
from eventbus.targets._common import parse_payload
from eventbus.targets.base import DeliveryContext, TargetConfig

__all__ = ["LogTarget", "LogTargetConfig"]

LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class LogTarget:
    """Logs each payload (parsed) with the delivery's name, target id, attempt and attributes."""

    max_batch_size: int = 10_000

    def __init__(self, *, level: LogLevel = "info", logger: str = "eventbus.targets.log", message: str = "event") -> None:
        if level not in ("debug", "info", "warning", "error", "critical"):
            raise ValueError(f"level must be one of debug, info, warning, error, critical; not {level!r}")
        self.level = level
        self.logger_name = logger
        self.message = message
        self._log = get_logger(logger)

    def __repr__(self) -> str:
        return f"LogTarget({self.logger_name!r}, level={self.level!r})"

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> None:
        emit = getattr(self._log, self.level)
        for index, payload in enumerate(payloads):
            fields: dict[str, Any] = {"payload": parse_payload(payload), "delivery": context.kind}
            if context.name:
                fields["name"] = context.name
            if context.target_id:
                fields["target_id"] = context.target_id
            if index < len(context.event_ids):
                fields["event_id"] = context.event_ids[index]
            if context.attempt != 1:
                fields["attempt"] = context.attempt
            if context.attributes:
                fields["attributes"] = dict(context.attributes)
            emit(self.message, **fields)

    async def aclose(self) -> None:
        return None


class LogTargetConfig(TargetConfig):
    kind: ClassVar[str] = "log"

    level: LogLevel = "info"
    logger: str = Field(default="eventbus.targets.log", min_length=1)
    message: str = "event"

    def build(self) -> LogTarget:
        return LogTarget(level=self.level, logger=self.logger, message=self.message)
