"""Rules and their targets as the bus API takes and lists them.

Both are frozen pydantic models with AWS's names as aliases (``Name``, ``EventPattern``,
``Targets``, ``Id``, ``InputTransformer``, ``RetryPolicy``...), so a rule can come from Python code
or a config file alike. The bus validates patterns and schedules itself (``put_rule``) so that
their AWS messages reach the caller unwrapped.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from eventbus.bus.delivery.retry import RetryPolicy
from eventbus.errors import BusValidationError
from eventbus.targets.base import Target
from eventbus.targets.function import FunctionTarget
from eventbus.transform import TargetInput

__all__ = ["Rule", "RuleState", "RuleTarget", "check_rule_name", "rule_arn"]

RuleState = Literal["ENABLED", "DISABLED"]

_NAME_RE = re.compile(r"[\.\-_A-Za-z0-9]+")


def check_rule_name(name: object) -> str:
    """AWS's constraint on rule names, with AWS's ValidationException wording."""
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or not _NAME_RE.fullmatch(name):
        raise BusValidationError(
            f"1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+ "
            "and have length between 1 and 64"
        )
    return name


def rule_arn(region: str, account: str, bus: str, rule: str) -> str:
    """``arn:aws:events:<region>:<account>:rule/[<bus>/]<rule>``: the default bus has no segment."""
    path = rule if bus == "default" else f"{bus}/{rule}"
    return f"arn:aws:events:{region}:{account}:rule/{path}"


class RuleTarget(BaseModel):
    """One target of a rule: where to deliver, in which form, how hard to retry, where to give up.

    ``target`` (and ``dead_letter``) is a ``Target``, or a plain function (sync or async), which
    is wrapped in a ``FunctionTarget``.

    ``input``, ``input_path`` and ``input_transformer`` are EventBridge's target input (at most
    one; none delivers the whole event). ``max_concurrency`` and ``queue_size`` override the bus's
    per-target defaults.
    """

    model_config = ConfigDict(
        arbitrary_types_allowed=True, frozen=True, extra="forbid", populate_by_name=True
    )

    id: str = Field(alias="Id", min_length=1, max_length=64, pattern=r"^[\.\-_A-Za-z0-9]+$")
    target: Target = Field(alias="Target")
    arn: str | None = Field(default=None, alias="Arn")
    input: str | None = Field(default=None, alias="Input")
    input_path: str | None = Field(default=None, alias="InputPath")
    input_transformer: dict[str, Any] | None = Field(default=None, alias="InputTransformer")
    retry_policy: RetryPolicy = Field(default_factory=RetryPolicy, alias="RetryPolicy")
    dead_letter: Target | None = Field(default=None, alias="DeadLetterTarget")
    max_concurrency: int | None = Field(default=None, ge=1)
    queue_size: int | None = Field(default=None, ge=1)

    _target_input: TargetInput | None = PrivateAttr(default=None)

    @field_validator("target", "dead_letter", mode="before")
    @classmethod
    def _is_target(cls, value: object) -> object:
        if value is None or isinstance(value, Target):
            return value
        if callable(value) and not isinstance(value, type):
            # A plain function is what people reach for first: make it the function target
            # ``@bus.rule`` would have made (invoked with the event, or the transformed input).
            return FunctionTarget(value)
        raise ValueError(
            f"{type(value).__name__} is not a Target (it needs max_batch_size, deliver and aclose); "
            "pass a target such as FunctionTarget(func), RecordingTarget() or HttpTarget.create(url), "
            "or a plain function, which becomes a FunctionTarget"
        )

    def model_post_init(self, context: Any, /) -> None:
        # TargetInput raises ValueError with AWS's PutTargets message; build it once, here.
        if self.input is not None or self.input_path is not None or self.input_transformer is not None:
            self._target_input = TargetInput(
                target_id=self.id,
                input=self.input,
                input_path=self.input_path,
                input_transformer=self.input_transformer,
            )

    @property
    def target_input(self) -> TargetInput | None:
        """The compiled input; ``None`` delivers the whole event."""
        return self._target_input


class Rule(BaseModel):
    """A rule as ``list_rules``/``describe_rule`` report it (a snapshot; change it through the bus)."""

    model_config = ConfigDict(
        arbitrary_types_allowed=True, frozen=True, extra="forbid", populate_by_name=True
    )

    name: str = Field(alias="Name")
    arn: str = Field(default="", alias="Arn")
    event_bus_name: str = Field(default="default", alias="EventBusName")
    event_pattern: dict[str, Any] | None = Field(default=None, alias="EventPattern")
    schedule_expression: str | None = Field(default=None, alias="ScheduleExpression")
    state: RuleState = Field(default="ENABLED", alias="State")
    description: str | None = Field(default=None, alias="Description", max_length=512)
    targets: tuple[RuleTarget, ...] = Field(default=(), alias="Targets")

    @property
    def enabled(self) -> bool:
        return self.state == "ENABLED"
