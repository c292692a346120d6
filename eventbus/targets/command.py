"""The command target: run an executable with the payload on stdin, its stdout as the response.

Each invocation runs in its own process group, so a timeout kills the command together with
whatever it started (a shell script's children would otherwise live on).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import anyio
from anyio.abc import ByteReceiveStream, Process
from pydantic import Field, field_validator

from eventbus.errors import (
    NonRetryableError,
    ResourceNotFoundError,
    RetryableError,
    TargetPermissionError,
    TargetTimeoutError,
)
from eventbus.targets._common import invocation_bodies, maybe_json, tail
from eventbus.targets.base import DeliveryContext, TargetConfig

__all__ = ["CommandTarget", "CommandTargetConfig"]

#: Output beyond this is cut (from the front for stderr, whose end holds the useful part).
_MAX_STDOUT = 16 * 1024 * 1024
_MAX_STDERR = 64 * 1024


class CommandTargetConfig(TargetConfig):
    """Run ``command`` (an argv list, no shell) once per invocation."""

    kind: ClassVar[str] = "command"
    batches_in_pipes: ClassVar[bool] = True

    command: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    inherit_env: bool = True
    cwd: str | None = None
    timeout: float | None = Field(default=60.0, gt=0)
    non_retryable_exit_codes: list[int] = Field(default_factory=list)

    @field_validator("command")
    @classmethod
    def _not_blank(cls, value: list[str]) -> list[str]:
        if not value[0]:
            raise ValueError("the executable (first item of command) must not be empty")
        return value

    def build(self) -> CommandTarget:
        return CommandTarget(
            self.command,
            env=self.env,
            inherit_env=self.inherit_env,
            cwd=self.cwd,
            timeout=self.timeout,
            non_retryable_exit_codes=self.non_retryable_exit_codes,
        )


class CommandTarget:
    """Feeds each invocation's JSON to ``command`` on stdin; a non-zero exit is a failure."""

    max_batch_size: int = 10_000
    #: A rule's events are separate calls: the bus hands them over one at a time.
    per_payload_calls: bool = True

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float | None = 60.0,
        non_retryable_exit_codes: Sequence[int] = (),
    ) -> None:
        if not command:
            raise ValueError("command must name an executable")
        self.command = [str(part) for part in command]
        self.env = dict(env or {})
        self.inherit_env = inherit_env
        self.cwd = Path(cwd) if cwd is not None else None
        self.timeout = timeout
        self.non_retryable_exit_codes = frozenset(non_retryable_exit_codes)

    def __repr__(self) -> str:
        return f"CommandTarget({self.command!r})"

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> Any:
        batched, bodies = invocation_bodies(payloads, context)
        results = [await self._run(body) for body in bodies]
        return results[0] if batched else results

    async def aclose(self) -> None:
        return None

    def _environment(self) -> dict[str, str] | None:
        if self.inherit_env:
            return {**os.environ, **self.env} if self.env else None
        return dict(self.env)

    async def _run(self, body: str) -> Any:
        name = self.command[0]
        try:
            process = await anyio.open_process(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.cwd,
                env=self._environment(),
                start_new_session=True,
            )
        except FileNotFoundError:
            where = f" (cwd {self.cwd})" if self.cwd else ""
            raise ResourceNotFoundError(f"Command not found: {name}{where}") from None
        except PermissionError:
            raise TargetPermissionError(f"Command is not executable: {name}") from None
        except OSError as exc:
            raise NonRetryableError(f"Cannot start command {name}: {exc}") from None

        stdout = bytearray()
        stderr = bytearray()
        scope = anyio.CancelScope()
        try:
            with anyio.move_on_after(self.timeout) as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._feed, process, body.encode())
                    assert process.stdout is not None and process.stderr is not None
                    tg.start_soon(_collect, process.stdout, stdout, _MAX_STDOUT, False)
                    tg.start_soon(_collect, process.stderr, stderr, _MAX_STDERR, True)
                await process.wait()
        finally:
            # On a timeout (or cancellation) the whole group goes: children may hold the pipes.
            if scope.cancel_called or process.returncode is None:
                _kill_group(process)
            with anyio.CancelScope(shield=True):
                await process.wait()
                await process.aclose()
        timed_out = scope.cancelled_caught

        if timed_out:
            raise TargetTimeoutError(f"Command {name} did not finish within {self.timeout:g} seconds; killed")
        code = process.returncode
        if code != 0:
            detail = tail(bytes(stderr)) or "(no stderr)"
            how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with {code}"
            message = f"Command {name} {how}: {detail}"
            if code in self.non_retryable_exit_codes:
                raise NonRetryableError(message)
            raise RetryableError(message)
        return maybe_json(stdout.decode("utf-8", "replace"))

    @staticmethod
    async def _feed(process: Process, data: bytes) -> None:
        assert process.stdin is not None
        try:
            await process.stdin.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, BrokenPipeError):
            pass  # the command exited without reading all its input: its exit status tells
        finally:
            await process.stdin.aclose()


async def _collect(stream: ByteReceiveStream, into: bytearray, limit: int, keep_end: bool) -> None:
    async for chunk in stream:
        into.extend(chunk)
        if len(into) > limit:
            if keep_end:
                del into[: len(into) - limit]
            else:
                del into[limit:]


def _kill_group(process: Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:
        process.kill()
