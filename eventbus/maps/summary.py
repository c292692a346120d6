"""What a map reports: its counts as it runs, and the summary when it ends.

The counts are plain integer attributes that the map bumps as rows end (nothing per row is
allocated for them). Failures are kept in full only for the first ``MAX_LISTED_FAILURES`` rows:
a map of a million rows that all fail must not hold a million reports; every failure still goes
to the reduce target and the dead letter, and is counted by its error code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

from eventbus import json_strict
from eventbus.maps.rows import RowFailure

__all__ = ["MAX_LISTED_FAILURES", "MapCounts", "MapStatus", "MapSummary"]

#: A map's status, as Step Functions names a map run's.
MapStatus = Literal["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "ABORTED"]

#: Failed rows a summary lists one by one; the rest are counted.
MAX_LISTED_FAILURES: Final = 1000


class MapCounts:
    """The running counts of one map."""

    __slots__ = (
        "dead_letter_failed",
        "dead_lettered",
        "errors",
        "failed",
        "failures",
        "malformed",
        "retried",
        "rows",
        "succeeded",
    )

    def __init__(self) -> None:
        #: Rows read (malformed ones included).
        self.rows = 0
        self.succeeded = 0
        #: Rows that failed for good (after their retries), malformed rows included.
        self.failed = 0
        self.malformed = 0
        #: Retries made (a row retried twice counts twice).
        self.retried = 0
        self.dead_lettered = 0
        self.dead_letter_failed = 0
        #: Failed rows by error code.
        self.errors: dict[str, int] = {}
        #: The first ``MAX_LISTED_FAILURES`` failed rows.
        self.failures: list[RowFailure] = []

    def fail(self, failure: RowFailure) -> None:
        self.failed += 1
        self.errors[failure.error] = self.errors.get(failure.error, 0) + 1
        if len(self.failures) < MAX_LISTED_FAILURES:
            self.failures.append(failure)


@dataclass(frozen=True, slots=True)
class MapSummary:
    """How a map ended: ``status``, its counts, its failures, and how long it took.

    ``rows`` counts the rows read; ``aborted`` those read that had not ended when the map stopped
    early (failing or stopped). ``output`` is what a reduce function answered.
    """

    name: str
    status: MapStatus
    rows: int
    succeeded: int
    failed: int
    aborted: int
    malformed: int
    retried: int
    dead_lettered: int
    results_written: int
    duration: float
    #: Why the map failed or was aborted; ``None`` when it succeeded.
    cause: str | None = None
    #: The failed rows, the first ``MAX_LISTED_FAILURES`` of them, in the order they failed.
    failures: tuple[RowFailure, ...] = ()
    #: Failed rows by error code (``SDK_CLIENT_ERROR``, ``TIMEOUT``, ``MALFORMED_ROW``...).
    errors: dict[str, int] = field(default_factory=dict)
    output: Any = None

    @property
    def rows_per_second(self) -> float:
        """Rows that ended per second of the map's run."""
        ended = self.succeeded + self.failed
        return ended / self.duration if self.duration > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (the output as the reduce function gave it)."""
        return {
            "name": self.name,
            "status": self.status,
            "rows": self.rows,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "aborted": self.aborted,
            "malformed": self.malformed,
            "retried": self.retried,
            "dead_lettered": self.dead_lettered,
            "results_written": self.results_written,
            "duration": round(self.duration, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "cause": self.cause,
            "errors": dict(self.errors),
            "failures": [f.to_dict() for f in self.failures],
            "output": self.output,
        }

    def __str__(self) -> str:
        """A few lines a person reads: the counts, then up to ten failed rows."""
        head = (
            f"map {self.name}: {self.status} in {self.duration:.1f} s: {self.rows:,} rows, "
            f"{self.succeeded:,} succeeded, {self.failed:,} failed"
        )
        if self.aborted:
            head += f", {self.aborted:,} aborted"
        head += f" ({self.rows_per_second:,.0f} rows/s)"
        lines = [head]
        if self.cause:
            lines.append(f"  cause: {self.cause}")
        if self.output is not None:
            text = json_strict.dumps_writable(self.output)
            lines.append(f"  output: {text if len(text) <= 200 else text[:200] + '...'}")
        if self.errors:
            lines.append("  failed by error: " + ", ".join(f"{code} {n:,}" for code, n in sorted(self.errors.items())))
        for failure in self.failures[:10]:
            lines.append(f"  {failure}")
        if self.failed > 10:
            lines.append(f"  ... and {self.failed - 10:,} more failed rows")
        return "\n".join(lines)
