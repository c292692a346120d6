"""``MapConfig``: a distributed map, declared in Python or under ``maps:`` in a config file.

The settings follow Step Functions' Distributed Map state, in this project's words:

=====================================  ==========================================
Step Functions                         eventbus
=====================================  ==========================================
``ItemReader`` (S3 CSV / JSON Lines)   ``source: {file: {path: ...}}``
``ReaderConfig.MaxItems``              ``source.file.max_items``
``CSVHeaderLocation``/``CSVHeaders``   ``source.file.header``
``ItemProcessor``                      ``target`` (any target kind)
``MaxConcurrency``                     ``max_concurrency`` (up to 10,000)
``ToleratedFailureCount``              ``tolerated_failure_count``
``ToleratedFailurePercentage``         ``tolerated_failure_percentage``
``ResultWriter``                       ``reduce`` (a file, a table, a function...)
``Retry`` on the item processor        ``retry_policy`` and ``backoff``
``Catch``                              ``dead_letter``
=====================================  ==========================================

Targets are written as in pipes: ``{kind: options}``, a ``TargetConfig``, a ready ``Target``, or
``{ref: NAME}`` in a config file.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from eventbus._plugins import describe_validation_error
from eventbus.bus.delivery.retry import Backoff, RetryRules
from eventbus.errors import ConfigError
from eventbus.pipes.config import DeadLetterSpec, LogLevel, TargetSpec, target_spec
from eventbus.pipes.sources.base import DEFAULT_ACCOUNT, DEFAULT_REGION
from eventbus.pipes.sources.files import FileFormat

__all__ = ["MAX_CONCURRENCY", "MapConfig", "MapFileSource", "MapRetryPolicy", "MapSource"]

#: Step Functions' limit on a distributed map's child executions at once.
MAX_CONCURRENCY = 10_000


class MapFileSource(BaseModel):
    """The rows of one CSV or JSON Lines file, or of several read one after the other.

    A CSV row becomes an object of its columns (all strings), named by the header: the file's
    first row, or ``header`` when the file has none. A JSON Lines line is parsed as JSON. The
    format comes from the extension (``.csv``, ``.tsv``, ``.jsonl``, ``.ndjson``) or ``format``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassVar[str] = "file"

    path: str | list[str] = Field(min_length=1)
    format: FileFormat = "auto"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"
    #: The CSV columns, for files without a header row (Step Functions' ``CSVHeaders``); unset,
    #: the first row is the header (``CSVHeaderLocation: FIRST_ROW``).
    header: list[str] | None = Field(default=None, min_length=1)
    #: Read at most this many rows (Step Functions' ``MaxItems``): try a map on the first few.
    max_items: int | None = Field(default=None, ge=1)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        try:
            io.TextIOWrapper(io.BytesIO(), encoding=encoding)
        except LookupError:
            raise ValueError(f"unknown encoding {encoding!r}") from None
        return encoding

    @field_validator("path")
    @classmethod
    def _some_path(cls, path: str | list[str]) -> str | list[str]:
        if isinstance(path, list) and not all(path):
            raise ValueError("a path must not be empty")
        return path

    @field_validator("header")
    @classmethod
    def _distinct_columns(cls, header: list[str] | None) -> list[str] | None:
        if header is not None:
            seen: set[str] = set()
            for name in header:
                if name in seen:
                    raise ValueError(f"header names the column {name!r} twice")
                seen.add(name)
        return header

    @property
    def paths(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


class MapSource(BaseModel):
    """Where a map's rows come from: ``{file: {path: ...}}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: MapFileSource


def _source_spec(value: Any) -> Any:
    if isinstance(value, MapFileSource):
        return {"file": value}
    if isinstance(value, Mapping) and value.get("kind") == "file":
        return {"file": {key: item for key, item in value.items() if key != "kind"}}
    if isinstance(value, Mapping) and len(value) == 1 and "file" not in value:
        (kind,) = value
        raise ValueError(
            f"a map reads its rows from a file: source is {{file: {{path: rows.csv}}}}, not {kind!r}"
            + (" (that kind of source feeds pipes: it never ends, and a map runs to the end of its rows)" if kind in _PIPE_SOURCES else "")
        )
    return value


_PIPE_SOURCES = ("queue", "nats", "directory", "webhook", "schedule")

SourceSpec = Annotated[MapSource, BeforeValidator(_source_spec)]
ReduceSpec = Annotated[Any, BeforeValidator(target_spec("reduce"))]


class MapRetryPolicy(BaseModel):
    """How often a failing row is tried again before it counts as failed; ``-1``: no limit.

    The defaults are Step Functions' default retrier (three tries in all) rather than a pipe's
    (185): a map reports a failing row and goes on, and a row that fails three times in a row
    usually fails for good.
    """

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    maximum_retry_attempts: int = Field(2, ge=-1, le=10_000, alias="MaximumRetryAttempts")
    maximum_record_age_in_seconds: int = Field(-1, ge=-1, le=604_800, alias="MaximumRecordAgeInSeconds")

    def rules(self, backoff: Backoff) -> RetryRules:
        """What the retry decision weighs for a map's rows (``-1``: no limit)."""
        return RetryRules(
            max_retries=None if self.maximum_retry_attempts < 0 else self.maximum_retry_attempts,
            max_age=None if self.maximum_record_age_in_seconds < 0 else self.maximum_record_age_in_seconds,
            backoff=backoff,
            age_condition="MaximumRecordAgeInSeconds",
        )


class MapConfig(BaseModel):
    """A distributed map: every row of a file through a target, many at once, results reduced."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    #: Config files name a map by its key; Python code names it here.
    name: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[\.\-_A-Za-z0-9]+$")
    description: str = Field(default="", max_length=512)

    source: SourceSpec
    #: What runs for each row: any target kind. A function gets the row itself (a CSV row as an
    #: object of its columns); other kinds get it as JSON text.
    target: TargetSpec
    #: Rows in the target at once (Step Functions' ``MaxConcurrency``).
    max_concurrency: int = Field(default=100, ge=1, le=MAX_CONCURRENCY)

    #: Fail the map once more rows than this have failed (unset: a failed row never fails the map).
    tolerated_failure_count: int | None = Field(default=None, ge=0)
    #: Fail the map once more than this percentage of its rows have failed (judged against every
    #: row of the file, so from the moment the file has been read to its end).
    tolerated_failure_percentage: float | None = Field(default=None, ge=0, le=100)

    #: Where each row's result goes: a target that takes them in batches (a file, a SQL table, a
    #: queue...), or a function, which is given all of them at once when the file ends and whose
    #: answer is the map's output.
    reduce: ReduceSpec = None
    #: Put each row's input in its result too.
    include_input: bool = False
    #: Results in one delivery to the reduce target at most (and at most the target's own
    #: ``max_batch_size``: a ``sql`` target's is 100 unless raised).
    reduce_batch_size: int = Field(default=10_000, ge=1, le=10_000)

    retry_policy: MapRetryPolicy = Field(default_factory=MapRetryPolicy)
    backoff: Backoff = Field(default_factory=lambda: Backoff(base=1.0, cap=60.0))
    #: A target that gets each row that failed for good (malformed rows too), with AWS's
    #: dead-letter attributes.
    dead_letter: DeadLetterSpec = None

    #: A progress bar (on a terminal; plain lines anywhere else). Unset: on under ``eventbus run``
    #: when stderr is a terminal (or as ``--progress`` says), off in a library.
    progress: bool | None = None
    log_level: LogLevel = "ERROR"
    account: str = Field(default=DEFAULT_ACCOUNT, pattern=r"^\d{12}$")
    region: str = Field(default=DEFAULT_REGION, min_length=1)

    @model_validator(mode="after")
    def _target_given(self) -> MapConfig:
        if self.target is None:
            raise ValueError("a map needs a target: what runs for each row")
        return self

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> MapConfig:
        """Validate ``data`` (a parsed config file section); errors are one ``ConfigError``."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"Invalid map: {describe_validation_error(exc)}") from None

