"""Where a map's results go: the reduce step.

Each row that ends leaves a result: ``{"file", "line", "status": "SUCCEEDED", "output"}`` or
``{"file", "line", "status": "FAILED", "error", "cause", "attempts"}`` (plus ``"input"`` with
``include_input``). Two kinds of reduce take them:

- ``StreamingReduce``: any target that takes payloads (a file, a SQL table, a queue, an HTTP
  endpoint). A result is encoded as it is made, by the worker that ran the row (so an answer
  that is not JSON fails that row, not a batch later), and results are delivered in batches of
  ``reduce_batch_size`` by one flusher task (up to four batches at once), at least once a
  second. When the target falls behind, the map reads no further rows until it catches up.
- ``CollectingReduce``: a function, given every result at once when the file ends (in file and
  line order), whose answer becomes the map's output. The results are kept in memory meanwhile.

A batch the target refuses is retried under the map's retry policy (the one retry decision);
when the retries run out the results cannot be written and the map fails.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Final, Protocol

import anyio

from eventbus import json_strict
from eventbus.bus.clock import Clock
from eventbus.bus.delivery.retry import GiveUp, RetryRules, decide, error_message
from eventbus.maps.rows import Row, RowFailure
from eventbus.targets.base import DeliveryContext, Target, batch_limit

__all__ = ["CollectingReduce", "Reduce", "ReduceFailed", "StreamingReduce"]

#: A streaming reduce delivers what it holds at least this often (seconds).
FLUSH_INTERVAL: Final = 1.0
#: Batches under way to the target at once: each delivery costs a trip round the event loop
#: (a thread, a transaction), and rows end in waves as large as the map's concurrency.
PARALLEL: Final = 4


class ReduceFailed(Exception):
    """The results could not be written (the map fails with this reason)."""


class Reduce(Protocol):
    #: Results handed to the target so far.
    written: int

    def succeeded(self, row: Row, output: Any) -> None: ...

    def failed(self, row: Row, failure: RowFailure) -> None: ...

    async def run(self) -> None:
        """Deliver in the background until cancelled (or until ``finish``)."""
        ...

    async def wait_room(self) -> None: ...

    async def finish(self) -> Any:
        """Deliver what is left; the map's output (a collecting reduce's answer), else ``None``."""
        ...


def _input_json(row: Row) -> str:
    if row.error is not None:
        return json_strict.dumps_writable(row.text)
    return row.text if row.text is not None else json_strict.dumps(row.value)


class StreamingReduce:
    """Results as JSON text, delivered in batches to ``target``."""

    def __init__(
        self,
        target: Target,
        *,
        files: Sequence[str],
        context: DeliveryContext,
        batch_size: int,
        include_input: bool,
        backlog: int,
        rules: RetryRules,
        clock: Clock,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.target = target
        self.batch_size = batch_limit(target, batch_size)
        self.include_input = include_input
        self._files = list(files)
        self._file_json = [json_strict.dumps(name) for name in files]
        self._context = context
        self._rules = rules
        self._clock = clock
        self._rand = rand
        self._payloads: list[str] = []
        # Each result's file and line as one integer (``file << 40 | line``): a list of ints is
        # nothing for the garbage collector to look at, a list of tuples is.
        self._ids: list[int] = []
        self._wake: anyio.Event | None = None
        self._room: anyio.Event | None = None
        self._finishing = False
        #: Why the results could not be written, once a batch's retries ran out.
        self._failure: str | None = None
        #: Results delivered so far.
        self.written = 0
        #: The flusher holds no more than this many results before the map pauses its reading:
        #: at least ``backlog`` (rows end in waves as large as the map's concurrency).
        self.backlog_limit = max(4 * self.batch_size, backlog)

    def succeeded(self, row: Row, output: Any) -> None:
        # Encoded here, by the worker, so that an answer that is not JSON fails its own row.
        text = json_strict.dumps(output)
        start = f'{{"file":{self._file_json[row.file]},"line":{row.line},"status":"SUCCEEDED","output":{text}'
        self._add(row, start + (f',"input":{_input_json(row)}}}' if self.include_input else "}"))

    def failed(self, row: Row, failure: RowFailure) -> None:
        record: dict[str, Any] = {
            "file": self._files[row.file],
            "line": row.line,
            "status": "FAILED",
            "error": failure.error,
            "cause": failure.cause,
            "attempts": failure.attempts,
        }
        text = json_strict.dumps_writable(record)
        if self.include_input:
            text = text[:-1] + f',"input":{_input_json(row)}}}'
        self._add(row, text)

    def _add(self, row: Row, payload: str) -> None:
        self._payloads.append(payload)
        self._ids.append(row.file << 40 | row.line)
        if len(self._payloads) >= self.batch_size and self._wake is not None:
            self._wake.set()

    async def wait_room(self) -> None:
        while len(self._payloads) >= self.backlog_limit and self._failure is None and not self._finishing:
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()
        self._raise_failure()

    async def run(self) -> None:
        while not self._finishing:
            self._wake = anyio.Event()
            if len(self._payloads) < self.batch_size:
                with anyio.move_on_after(FLUSH_INTERVAL):
                    await self._wake.wait()
            await self._flush()

    async def finish(self) -> Any:
        self._finishing = True
        await self._flush()
        return None

    async def _flush(self) -> None:
        """Deliver everything held, up to ``PARALLEL`` batches at a time."""
        while self._payloads and self._failure is None:
            # Shielded: these results left the list, and a cancelled delivery would lose them.
            with anyio.CancelScope(shield=True):
                async with anyio.create_task_group() as tg:
                    for _ in range(PARALLEL):
                        if not self._payloads:
                            break
                        payloads = self._payloads[: self.batch_size]
                        ids = self._ids[: self.batch_size]
                        del self._payloads[: self.batch_size]
                        del self._ids[: self.batch_size]
                        tg.start_soon(self._deliver, payloads, ids)
                    if self._room is not None and len(self._payloads) < self.backlog_limit:
                        self._room.set()
                        self._room = None
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise ReduceFailed(self._failure)

    async def _deliver(self, payloads: list[str], ids: list[int]) -> None:
        files, mask = self._files, (1 << 40) - 1
        event_ids = tuple(f"{files[key >> 40]}:{key & mask}" for key in ids)
        attempt = 1
        first = self._clock.now()
        while self._failure is None:
            context = DeliveryContext(
                kind=self._context.kind,
                name=self._context.name,
                arn=self._context.arn,
                target_id=self._context.target_id,
                target_arn=self._context.target_arn,
                attempt=attempt,
                event_ids=event_ids,
            )
            try:
                await self.target.deliver(payloads, context)
            except Exception as exc:
                age = (self._clock.now() - first).total_seconds()
                decision = decide(self._rules, attempt, age, exc, jitter=self._rand())
                if isinstance(decision, GiveUp):
                    # Kept, not raised here: several batches may be under way (a task group
                    # would wrap it); the flusher and the reader raise it as the map's failure.
                    self._failure = (
                        f"the results could not be written ({len(payloads)} of them, lines "
                        f"{event_ids[0]} to {event_ids[-1]}): {error_message(exc)}"
                    )
                    if self._room is not None:
                        self._room.set()
                    return
                attempt += 1
                await self._clock.sleep_until(self._clock.now() + timedelta(seconds=decision.delay))
                continue
            self.written += len(payloads)
            return


class CollectingReduce:
    """Every result kept, handed to ``function`` in one call at the end."""

    def __init__(
        self, invoke: Callable[[Any], Any], *, files: Sequence[str], include_input: bool
    ) -> None:
        self._invoke = invoke
        self._files = list(files)
        self.include_input = include_input
        self._results: list[tuple[int, int, dict[str, Any]]] = []
        self.written = 0

    def succeeded(self, row: Row, output: Any) -> None:
        record = {"file": self._files[row.file], "line": row.line, "status": "SUCCEEDED", "output": output}
        if self.include_input:
            record["input"] = row.value
        self._results.append((row.file, row.line, record))

    def failed(self, row: Row, failure: RowFailure) -> None:
        record: dict[str, Any] = {
            "file": self._files[row.file],
            "line": row.line,
            "status": "FAILED",
            "error": failure.error,
            "cause": failure.cause,
            "attempts": failure.attempts,
        }
        if self.include_input:
            record["input"] = row.value if row.error is None else row.text
        self._results.append((row.file, row.line, record))

    async def wait_room(self) -> None:
        return None

    async def run(self) -> None:
        await anyio.sleep_forever()

    async def finish(self) -> Any:
        self._results.sort(key=lambda item: (item[0], item[1]))
        results = [record for _, _, record in self._results]
        self._results = []
        try:
            output = await self._invoke(results)
        except Exception as exc:
            raise ReduceFailed(f"the reduce function failed: {error_message(exc)}") from exc
        self.written = len(results)
        return output

