"""What a spread map sends over JetStream: rows out, outcomes back, and where they go.

A row message carries the run it belongs to (each run of a map has an id of its own, so rows
and outcomes of an earlier run, or of a reader that died, are told apart), the row's place
(``seq``, file, line, where it ends) and its value; its ``Nats-Msg-Id`` is the run, the row and
the attempt, so a row published again after a lost acknowledgement is stored once. An outcome
carries the same run, row and attempt, which worker ran it, and either the target's answer or
why it failed (code, message, whether a retry can help, the error's ``retry_after``): the
reading worker rebuilds the failure as a ``RemoteRowError`` and weighs it as if it had run the
row itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventbus import json_strict
from eventbus.bus.delivery.retry import error_code, error_message
from eventbus.bus.logs.jetstream.names import token
from eventbus.errors import NonRetryableError
from eventbus.maps.rows import Row

__all__ = ["MapNames", "Outcome", "RemoteRowError", "decode_row", "encode_row", "failure_body", "success_body"]


@dataclass(frozen=True)
class MapNames:
    """Where map ``name`` of deployment ``prefix`` lives on the server."""

    prefix: str
    name: str

    @property
    def token(self) -> str:
        return token(self.name)

    @property
    def rows_stream(self) -> str:
        return f"{self.prefix}_MAP_{self.token}_ROWS"[:200]

    @property
    def rows_subject(self) -> str:
        return f"{self.prefix}.map.{self.token}.rows"

    @property
    def results_stream(self) -> str:
        return f"{self.prefix}_MAP_{self.token}_RESULTS"[:200]

    @property
    def results_subject(self) -> str:
        return f"{self.prefix}.map.{self.token}.results"

    @property
    def elections(self) -> str:
        """The bucket of leases (shared with the pipes' readers)."""
        return f"{self.prefix}_ELECTIONS"

    @property
    def lease_key(self) -> str:
        return f"map.{self.token}"

    @property
    def state_bucket(self) -> str:
        """The bucket of maps' states and checkpoints."""
        return f"{self.prefix}_MAPS"

    @property
    def state_key(self) -> str:
        return f"{self.token}.state"

    @property
    def checkpoint_key(self) -> str:
        return f"{self.token}.checkpoint"


class RemoteRowError(Exception):
    """A row failed on another worker: its error code and message, as that worker saw them."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.error_code = code
        self.retry_after = retry_after


class RemoteNonRetryableError(RemoteRowError, NonRetryableError):
    """A row failed on another worker with an error no retry can fix."""


def encode_row(run: str, row: Row) -> bytes:
    body = {"r": run, "s": row.seq, "f": row.file, "l": row.line, "a": row.attempt, "e": row.end, "v": row.value}
    if row.text is not None:
        body["t"] = row.text
    # Lossless whatever the row holds (a lone surrogate in a CSV cell is escaped, not refused).
    return json_strict.dumps_writable(body).encode()


def decode_row(data: bytes, read_at: datetime) -> tuple[str, Row]:
    """The run and the row of a row message (``ValueError``, ``KeyError``, ``TypeError`` if it
    is not one)."""
    body = json.loads(data)
    row = Row(int(body["s"]), int(body["f"]), int(body["l"]), body["v"], body.get("t"), read_at, int(body["e"]))
    row.attempt = int(body["a"])
    return str(body["r"]), row


def success_body(run: str, row: Row, worker: str, output: Any) -> bytes:
    """An outcome for a row whose target answered ``output`` (``ValueError`` if it is not JSON)."""
    return json_strict.dumps({"r": run, "s": row.seq, "a": row.attempt, "w": worker, "ok": True, "o": output}).encode()


def failure_body(run: str, row: Row, worker: str, error: BaseException) -> bytes:
    retry_after = getattr(error, "retry_after", None)
    body = {
        "r": run,
        "s": row.seq,
        "a": row.attempt,
        "w": worker,
        "ok": False,
        "c": error_code(error),
        "m": error_message(error),
        "n": isinstance(error, NonRetryableError),
        "ra": float(retry_after) if isinstance(retry_after, int | float) else None,
    }
    return json_strict.dumps(body).encode()


@dataclass(frozen=True, slots=True)
class Outcome:
    """One outcome message, read."""

    run: str
    seq: int
    attempt: int
    worker: str
    output: Any = None
    error: RemoteRowError | None = None

    @classmethod
    def decode(cls, data: bytes) -> Outcome:
        body = json.loads(data)
        error: RemoteRowError | None = None
        if not body["ok"]:
            kind = RemoteNonRetryableError if body.get("n") else RemoteRowError
            error = kind(str(body["c"]), str(body["m"]), body.get("ra"))
        return cls(str(body["r"]), int(body["s"]), int(body["a"]), str(body.get("w", "")), body.get("o"), error)
