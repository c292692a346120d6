"""The sandbox: an event against a pattern, an event through an input transformer.

The same code the bus runs (``Pattern``, ``TargetInput``), so a verdict here is the bus's verdict,
and an error is the library's, in AWS's words where AWS has them (``eventbus test-pattern`` and
``eventbus test-transform`` answer the same).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from eventbus.errors import InvalidEventError, PatternError, TransformError
from eventbus.patterns import Pattern
from eventbus.transform import TargetInput

__all__ = ["PatternVerdict", "TransformVerdict", "check_pattern", "check_transform"]

RULE_NAME = "console-sandbox"
RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/console-sandbox"


@dataclass(frozen=True, slots=True)
class PatternVerdict:
    #: ``True``/``False``; ``None`` when the pattern or the event is not valid (``error`` says why).
    matched: bool | None
    error: str | None = None
    #: Which input the error is about: ``pattern`` or ``event``.
    error_in: str | None = None
    #: On a miss, one line per condition that failed (``Pattern.explain``).
    explanation: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TransformVerdict:
    output: str | None
    error: str | None = None
    error_in: str | None = None


def check_pattern(event_text: str, pattern_text: str) -> PatternVerdict:
    """Does the event match the pattern, and if not, why."""
    try:
        pattern = Pattern(pattern_text)
    except PatternError as exc:
        return PatternVerdict(None, str(exc), "pattern")
    try:
        explanation = pattern.explain(event_text)
    except InvalidEventError as exc:
        return PatternVerdict(None, str(exc), "event")
    return PatternVerdict(not explanation, explanation=explanation)


def check_transform(event_text: str, transformer_text: str) -> TransformVerdict:
    """What a target with this input transformer is sent for the event."""
    event = _object(event_text)
    if isinstance(event, str):
        return TransformVerdict(None, f"The event {event}", "event")
    transformer = _object(transformer_text)
    if isinstance(transformer, str):
        return TransformVerdict(None, f"The input transformer {transformer}", "transformer")
    try:
        target_input = TargetInput("console-sandbox", input_transformer=transformer)
    except ValueError as exc:
        return TransformVerdict(None, str(exc), "transformer")
    try:
        return TransformVerdict(target_input.render(event, rule_name=RULE_NAME, rule_arn=RULE_ARN))
    except TransformError as exc:
        return TransformVerdict(None, str(exc), "render")


def _object(text: str) -> dict[str, Any] | str:
    """The JSON object ``text`` holds, or what is wrong with it."""
    try:
        value = json.loads(text)
    except RecursionError:
        return "is nested too deeply to parse."
    except ValueError as exc:
        return f"is not valid JSON: {exc}"
    if not isinstance(value, dict):
        return "must be a JSON object."
    return value
