"""What ``eventbus run`` runs: the buses of the config files, their reloads, signals and stdin events.

A bus must be entered and left by the same task, so each ``Runtime`` lives in a task of its own
(``_Hosted``) that the runner starts, retires and hurries:

- A reload retires the running runtime: its pipes stop and its buses take no more events. A
  durable runtime (SQLite, the default) hands over through its state file: the deliveries under
  way end, the old buses stop and let go of the file, and the new ones resume everything else
  from it (queued deliveries, retries with their due times, events not routed yet). A runtime in
  memory goes on delivering what it accepted in the background instead, for as long as its retry
  policy may take, while the new one starts at once. Either way stdin events wait only for the
  swap itself.
- The first SIGINT or SIGTERM stops reading stdin and hurries every runtime: each bus drains for
  at most its ``drain_timeout``. Events still undelivered then are written to a file.
- A second signal ends the process at once, after writing every event not yet delivered to that
  file.

Nothing a stdin line holds, no config edit and no failing reload stops the process: each line
ends as accepted events or one ``stdin line N: ...`` line on stderr.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from eventbus.cli._console import print_problems
from eventbus.cli._console import say as _say
from eventbus.cli._io import exit_now
from eventbus.cli._stdin import LineReader
from eventbus.config import ConfigErrors, LoadedConfig, Runtime, load_configs
from eventbus.config.backends import SqliteBackend
from eventbus.config.entries import to_entry
from eventbus.errors import EventBusError

__all__ = ["Runner", "write_abandoned"]

#: Ten PutEvents entries of 256 KB fit in a line this long; a longer one is refused unread.
MAX_LINE_BYTES = 4 * 1024 * 1024

_BUS_ARN_MARK = ":event-bus/"


@dataclass(slots=True)
class StdinCount:
    lines: int = 0
    events: int = 0
    rejected: int = 0
    blank: int = 0

    def __str__(self) -> str:
        return f"{self.events} event(s) ({self.lines} line(s): {self.rejected} rejected, {self.blank} blank)"


class _Hosted:
    """One ``Runtime`` in a task of its own, from start to the end of its drain."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.started = anyio.Event()
        #: Why the runtime could not start, if it could not.
        self.failed: Exception | None = None
        #: Stop taking events (pipes stop, buses refuse) and drain in the background.
        self.retire = anyio.Event()
        self.retired = anyio.Event()
        #: Shutting down: drain for at most each bus's ``drain_timeout``.
        self.hurry = anyio.Event()
        self.ended = anyio.Event()
        #: Events accepted and not yet delivered when it stopped taking more.
        self.waiting = 0
        #: ``(bus, event)`` for each event still undelivered when it ended.
        self.leftovers: list[tuple[str, dict[str, Any]]] = []
        #: A durable runtime that stopped for a reload: its successor resumes what it held.
        self.handed_over = False

    def pending_events(self) -> list[tuple[str, dict[str, Any]]]:
        return self.leftovers if self.ended.is_set() else self.runtime.pending_events()

    async def run(self) -> None:
        try:
            async with self.runtime:
                self.started.set()
                await self.retire.wait()
                await self.runtime.stop_taking()
                self.waiting = self.runtime.pending()
                if self.runtime.durable and not self.hurry.is_set():
                    # A reload hands over through the state file: the deliveries under way end
                    # here, the rest (queued, waiting to retry, not routed) is the successor's.
                    # ``retired`` is set once the buses have let go of the file, below.
                    drain = max((b.config.drain_timeout for b in self.runtime.buses.values()), default=0.0)
                    await self.runtime.wait_quiet(drain)
                    self.runtime.shorten_drain(0)
                    self.handed_over = True
                    return
                self.retired.set()
                if not self.hurry.is_set():
                    await self._drain()
        except Exception as exc:
            if self.started.is_set():
                say(f"a runtime stopped with an error: {_one_line(exc)}")
            else:
                self.failed = exc
        finally:
            self.leftovers = self.runtime.pending_events()
            self.started.set()
            self.retired.set()
            self.ended.set()

    async def _drain(self) -> None:
        """Until everything accepted has ended, the runner hurries, or the retry policy would have
        given up anyway (leaving the runtime then drains for ``drain_timeout`` more)."""
        with anyio.move_on_after(self.runtime.retry_horizon):
            async with anyio.create_task_group() as tg:

                async def hurried() -> None:
                    await self.hurry.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(hurried)
                await self.runtime.wait_idle()
                tg.cancel_scope.cancel()


class Runner:
    """Runs the configs until a signal; reloads them on change and puts stdin lines on the buses."""

    def __init__(
        self, files: list[str], bus: str | None = None, abandoned: str | None = None, *, state: str | None = None
    ) -> None:
        """Loads the files (``ConfigErrors`` when they are not valid) and builds what they declare.

        The buses keep their state where each file's ``runtime.backend`` says, else in SQLite beside
        it (``.eventbus/<name>.db``); ``state`` names one SQLite file for all of them instead."""
        self.files = files
        #: Whatever the files say (``--state``), and for files that say nothing.
        self.backend = SqliteBackend(path=str(Path(state).resolve())) if state else None
        self.default_backend = SqliteBackend()
        #: The files' contents when they were last loaded (or a load was tried): a watch reloads
        #: when they differ, so an edit made before the watcher started is not missed.
        self.loaded = _fingerprint(files)
        self.configs = load_configs(files)
        self.default_bus = bus
        self.abandoned_path = abandoned
        self.first = self._runtime(self.configs)
        self.hosts: list[_Hosted] = []
        self.current: _Hosted | None = None
        #: Held by a put, and by a reload while it swaps runtimes: no put lands on a runtime going away.
        self.gate = anyio.Lock()
        #: Held by a reload and by the shutdown: one at a time.
        self.control = anyio.Lock()
        self.stop_requested = anyio.Event()
        self.stopping = False
        self.stdin = StdinCount()
        self._stdin_scope: anyio.CancelScope | None = None
        self._tg: TaskGroup | None = None
        #: Whether events were left undelivered (the exit status is then 1).
        self.abandoned_any = False

    def _runtime(self, configs: list[LoadedConfig]) -> Runtime:
        return Runtime(configs, backend=self.backend, default_backend=self.default_backend)

    # -- the run -----------------------------------------------------------------------------

    async def serve(self, watch: bool, stdin: bool) -> int:
        """Run until a signal has stopped everything; the exit status."""
        failed: Exception | None = None
        async with anyio.create_task_group() as tg:
            self._tg = tg
            # Listening before anything starts: a signal that comes early stops the run cleanly.
            await tg.start(self._signals)
            first = await self._start(self.first)
            if first.failed is not None:
                failed = first.failed
                tg.cancel_scope.cancel()
            else:
                self.current = first
                self._announce("running")
                self._follow_maps(first)
                if watch:
                    tg.start_soon(self._guarded, "watching the files", self._watch)
                if stdin:
                    tg.start_soon(self._guarded, "reading stdin", self._read_stdin)
                await self.stop_requested.wait()
                await self._stop()
                tg.cancel_scope.cancel()
        if failed is not None:
            raise failed
        code = self._finish()
        return 1 if self._maps_failed() else code

    async def _start(self, runtime: Runtime) -> _Hosted:
        assert self._tg is not None
        host = _Hosted(runtime)
        self.hosts.append(host)
        self._tg.start_soon(self._host, host)
        await host.started.wait()
        return host

    async def _host(self, host: _Hosted) -> None:
        await host.run()
        if host.failed is not None:
            self.hosts.remove(host)
        elif not self.stopping:
            # A reload's background drain ended (the shutdown reports on its own hosts).
            self.hosts.remove(host)
            if host.leftovers:
                self._report_abandoned(host.leftovers, "the previous config stopped;")
            elif host.handed_over:
                pass  # said by the swap
            elif host.waiting:
                say("the previous config delivered what it had accepted and stopped")

    async def _stop(self) -> None:
        async with self.control:
            self.stopping = True
            say("stopping: draining accepted events")
            if self._stdin_scope is not None:
                self._stdin_scope.cancel()
            for host in self.hosts:
                host.hurry.set()
                host.retire.set()
            for host in list(self.hosts):
                await host.ended.wait()

    # -- maps --------------------------------------------------------------------------------

    def _follow_maps(self, host: _Hosted) -> None:
        """Report each map of ``host`` as it ends; once all have, a run that declares nothing
        else (no bus, no pipe) is over."""
        if not host.runtime.maps or self._tg is None:
            return
        self._tg.start_soon(self._guarded, "following the maps", lambda: self._maps_ended(host))

    async def _maps_ended(self, host: _Hosted) -> None:
        runtime = host.runtime

        async def report(run: Any) -> None:
            summary = await run.wait()
            for line in str(summary).splitlines():
                say(line)
            ran = getattr(run, "ran", None)
            if ran is not None:
                # A map spread over the workers (JetStream): this worker's share of the rows.
                say(f"map {run.name}: this worker ran {ran:,} row(s)")

        async with anyio.create_task_group() as tg:
            for run in runtime.maps.values():
                tg.start_soon(report, run)
        if host is self.current and not runtime.buses and not runtime.pipes and not self.stopping:
            say("every map ended: stopping")
            self.stop_requested.set()

    def _maps_failed(self) -> bool:
        """Whether a map of the config running last did not succeed (the exit status is then 1)."""
        if self.current is None:
            return False
        return any(run.status != "SUCCEEDED" for run in self.current.runtime.maps.values())

    def _finish(self) -> int:
        leftovers = [item for host in self.hosts for item in host.pending_events()]
        if not leftovers:
            kept = sum(host.runtime.pending() for host in self.hosts if host.runtime.durable)
            if kept:
                states = ", ".join(sorted({_states(h.runtime) for h in self.hosts if h.runtime.durable}))
                say(f"stopped; {kept} pending delivery(ies) are kept in {states} for the next run")
            else:
                say("stopped")
            return 0
        self._report_abandoned(leftovers, "stopped;")
        return 1

    async def _guarded(self, what: str, run: Callable[[], Awaitable[None]]) -> None:
        # A helper that fails must not take the buses down with it.
        try:
            await run()
        except Exception as exc:
            say(f"{what} failed ({_one_line(exc)}); the buses keep running")

    def _announce(self, verb: str) -> None:
        assert self.current is not None
        runtime = self.current.runtime
        buses = ", ".join(f"{name} ({len(bus.list_rules())} rule(s))" for name, bus in sorted(runtime.buses.items()))
        pipes = f"; pipes: {', '.join(sorted(runtime.pipes))}" if runtime.pipes else ""
        maps = f"; maps: {', '.join(sorted(runtime.maps))}" if runtime.maps else ""
        say(f"{verb}: {buses or 'no buses'}{pipes}{maps}")

    # -- signals -----------------------------------------------------------------------------

    async def _signals(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
            task_status.started()
            async for signum in received:
                name = signal.Signals(signum).name
                if not self.stop_requested.is_set():
                    say(f"{name} received")
                    self.stop_requested.set()
                else:
                    self._abandon_now(name)

    def _abandon_now(self, name: str) -> None:
        """The second signal: say what is abandoned, then end the process at once."""
        leftovers = [item for host in self.hosts for item in host.pending_events()]
        self._report_abandoned(leftovers, f"{name} received again: stopping now;")
        exit_now(1 if leftovers else 0)

    # -- what was not delivered ----------------------------------------------------------------

    def _report_abandoned(self, leftovers: Sequence[tuple[str, dict[str, Any]]], prefix: str) -> None:
        if not leftovers:
            say(f"{prefix} every accepted event was delivered")
            return
        self.abandoned_any = True
        count = f"{len(leftovers)} accepted event(s) were not delivered"
        path = write_abandoned(self.abandoned_path, leftovers)
        if path is None:
            ids = ", ".join(event.get("id", "?") for _, event in leftovers)
            say(f"{prefix} {count} (no file could be written; their ids: {ids})")
        else:
            say(f"{prefix} {count}; their ids and the events are in {path}")

    # -- reloads -----------------------------------------------------------------------------

    async def _watch(self) -> None:
        import watchfiles

        folders = sorted({str(Path(f).resolve().parent) for f in self.files})
        announced = False
        while not self.stopping:
            try:
                # Waking up at least once a second (an empty set) tells that the watcher runs.
                async for _ in watchfiles.awatch(
                    *folders, debounce=200, step=50, rust_timeout=1000, yield_on_timeout=True
                ):
                    if self.stopping:
                        return
                    if not announced:
                        announced = True
                        say(f"watching {', '.join(self.files)} for changes")
                    # By content, not by the change set: nothing is missed, a mere touch is ignored.
                    if _fingerprint(self.files) != self.loaded:
                        await self._reload()
            except Exception as exc:
                # A watched folder that went away, say: report it and watch again.
                say(f"watching the files failed ({_one_line(exc)}); trying again")
                await anyio.sleep(1)

    async def _reload(self) -> None:
        self.loaded = _fingerprint(self.files)
        try:
            configs = load_configs(self.files)
        except ConfigErrors as exc:
            print_problems(exc)
            say("the changed config is not valid; the running config stays")
            return
        except Exception as exc:
            say(f"the changed config cannot be read ({_one_line(exc)}); the running config stays")
            return
        refusal = _refusal(self.configs, configs)
        if refusal is not None:
            say(f"{refusal}; the running config stays")
            return
        try:
            fresh = self._runtime(configs)
        except ConfigErrors as exc:
            print_problems(exc)
            say("the changed config cannot be built; the running config stays")
            return
        except Exception as exc:
            say(f"the changed config cannot be built ({_one_line(exc)}); the running config stays")
            return
        async with self.control:
            if self.stopping:
                return
            async with self.gate:
                await self._swap(fresh, configs)

    async def _swap(self, fresh: Runtime, configs: list[LoadedConfig]) -> None:
        old = self.current
        assert old is not None
        old.retire.set()
        await old.retired.wait()
        started = await self._start(fresh)
        if started.failed is None:
            self.current, self.configs = started, configs
            self._announce("reloaded")
            self._follow_maps(started)
        else:
            say(f"the changed config failed to start ({_one_line(started.failed)}); restarting the previous one")
            try:
                again = await self._start(self._runtime(self.configs))
                failure: Exception | None = again.failed
            except Exception as exc:
                again, failure = started, exc
            self.current = again
            if failure is None:
                self._announce("restarted")
            else:
                say(f"the previous config failed to start too ({_one_line(failure)}); no bus runs until the files are fixed")
        if old.handed_over and old.waiting:
            say(f"the previous config handed {old.waiting} pending delivery(ies) over through {_states(old.runtime)}")
        elif old.waiting and not old.ended.is_set():
            say(f"the previous config goes on delivering {old.waiting} accepted event(s) in the background")

    # -- stdin -------------------------------------------------------------------------------

    async def _read_stdin(self) -> None:
        reader = LineReader(0, MAX_LINE_BYTES)
        while True:
            with anyio.CancelScope() as scope:
                # Only the wait for input is cancelled by a stop, never a put under way.
                self._stdin_scope = scope
                if self.stopping:
                    scope.cancel()
                try:
                    raw = await reader.readline()
                except EOFError:
                    say(f"stdin closed after {self.stdin}")
                    return
                except OSError as exc:
                    say(f"stdin cannot be read ({exc.strerror or exc}) after {self.stdin}")
                    return
            self._stdin_scope = None
            if scope.cancelled_caught:
                unread = f"; {reader.buffered} line(s) read were not put" if reader.buffered else ""
                say(f"stdin not read further after {self.stdin}{unread}")
                return
            await self._take_line(raw)

    async def _take_line(self, raw: bytes | None) -> None:
        self.stdin.lines += 1
        number = self.stdin.lines
        try:
            problem = await self._put_line(raw)
        except Exception as exc:
            # Whatever a line does (it is the one thing nobody vetted), it costs that line only.
            problem = f"not put: {_one_line(exc)}"
        if problem is not None:
            self.stdin.rejected += 1
            say(f"stdin line {number}: {_printable(problem)}")

    async def _put_line(self, raw: bytes | None) -> str | None:
        """Put a line's events; ``None`` when all were accepted (or the line is blank), else why not."""
        if raw is None:
            return f"longer than {MAX_LINE_BYTES} bytes"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"not valid UTF-8 (byte {exc.start + 1})"
        if not text.strip():
            self.stdin.blank += 1
            return None
        try:
            value = json.loads(text)
        except RecursionError:
            return "not valid JSON: nested too deeply"
        except json.JSONDecodeError as exc:
            return f"not valid JSON: {exc.msg} (column {exc.colno})"
        items = value if isinstance(value, list) else [value]
        if not items:
            return "an empty array holds no events"
        entries = []
        for index, item in enumerate(items, 1):
            try:
                entries.append(to_entry(item))
            except EventBusError as exc:
                return f"event {index}: {exc}" if len(items) > 1 else str(exc)
        problems: list[str] = []
        for index, entry in enumerate(entries, 1):
            problem = await self._put_entry(entry)
            if problem is None:
                self.stdin.events += 1
            else:
                problems.append(f"event {index}: {problem}" if len(entries) > 1 else problem)
        if not problems:
            return None
        if len(entries) == 1:
            return f"not put: {problems[0]}"
        return f"{len(problems)} of {len(entries)} events not put: {'; '.join(problems)}"

    async def _put_entry(self, entry: dict[str, Any]) -> str | None:
        name = entry.pop("EventBusName", None)
        if name is not None and not isinstance(name, str):
            return f"EventBusName must be a string, not {type(name).__name__}"
        if name and _BUS_ARN_MARK in name:
            name = name.rsplit(_BUS_ARN_MARK, 1)[1]
        async with self.gate:
            assert self.current is not None
            try:
                bus = self.current.runtime.bus(name or self.default_bus)
                response = await bus.put_events([entry])
            except EventBusError as exc:
                return str(exc)
        result = response["Entries"][0]
        if "ErrorCode" in result:
            return f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}"
        return None


# -- helpers -----------------------------------------------------------------------------------


def _refusal(running: list[LoadedConfig], changed: list[LoadedConfig]) -> str | None:
    """Why a reload is refused: it would remove every bus, or declares nothing at all, and no file
    says so with ``buses: {}`` (an editor's save in progress can leave a file empty for a moment)."""
    explicit = any(isinstance(c.document.data, dict) and c.document.data.get("buses") == {} for c in changed)
    if explicit:
        return None
    buses = sum(len(c.model.buses) for c in changed)
    pipes = sum(len(c.model.pipes) + len(c.model.maps) for c in changed)
    had = sum(len(c.model.buses) + len(c.model.pipes) + len(c.model.maps) for c in running)
    if buses == 0 and pipes == 0 and had:
        return "the changed config declares nothing (an empty or half-saved file?); write 'buses: {}' to stop every bus"
    if buses == 0 and any(c.model.buses for c in running):
        return "the changed config declares no buses (a half-saved file?); write 'buses: {}' to stop every bus"
    return None


def _states(runtime: Runtime) -> str:
    """Where a durable runtime keeps its buses (state files, JetStream servers)."""
    places = {runtime.backend_of(config).location(config.file) for config in runtime.configs}
    return ", ".join(sorted(places)) or "the state file"


def _fingerprint(files: Sequence[str]) -> tuple[str, ...]:
    """A digest of each file's content (``-`` when it cannot be read)."""
    digests = []
    for name in files:
        try:
            digests.append(hashlib.sha256(Path(name).read_bytes()).hexdigest())
        except OSError:
            digests.append("-")
    return tuple(digests)


def write_abandoned(path: str | None, leftovers: Sequence[tuple[str, dict[str, Any]]]) -> str | None:
    """One JSON line a leftover event (``{"bus": ..., "event": ...}``); the file's path, or ``None``."""
    name = path or f"eventbus-abandoned-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.jsonl"
    candidates = [Path(name)]
    if path is None:
        import tempfile

        candidates.append(Path(tempfile.gettempdir()) / name)
    lines = "".join(json.dumps({"bus": bus, "event": event}, ensure_ascii=True) + "\n" for bus, event in leftovers)
    for candidate in candidates:
        try:
            with candidate.open("a", encoding="utf-8") as out:
                out.write(lines)
        except (OSError, ValueError):
            continue
        return str(candidate)
    return None


def say(message: str) -> None:
    # A status line that cannot be written (stderr closed) must not stop the run either.
    with contextlib.suppress(OSError, ValueError):
        _say(message)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _printable(text: str, limit: int = 500) -> str:
    """One line of printable text: a reason may quote input (control characters, lone surrogates)."""
    out = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text[: limit + 1])
    return out if len(out) <= limit else out[:limit] + "..."
