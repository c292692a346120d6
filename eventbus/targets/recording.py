"""A target that remembers what it received, for tests: assert on it or wait for it.

Selectors are EventBridge patterns (a dict or its JSON text, matched with
``eventbus.patterns.Pattern``) or plain predicates over the parsed payload.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import anyio

from eventbus.targets._common import parse_payload
from eventbus.targets.base import DeliveryContext, TargetConfig

__all__ = ["Received", "RecordingTarget", "RecordingTargetConfig", "recording_target"]

Selector = Callable[[Any], bool] | dict[str, Any] | str


@dataclass(frozen=True, slots=True)
class Received:
    """One payload as the target got it."""

    payload: Any
    raw: str
    context: DeliveryContext


class RecordingTarget:
    """Keeps every payload it is given; optionally fails on purpose (``fail_next``)."""

    max_batch_size: int = 10_000

    def __init__(self, name: str = "", *, response: Any = None) -> None:
        self.name = name
        #: What ``deliver`` returns (pipes read it, e.g. as an enrichment result).
        self.response = response
        self.received: list[Received] = []
        self.deliveries: list[tuple[list[str], DeliveryContext]] = []
        self._failures: list[BaseException] = []
        self._changed: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"RecordingTarget({self.name!r}, received={len(self.received)})"

    @property
    def payloads(self) -> list[Any]:
        """The parsed payloads, in arrival order."""
        return [r.payload for r in self.received]

    def fail_next(self, error: BaseException, times: int = 1) -> None:
        """Make the next ``times`` deliveries raise ``error`` (nothing is recorded for them)."""
        self._failures.extend([error] * times)

    def clear(self) -> None:
        self.received.clear()
        self.deliveries.clear()

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> Any:
        if self._failures:
            raise self._failures.pop(0)
        self.deliveries.append((list(payloads), context))
        self.received.extend(Received(parse_payload(p), p, context) for p in payloads)
        if self._changed is not None:
            self._changed.set()
        return self.response

    async def aclose(self) -> None:
        return None

    def matching(self, selector: Selector) -> list[Any]:
        """The received payloads that ``selector`` accepts."""
        test = _compile(selector)
        return [p for p in self.payloads if test(p)]

    def assert_received(self, selector: Selector, count: int | None = None) -> list[Any]:
        """Assert that ``count`` payloads (or, with ``None``, at least one) match; return them."""
        found = self.matching(selector)
        if (count is None and not found) or (count is not None and len(found) != count):
            wanted = "at least 1" if count is None else str(count)
            raise AssertionError(
                f"{self!r}: expected {wanted} payload(s) matching {_describe(selector)}, "
                f"found {len(found)}. Received: {_preview(self.payloads)}"
            )
        return found

    async def wait_for(self, selector: Selector, count: int = 1, timeout: float = 5) -> list[Any]:
        """Wait until at least ``count`` payloads match; ``AssertionError`` after ``timeout`` s."""
        test = _compile(selector)
        with anyio.move_on_after(timeout):
            while True:
                found = [p for p in self.payloads if test(p)]
                if len(found) >= count:
                    return found
                # Waiters share one event; a delivery sets it and the next wait makes a new one.
                if self._changed is None or self._changed.is_set():
                    self._changed = anyio.Event()
                await self._changed.wait()
        found = [p for p in self.payloads if test(p)]
        raise AssertionError(
            f"{self!r}: waited {timeout:g} s for {count} payload(s) matching {_describe(selector)}, "
            f"found {len(found)}. Received: {_preview(self.payloads)}"
        )


class RecordingTargetConfig(TargetConfig):
    """``name``: the recording target to deliver to (see ``recording_target``)."""

    kind: ClassVar[str] = "recording"

    name: str

    def build(self) -> RecordingTarget:
        return recording_target(self.name)


_by_name: dict[str, RecordingTarget] = {}


def recording_target(name: str) -> RecordingTarget:
    """The process-wide recording target called ``name``, created on first use.

    This is how a test reaches the target a config file declared as ``kind: recording``.
    """
    if name not in _by_name:
        _by_name[name] = RecordingTarget(name)
    return _by_name[name]


def _compile(selector: Selector) -> Callable[[Any], bool]:
    if callable(selector):
        return selector
    from eventbus.patterns import Pattern  # type: ignore[attr-defined,unused-ignore]

    pattern = Pattern(selector)
    return lambda payload: isinstance(payload, dict) and bool(pattern.matches(payload))


def _describe(selector: Selector) -> str:
    if callable(selector):
        return getattr(selector, "__name__", repr(selector))
    return selector if isinstance(selector, str) else json.dumps(selector)


def _preview(payloads: list[Any], limit: int = 5) -> str:
    shown = [json.dumps(p, default=str)[:200] for p in payloads[-limit:]]
    more = f" (last {limit} of {len(payloads)})" if len(payloads) > limit else ""
    return "[" + ", ".join(shown) + "]" + more
