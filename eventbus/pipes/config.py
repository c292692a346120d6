"""``PipeConfig``: one pipe, declared in Python or in a config file.

The source, the enrichment, the target and the dead-letter destination are each written as one
key naming their kind, whose value is that kind's options (``{"queue": {"type": "sqlite", "path":
"jobs.db"}}``), or with a ``kind`` key beside the options (``{"kind": "queue", "type": "sqlite",
"path": "jobs.db"}``), resolved through the sources' and the targets' registries. Python code may pass a
config model (``QueueSourceConfig(...)``, ``FunctionTargetConfig(...)``) or a ready object (a
``MemoryQueue``-backed ``QueueSource``, a ``RecordingTarget``) instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from eventbus._plugins import describe_validation_error
from eventbus.bus.delivery.retry import Backoff, RetryRules
from eventbus.errors import ConfigError, PatternError
from eventbus.patterns import Pattern
from eventbus.pipes.sources import registry as source_registry
from eventbus.pipes.sources.base import DEFAULT_ACCOUNT, DEFAULT_REGION, SourceConfig
from eventbus.targets import registry as target_registry
from eventbus.targets.base import TargetConfig
from eventbus.transform import PipeTemplate

__all__ = ["LogLevel", "PipeConfig", "PipeRetryPolicy", "PipeState", "TargetRef", "target_spec"]

LogLevel = Literal["OFF", "ERROR", "INFO", "TRACE"]
PipeState = Literal["RUNNING", "STOPPED", "STARTING", "STOPPING", "START_FAILED"]

#: AWS's limit on a pipe's filter criteria.
MAX_FILTERS = 5


def _one_key(value: Mapping[str, Any], what: str) -> tuple[str, dict[str, Any]]:
    kind = value.get("kind")
    if isinstance(kind, str) and kind:
        # The other spelling, {kind: queue, name: jobs}: the rest are the kind's options.
        return kind, {key: item for key, item in value.items() if key != "kind"}
    if len(value) != 1:
        raise ValueError(
            f"{what} must be one key naming its kind with that kind's options as the value "
            f"(e.g. {{queue: {{name: jobs}}}}); got keys {sorted(map(str, value))}"
        )
    ((kind, options),) = value.items()
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise ValueError(
            f"the options of {what} kind {kind!r} must be a mapping, not {type(options).__name__}"
        )
    return str(kind), dict(options)


class TargetRef(BaseModel):
    """``{ref: NAME}``: the target a config file declares under ``targets:`` by that name.

    Only a config file can resolve it (the file's runtime builds the named target once for all
    its uses); a pipe built from Python is handed the target itself instead.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Read by the config layer, which tells a ``ref`` entry from a kind by this tag.
    _kind_tag: ClassVar[str] = "ref"

    ref: str = Field(min_length=1)


def _source_spec(value: Any) -> Any:
    if isinstance(value, SourceConfig):
        return value
    if isinstance(value, Mapping):
        kind, options = _one_key(value, "source")
        return source_registry.parse_source_config(kind, options)
    if all(hasattr(value, name) for name in ("receive", "ack", "release", "open", "close")):
        return value  # a ready Source object (Python only)
    raise ValueError(
        f"source must be {{kind: options}}, a SourceConfig or a Source, not {type(value).__name__}"
    )


def target_spec(what: str) -> Any:
    """The validator of a stage that takes a target (``what`` names the stage in messages):
    ``{kind: options}``, ``{ref: NAME}``, a ``TargetConfig`` or a ready ``Target``."""

    def check(value: Any) -> Any:
        if value is None or isinstance(value, TargetConfig | TargetRef):
            return value
        if isinstance(value, Mapping) and "ref" in value:
            if set(value) != {"ref"} or not isinstance(value["ref"], str) or not value["ref"]:
                raise ValueError(
                    f"{what} as a named target is {{ref: NAME}} alone (a target declared under the "
                    f"file's targets:), with NAME a non-empty string; got keys {sorted(map(str, value))}"
                )
            return TargetRef(ref=value["ref"])
        if isinstance(value, Mapping):
            kind, options = _one_key(value, what)
            cls = target_registry.config_class(kind)
            try:
                return cls.model_validate(options)
            except ValidationError as exc:
                raise ValueError(
                    f"invalid options for {what} kind {kind!r}: "
                    f"{describe_validation_error(exc)}"
                ) from None
        if hasattr(value, "deliver"):
            return value  # a ready Target object (Python only)
        raise ValueError(
            f"{what} must be {{kind: options}}, a TargetConfig or a Target, not {type(value).__name__}"
        )

    return check


SourceSpec = Annotated[Any, BeforeValidator(_source_spec)]
TargetSpec = Annotated[Any, BeforeValidator(target_spec("target"))]
EnrichmentSpec = Annotated[Any, BeforeValidator(target_spec("enrichment"))]
DeadLetterSpec = Annotated[Any, BeforeValidator(target_spec("dead_letter"))]


class PipeRetryPolicy(BaseModel):
    """How long a failing record is retried; whichever limit is reached first ends the retries.

    ``-1`` means no limit, as in Pipes. The defaults are EventBridge's for rule targets (185
    attempts, a day) rather than Pipes' stream defaults (both unlimited), so that a record that
    can never be delivered ends in the dead-letter destination instead of looping forever.
    """

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    maximum_retry_attempts: int = Field(185, ge=-1, le=10_000, alias="MaximumRetryAttempts")
    maximum_record_age_in_seconds: int = Field(86_400, ge=-1, le=604_800, alias="MaximumRecordAgeInSeconds")

    def rules(self, backoff: Backoff) -> RetryRules:
        """What the retry decision weighs for a pipe (``-1``: no limit)."""
        return RetryRules(
            max_retries=None if self.maximum_retry_attempts < 0 else self.maximum_retry_attempts,
            max_age=None if self.maximum_record_age_in_seconds < 0 else self.maximum_record_age_in_seconds,
            backoff=backoff,
            age_condition="MaximumRecordAgeInSeconds",
        )


class PipeConfig(BaseModel):
    """A pipe: source, filter, enrichment, target, batching, retries, dead letters and state."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    #: Config files name a pipe by its key; Python code names it here.
    name: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[\.\-_A-Za-z0-9]+$")
    description: str = Field(default="", max_length=512)
    desired_state: Literal["RUNNING", "STOPPED"] = "RUNNING"

    source: SourceSpec
    #: Up to 5 event patterns (objects or JSON text), OR'ed; none lets every record through.
    filter: list[dict[str, Any] | str] = Field(default_factory=list)
    enrichment: EnrichmentSpec = None
    enrichment_input_template: str | None = None
    target: TargetSpec
    target_input_template: str | None = None

    batch_size: int = Field(default=10, ge=1, le=10_000)
    maximum_batching_window_in_seconds: float = Field(default=0, ge=0, le=300)
    retry_policy: PipeRetryPolicy = Field(default_factory=PipeRetryPolicy)
    backoff: Backoff = Field(default_factory=lambda: Backoff(base=1.0, cap=60.0))
    dead_letter: DeadLetterSpec = None
    #: Batches in the enrichment and target stages at once; with the batch size, what bounds memory.
    max_concurrency: int = Field(default=1, ge=1, le=1_000)
    #: How long ``stop()`` lets batches in progress finish before it cancels them.
    stop_timeout: float = Field(default=30.0, gt=0)

    log_level: LogLevel = "ERROR"
    #: At TRACE, log payloads too (Pipes' ``IncludeExecutionData: ["ALL"]``).
    include_execution_data: bool = False

    account: str = Field(default=DEFAULT_ACCOUNT, pattern=r"^\d{12}$")
    region: str = Field(default=DEFAULT_REGION, min_length=1)

    @field_validator("filter")
    @classmethod
    def _check_filter(cls, patterns: list[dict[str, Any] | str]) -> list[dict[str, Any] | str]:
        if len(patterns) > MAX_FILTERS:
            raise ValueError(
                "Value at 'filterCriteria.filters' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_FILTERS}"
            )
        for pattern in patterns:
            try:
                Pattern(pattern)
            except PatternError as exc:
                raise ValueError(str(exc)) from None
        return patterns

    @field_validator("enrichment_input_template", "target_input_template")
    @classmethod
    def _check_template(cls, template: str | None) -> str | None:
        if template is not None:
            PipeTemplate(template)  # its ValueError carries AWS's message
        return template

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PipeConfig:
        """Validate ``data`` (a parsed config file section); errors are one ``ConfigError``."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"Invalid pipe: {describe_validation_error(exc)}") from None
