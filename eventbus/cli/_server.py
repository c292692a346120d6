"""What ``eventbus run`` runs: the buses of the config files, reloads, signals and stdin events."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import anyio

from eventbus.cli._console import print_problems, say
from eventbus.config import ConfigErrors, LoadedConfig, Runtime, load_configs
from eventbus.config.entries import parse_events
from eventbus.errors import EventBusError, InvalidEventError

__all__ = ["Server"]


class Server:
    """One task owns the buses (they must be entered and left by the same task); helpers ask it to
    reload or stop, and hold the lock while they put so a swap never happens under a put."""

    def __init__(self, files: list[str], configs: list[LoadedConfig], bus: str | None) -> None:
        self.files = files
        self.default_bus = bus
        self.runtime = Runtime(configs)
        self.configs = configs
        self.next_configs: list[LoadedConfig] = []
        self.lock = anyio.Lock()
        self.stopping = False
        self.next_runtime: Runtime | None = None
        self.wake = anyio.Event()

    async def serve(self, watch: bool, stdin: bool) -> None:
        async with anyio.create_task_group() as helpers:
            await self.lock.acquire()
            try:
                await self.runtime.__aenter__()
                self._announce("running")
                helpers.start_soon(self._signals)
                if watch:
                    helpers.start_soon(self._watch)
                if stdin:
                    helpers.start_soon(self._read_stdin)
                while True:
                    self.lock.release()
                    await self.wake.wait()
                    await self.lock.acquire()
                    self.wake = anyio.Event()
                    if self.stopping:
                        say("stopping: draining accepted events")
                        await self.runtime.__aexit__(None, None, None)
                        say("stopped")
                        return
                    fresh, self.next_runtime = self.next_runtime, None
                    assert fresh is not None
                    await self.runtime.__aexit__(None, None, None)
                    try:
                        await fresh.__aenter__()
                    except Exception as exc:
                        # A source that cannot open, say: go back to what ran before.
                        say(
                            f"the changed config failed to start ({type(exc).__name__}: {exc}); restarting the previous one"
                        )
                        fresh = Runtime(self.configs)
                        await fresh.__aenter__()
                        self.runtime = fresh
                        self._announce("restarted")
                        continue
                    self.runtime, self.configs = fresh, self.next_configs
                    self._announce("reloaded")
            finally:
                if self.lock.locked():
                    self.lock.release()
                helpers.cancel_scope.cancel()

    def _announce(self, verb: str) -> None:
        buses = ", ".join(
            f"{name} ({len(bus.list_rules())} rule(s))" for name, bus in sorted(self.runtime.buses.items())
        )
        pipes = f"; pipes: {', '.join(sorted(self.runtime.pipes))}" if self.runtime.pipes else ""
        say(f"{verb}: {buses or 'no buses'}{pipes}")

    async def _signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
            async for signum in received:
                say(f"{signal.Signals(signum).name} received")
                self.stopping = True
                self.wake.set()
                return

    async def _watch(self) -> None:
        import watchfiles

        wanted = {Path(f).resolve() for f in self.files}
        folders = sorted({str(p.parent) for p in wanted})
        async for changes in watchfiles.awatch(*folders, debounce=200, step=50):
            if any(Path(path).resolve() in wanted for _, path in changes):
                self._reload()

    def _reload(self) -> None:
        try:
            configs = load_configs(self.files)
            fresh = Runtime(configs)
        except ConfigErrors as exc:
            print_problems(exc)
            say("the changed config is not valid; the running config stays")
            return
        except EventBusError as exc:
            say(f"the changed config cannot be built ({exc}); the running config stays")
            return
        self.next_runtime, self.next_configs = fresh, configs
        self.wake.set()

    async def _read_stdin(self) -> None:
        count = 0
        while True:
            line = await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
            if not line:
                say(f"stdin closed after {count} event(s)")
                return
            if not line.strip():
                continue
            try:
                entries = parse_events(line, "stdin")
            except InvalidEventError as exc:
                say(str(exc))
                continue
            for entry in entries:
                count += await self._put(entry)

    async def _put(self, entry: dict[str, Any]) -> int:
        async with self.lock:
            try:
                bus = self.runtime.bus(entry.pop("EventBusName", None) or self.default_bus)
                response = await bus.put_events([entry])
            except EventBusError as exc:
                say(f"event not put: {exc}")
                return 0
        result = response["Entries"][0]
        if "ErrorCode" in result:
            say(f"event not put: {result['ErrorCode']}: {result.get('ErrorMessage', '')}")
            return 0
        return 1
