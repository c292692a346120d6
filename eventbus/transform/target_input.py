"""What a rule's target receives: the event, a constant ``Input``, an ``InputPath`` or an
``InputTransformer``, validated as PutTargets validates them and rendered as EventBridge does."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eventbus.errors import TransformError
from eventbus.transform.paths import MISSING, CompiledPath, compile_path
from eventbus.transform.template import MAX_TEMPLATE, CompiledTemplate, is_valid_json, to_json, utc_now_text

__all__ = ["InputTransformer", "TargetInput"]

MAX_INPUT: Final = 8192
MAX_INPUT_PATH: Final = 256
MAX_VARIABLES: Final = 100
MAX_KEY: Final = 256
MAX_PATH_VALUE: Final = 256

RULE_ARN: Final = "aws.events.rule-arn"
RULE_NAME: Final = "aws.events.rule-name"
INGESTION_TIME: Final = "aws.events.event.ingestion-time"
EVENT: Final = "aws.events.event"
EVENT_JSON: Final = "aws.events.event.json"
PREDEFINED: Final = frozenset({RULE_ARN, RULE_NAME, INGESTION_TIME, EVENT, EVENT_JSON})

_KEY = re.compile(r"[A-Za-z0-9_\-]+\Z")

# ``<aws.events.event>`` is the envelope without ``detail``, its keys as AWS was recorded
# writing them: ``detail-type`` becomes ``detailType``, in this order.
_ENVELOPE_KEYS: Final = (
    ("id", "id"),
    ("account", "account"),
    ("detail-type", "detailType"),
    ("time", "time"),
    ("source", "source"),
    ("region", "region"),
    ("resources", "resources"),
    ("version", "version"),
)


class InputTransformer(BaseModel):
    """``InputPathsMap`` (variable -> JSONPath) and ``InputTemplate``, by name or by AWS's alias."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    input_paths_map: dict[str, str] = Field(default_factory=dict, alias="InputPathsMap")
    input_template: str = Field(alias="InputTemplate")


def _envelope(event: Mapping[str, Any]) -> dict[str, Any]:
    return {alias: event[key] for key, alias in _ENVELOPE_KEYS if key in event}


def _pydantic_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "InputTransformer"
    return f"{where}: {first['msg']}"


class TargetInput:
    """The input of one rule target. At most one of ``input``, ``input_path`` and
    ``input_transformer``; none means the whole event.

    Construction validates as PutTargets does and raises ``ValueError`` with AWS's message where
    AWS has one; ``render`` runs per delivery and raises only ``TransformError``.
    """

    __slots__ = (
        "_path",
        "_paths",
        "_template",
        "input",
        "input_path",
        "input_transformer",
        "target_id",
        "uses_ingestion_time",
    )

    def __init__(
        self,
        target_id: str,
        *,
        input: str | None = None,
        input_path: str | None = None,
        input_transformer: Mapping[str, Any] | InputTransformer | None = None,
    ) -> None:
        self.target_id = target_id
        given = sum(x is not None for x in (input, input_path, input_transformer))
        if given > 1:
            raise ValueError(
                f"Only one of Input, InputPath, or InputTransformer must be provided for target {target_id}."
            )
        self.input = input
        self.input_path = input_path
        self.input_transformer: InputTransformer | None = None
        self._path: CompiledPath | None = None
        self._paths: dict[str, CompiledPath] = {}
        self._template: CompiledTemplate | None = None
        #: Whether ``render`` reads ``ingestion_time``: the bus formats it only then (per event).
        self.uses_ingestion_time = False
        if input is not None:
            self._check_input(input)
        if input_path is not None:
            self._path = self._compile_input_path(input_path)
        if input_transformer is not None:
            self._compile_transformer(input_transformer)

    @classmethod
    def from_target(cls, target: Mapping[str, Any]) -> TargetInput:
        """From a PutTargets-shaped target (``Id``, ``Input``, ``InputPath``, ``InputTransformer``)."""
        return cls(
            str(target.get("Id", "")),
            input=target.get("Input"),
            input_path=target.get("InputPath"),
            input_transformer=target.get("InputTransformer"),
        )

    # -- validation -------------------------------------------------------------------------

    def _check_input(self, text: str) -> None:
        if len(text) > MAX_INPUT:
            raise ValueError(
                f"Input for target {self.target_id} must have length less than or equal to {MAX_INPUT}."
            )
        if not is_valid_json(text):
            # The text itself stays out of the message: constant inputs often carry credentials.
            raise ValueError(f"Input for target {self.target_id} is not valid JSON text.")

    def _compile_input_path(self, text: str) -> CompiledPath:
        if len(text) > MAX_INPUT_PATH:
            raise ValueError(
                f"InputPath for target {self.target_id} must have length less than or equal to {MAX_INPUT_PATH}."
            )
        try:
            return compile_path(text)
        except ValueError:
            raise ValueError(
                f"InputPath for target {self.target_id} is not a valid JSONPath: {text}"
            ) from None

    def _compile_transformer(self, spec: Mapping[str, Any] | InputTransformer) -> None:
        tid = self.target_id
        if isinstance(spec, InputTransformer):
            model = spec
        else:
            try:
                model = InputTransformer.model_validate(spec)
            except ValidationError as exc:
                raise ValueError(
                    f"InputTransformer for target {tid} is not valid: {_pydantic_problem(exc)}"
                ) from None
        paths_map = model.input_paths_map
        if len(paths_map) > MAX_VARIABLES:
            raise ValueError(
                f"InputPathsMap for target {tid} has {len(paths_map)} variables; at most {MAX_VARIABLES} are allowed."
            )
        for key, path in paths_map.items():
            if key.upper().startswith("AWS."):
                raise ValueError(
                    f"InputPathsMap for target {tid}: variable {key} is reserved (names cannot start with AWS.)."
                )
            if not _KEY.match(key) or len(key) > MAX_KEY:
                raise ValueError(
                    f"InputPathsMap for target {tid}: variable name {key!r} must be 1 to {MAX_KEY} characters "
                    r"matching [A-Za-z0-9\_\-]+."
                )
            if len(path) > MAX_PATH_VALUE:
                raise ValueError(
                    f"InputPathsMap for target {tid}: the path of {key} must have length less than or equal to "
                    f"{MAX_PATH_VALUE}."
                )
            try:
                self._paths[key] = compile_path(path)
            except ValueError:
                raise ValueError(
                    f"InputPathsMap for target {tid}: the path of {key} is not a valid JSONPath: {path}"
                ) from None
        template = model.input_template
        if not template:
            raise ValueError(f"InputTemplate for target {tid} must have length greater than or equal to 1.")
        if len(template) > MAX_TEMPLATE:
            raise ValueError(
                f"InputTemplate for target {tid} must have length less than or equal to {MAX_TEMPLATE}."
            )
        compiled = CompiledTemplate(template, label=f"target {tid}")
        for name in compiled.names:
            if name not in paths_map and name not in PREDEFINED:
                raise ValueError(f"InputTemplate for target {tid} contains invalid placeholder {name}.")
        self.input_transformer = model
        self._template = compiled
        self.uses_ingestion_time = INGESTION_TIME in compiled.names

    # -- delivery ---------------------------------------------------------------------------

    def render(
        self,
        event: Mapping[str, Any],
        *,
        rule_name: str,
        rule_arn: str,
        ingestion_time: str | None = None,
    ) -> str:
        """The payload text AWS delivers for ``event``; ``TransformError`` when it delivers nothing.

        ``ingestion_time`` is when the bus received the event; left out, the event's ``time``
        stands in (they are equal unless PutEvents set ``Time``).
        """
        if self._template is not None:
            return self._template.render(self._values(event, rule_name, rule_arn, ingestion_time))
        if self.input is not None:
            return self.input
        try:
            if self._path is not None:
                value = self._path.extract(event)
                if value is MISSING:
                    raise TransformError(
                        f"InputPath {self._path.text} of target {self.target_id} matches nothing in the event."
                    )
                return to_json(value)
            return to_json(event)
        except (TypeError, ValueError, RecursionError) as exc:
            raise TransformError(f"The event for target {self.target_id} is not JSON ({exc}).") from None

    def _values(
        self, event: Mapping[str, Any], rule_name: str, rule_arn: str, ingestion_time: str | None
    ) -> dict[str, Any]:
        assert self._template is not None
        values: dict[str, Any] = {}
        for name in self._template.names:
            path = self._paths.get(name)
            if path is not None:
                values[name] = path.extract(event)
            elif name == RULE_ARN:
                values[name] = rule_arn
            elif name == RULE_NAME:
                values[name] = rule_name
            elif name == INGESTION_TIME:
                if ingestion_time is None:
                    time = event.get("time")
                    ingestion_time = time if isinstance(time, str) else utc_now_text()
                values[name] = ingestion_time
            elif name == EVENT:
                values[name] = _envelope(event)
            elif name == EVENT_JSON:
                values[name] = event
        return values

    def __repr__(self) -> str:
        # Constant inputs and templates may carry credentials: name the form, never the content.
        if self._template is not None:
            form = "input_transformer"
        elif self.input is not None:
            form = "input"
        elif self.input_path is not None:
            form = f"input_path={self.input_path!r}"
        else:
            form = "whole event"
        return f"TargetInput({self.target_id!r}, {form})"
