"""From a validated config to running buses: ``async with Runtime(configs) as runtime:``.

Every bus is an ``EventBus`` with its rules and targets put as PutRule/PutTargets would put them.
Targets are built from their kind's ``TargetConfig``; ``target_factory`` replaces that (config
tests swap in recording targets), ``observe`` hears of every delivery that succeeded and
``observe_failure`` of every attempt that failed (the command line reports where each event
went), ``instrument`` wraps every target (the server's metrics time deliveries). ``pipes`` says which pipes to build, and ``adapt_pipe`` may change a pipe's config first
(config tests give it a source of their own), as ``adapt_bus`` may a bus's settings. ``maps``
says which maps to build, and ``adapt_map`` may change a map's config first (config tests give it
a file of rows of their own); they start running when the runtime is entered.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from eventbus.bus import BusConfig, EventBus
from eventbus.bus.delivery.retry import RetryPolicy
from eventbus.bus.rules import RuleTarget
from eventbus.config.backends import BackendSpec, MemoryBackend
from eventbus.config.errors import ConfigErrors, KeyPath, Problem
from eventbus.config.schema import REF, kind_of
from eventbus.config.validate import LoadedConfig, add_python_path, target_id
from eventbus.errors import ConfigError, EventBusError, ResourceMissingError
from eventbus.patterns import Pattern
from eventbus.targets.base import DeliveryContext, Target, TargetConfig

if TYPE_CHECKING:
    from eventbus.maps import MapConfig
    from eventbus.pipes import PipeConfig

__all__ = ["BusAdapter", "Delivered", "DeliveryFailed", "MapAdapter", "PipeAdapter", "Runtime", "TargetFactory"]

#: ``(address, config) -> Target``; the address reads ``bus/rule/target-id`` (``/dead-letter`` added).
TargetFactory = Callable[[str, TargetConfig], Target]
#: ``(pipe name, config) -> config``: what the pipe is built from instead (its stages are still
#: swapped by ``target_factory`` afterwards).
PipeAdapter = Callable[[str, "PipeConfig"], "PipeConfig"]
#: ``(bus name, settings) -> settings`` the bus runs with instead (config tests shorten backoff).
BusAdapter = Callable[[str, BusConfig], BusConfig]
#: ``(map name, config) -> config``: what the map is built from instead (its stages are still
#: swapped by ``target_factory`` afterwards).
MapAdapter = Callable[[str, "MapConfig"], "MapConfig"]


@dataclass(frozen=True, slots=True)
class Delivered:
    """One successful delivery: to which target, which events, what payloads."""

    address: str
    payloads: tuple[str, ...]
    context: DeliveryContext


@dataclass(frozen=True, slots=True)
class DeliveryFailed:
    """One delivery attempt that failed (the retry policy may try again): where, which events, why."""

    address: str
    context: DeliveryContext
    #: ``ErrorType: message``, one line.
    error: str


class _Observed:
    """A target that tells ``observe`` about each delivery it completed and ``observe_failure``
    about each attempt that failed."""

    def __init__(
        self,
        target: Target,
        address: str,
        observe: Callable[[Delivered], None] | None,
        observe_failure: Callable[[DeliveryFailed], None] | None = None,
    ) -> None:
        self.target = target
        self.address = address
        self.observe = observe
        self.observe_failure = observe_failure
        self.max_batch_size = target.max_batch_size
        self.per_payload_calls = bool(getattr(target, "per_payload_calls", False))

    def __repr__(self) -> str:
        return f"{self.target!r} at {self.address}"

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> Any:
        try:
            response = await self.target.deliver(payloads, context)
        except Exception as exc:
            if self.observe_failure is not None:
                self.observe_failure(DeliveryFailed(self.address, context, _reason(exc, with_type=True)))
            raise
        if self.observe is not None:
            self.observe(Delivered(self.address, tuple(payloads), context))
        return response

    async def aclose(self) -> None:
        await self.target.aclose()


class _SharedTarget:
    """A named target (``targets:``, used with ``ref``) built once for all its uses, as an API
    destination is one resource in AWS: one rate limit, one HTTP client, one file to rotate.
    Each use closes its handle; the target closes when the last one does, so a bus that stops
    first cannot close it under another that still delivers."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.uses = 0

    def use(self) -> _SharedUse:
        self.uses += 1
        return _SharedUse(self)

    async def release(self) -> None:
        self.uses -= 1
        if self.uses == 0:
            await self.target.aclose()


class _SharedUse:
    """One use of a ``_SharedTarget``: delivers through it, closes only its own share."""

    def __init__(self, shared: _SharedTarget) -> None:
        self.shared = shared
        self.max_batch_size = shared.target.max_batch_size
        self.per_payload_calls = bool(getattr(shared.target, "per_payload_calls", False))
        #: A function's one-value invocation, passed through (a map calls it for each row).
        self.invoke: Callable[[Any], Awaitable[Any]] | None = getattr(shared.target, "invoke", None)
        self._closed = False

    def __repr__(self) -> str:
        return f"{self.shared.target!r} (shared)"

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> Any:
        return await self.shared.target.deliver(payloads, context)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self.shared.release()


class Runtime:
    """The buses of one or more config files, started and stopped together."""

    def __init__(
        self,
        configs: Sequence[LoadedConfig],
        *,
        target_factory: TargetFactory | None = None,
        observe: Callable[[Delivered], None] | None = None,
        pipes: bool | Collection[str] = True,
        adapt_pipe: PipeAdapter | None = None,
        adapt_bus: BusAdapter | None = None,
        observe_failure: Callable[[DeliveryFailed], None] | None = None,
        instrument: Callable[[str, Target], Target] | None = None,
        maps: bool | Collection[str] = True,
        adapt_map: MapAdapter | None = None,
        backend: BackendSpec | None = None,
        default_backend: BackendSpec | None = None,
    ) -> None:
        self.configs = list(configs)
        #: ``(address, target) -> target`` wrapped around every target built (metrics time them).
        self.instrument = instrument
        #: Where every bus keeps its state, whatever the files say (``eventbus test``: memory).
        self.backend = backend
        #: Where the buses of a file that names no ``runtime.backend`` keep theirs.
        self.default_backend = default_backend or MemoryBackend()
        self.target_factory = target_factory
        self.observe = observe
        self.observe_failure = observe_failure
        self.adapt_pipe = adapt_pipe
        self.adapt_bus = adapt_bus
        self.adapt_map = adapt_map
        self.buses: dict[str, EventBus] = {}
        #: The archives each bus's file declares (made or updated when the buses start).
        self.archives: dict[str, dict[str, Any]] = {}
        #: The pipes, by name: all of them, none (``pipes=False``), or those ``pipes`` names.
        self.pipes: dict[str, Any] = {}
        #: The maps, by name (as ``maps`` says, like ``pipes``); they start with the runtime.
        self.maps: dict[str, Any] = {}
        self._where: KeyPath = ()
        #: Every target built, by address.
        self.targets: dict[str, Target] = {}
        #: The longest a rule target's retry policy keeps an event (``maximum_event_age_in_seconds``).
        self.retry_horizon = 0.0
        self._stack: contextlib.AsyncExitStack | None = None
        self._pipe_stack: contextlib.AsyncExitStack | None = None
        self._map_stack: contextlib.AsyncExitStack | None = None
        #: Named targets built so far, by (config model, name): one instance for all their uses.
        self._shared: dict[tuple[int, str], _SharedTarget] = {}
        add_python_path(self.configs)
        wanted = None if isinstance(pipes, bool) else set(pipes)
        wanted_maps = None if isinstance(maps, bool) else set(maps)
        problems: list[Problem] = []
        for config in self.configs:
            problems += self._build(config)
            if pipes is not False:
                problems += self._build_pipes(config, wanted)
            if maps is not False:
                problems += self._build_maps(config, wanted_maps)
        if problems:
            # A target that cannot be built (a function that does not import, a file that cannot
            # be opened) is a config problem too, reported like the others.
            raise ConfigErrors(problems)

    def backend_of(self, config: LoadedConfig) -> BackendSpec:
        """The backend the buses of ``config`` run on."""
        if self.backend is not None:
            return self.backend
        named: BackendSpec | None = config.model.runtime.backend
        return named if named is not None else self.default_backend

    @property
    def durable(self) -> bool:
        """Whether every bus keeps what it accepted across processes (a reload hands over through it)."""
        return bool(self.configs) and all(self.backend_of(c).durable for c in self.configs)

    def bus(self, name: str | None = None) -> EventBus:
        """The bus called ``name``; without one, the only bus (an error when there are several)."""
        if name is None:
            if len(self.buses) != 1:
                raise ConfigError(
                    f"name the bus: the config declares {len(self.buses)} ({', '.join(sorted(self.buses)) or 'none'})"
                )
            return next(iter(self.buses.values()))
        try:
            return self.buses[name]
        except KeyError:
            raise ConfigError(
                f"no bus named {name!r}; the config declares {', '.join(sorted(self.buses)) or 'none'}"
            ) from None

    async def __aenter__(self) -> Runtime:
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        pipes = contextlib.AsyncExitStack()
        await pipes.__aenter__()
        maps = contextlib.AsyncExitStack()
        await maps.__aenter__()
        try:
            # Buses first, pipes, then maps: each may deliver to what started before it, so it
            # stops before them.
            for bus in self.buses.values():
                await stack.enter_async_context(bus)
            self._put_archives()
            for pipe in self.pipes.values():
                await pipes.enter_async_context(pipe)
            for run in self.maps.values():
                await maps.enter_async_context(run)
        except BaseException:
            await maps.aclose()
            await pipes.aclose()
            await stack.aclose()
            raise
        self._stack, self._pipe_stack, self._map_stack = stack, pipes, maps
        return self

    def _put_archives(self) -> None:
        """Create the archives the files declare, or update them to what the files say (archives
        made by other means, an API or the command line, are left alone)."""
        for bus_name, archives in self.archives.items():
            bus = self.buses[bus_name]
            for name, spec in archives.items():
                try:
                    current = bus.describe_archive(name)
                except ResourceMissingError:
                    bus.create_archive(
                        name,
                        event_pattern=spec.pattern,
                        retention_days=spec.retention_days,
                        description=spec.description,
                    )
                    continue
                if current.bus != bus_name:
                    raise ConfigError(
                        f"archive {name!r} of bus {bus_name} exists in the state file for bus {current.bus}: "
                        "archive names are unique per state file; rename one"
                    )
                pattern = None if spec.pattern is None else json.dumps(Pattern(spec.pattern).to_dict(), separators=(",", ":"))
                if (current.event_pattern, current.retention_days, current.description) != (
                    pattern,
                    spec.retention_days,
                    spec.description,
                ):
                    bus.update_archive(
                        name,
                        event_pattern=spec.pattern,
                        retention_days=spec.retention_days,
                        description=spec.description,
                    )

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        """Stop every pipe, then every bus; each bus drains what it accepted first (up to its
        ``drain_timeout``)."""
        assert self._stack is not None
        stack, self._stack = self._stack, None
        try:
            await self._stop_pipes()
        finally:
            result = await stack.__aexit__(exc_type, exc, tb)
        return result

    async def stop_taking(self) -> None:
        """Take no more events: maps still running are aborted, the pipes stop (their batches in
        progress finish first) and the buses refuse new events and stop their schedules, but go
        on delivering what they accepted until the runtime exits. A new runtime with buses of the
        same names may start meanwhile: this is how ``eventbus run`` reloads. Must be called by
        the task that entered."""
        await self._stop_pipes()
        for bus in self.buses.values():
            bus.stop_taking()

    async def _stop_pipes(self) -> None:
        maps, self._map_stack = self._map_stack, None
        try:
            if maps is not None:
                await maps.aclose()
        finally:
            pipes, self._pipe_stack = self._pipe_stack, None
            if pipes is not None:
                await pipes.aclose()

    async def wait_maps(self, timeout: float | None = None) -> dict[str, Any]:
        """The summary of each map (``MapSummary``), by name, once every map has ended;
        ``TimeoutError`` after ``timeout`` seconds."""
        import anyio

        with anyio.fail_after(timeout):
            return {name: await run.wait() for name, run in self.maps.items()}

    def shorten_drain(self, seconds: float) -> None:
        """Let no bus drain for longer than ``seconds`` when the runtime exits (a command's own
        deadline comes first)."""
        for bus in self.buses.values():
            if bus.config.drain_timeout > seconds:
                bus.config = bus.config.model_copy(update={"drain_timeout": max(0.0, seconds)})

    async def wait_quiet(self, timeout: float | None = None) -> bool:
        """Until no delivery is under way (retries waiting for their time do not count): what a
        durable runtime waits for before it hands its buses over to a successor through the
        state file; ``False`` if ``timeout`` came first."""
        import anyio

        with anyio.move_on_after(timeout):
            while any(bus.rule_table.delivering() for bus in self.buses.values()):
                await anyio.sleep(0.01)
            return True
        return False

    def pending(self) -> int:
        """Events the buses accepted and have not delivered or dead-lettered yet."""
        return sum(bus.pending() for bus in self.buses.values())

    def pending_events(self) -> list[tuple[str, dict[str, Any]]]:
        """``(bus name, event)`` for each event ``pending()`` counts, oldest first per bus."""
        return [(name, event) for name, bus in self.buses.items() for event in bus.pending_events()]

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Until no bus holds an undelivered event; ``False`` if ``timeout`` came first."""
        import anyio

        with anyio.move_on_after(timeout):
            delay = 0.005
            while any(bus.pending() for bus in self.buses.values()):
                await anyio.sleep(delay)
                # A long wait (a reload's drain behind slow retries) need not poll 200 times a second.
                delay = min(delay * 1.5, 0.1)
            return True
        return False

    # -- building ---------------------------------------------------------------------------

    def _build(self, config: LoadedConfig) -> list[Problem]:
        problems: list[Problem] = []
        model = config.model
        for bus_name, spec in model.buses.items():
            settings = model.defaults.bus.model_copy(
                update={k: getattr(spec.settings, k) for k in spec.settings.model_fields_set}
            )
            bus_config = BusConfig.model_validate(settings.model_dump())
            if self.adapt_bus is not None:
                bus_config = self.adapt_bus(bus_name, bus_config)
            backend = self.backend_of(config)
            log = backend.event_log(bus_name, bus_config, config_file=config.file)
            bus = EventBus(bus_name, config=bus_config, log=log)
            if spec.archives and not backend.keeps_archives:
                problems.append(
                    config.document.problem(
                        ("buses", bus_name, "archives"),
                        f"archives are not kept on the {getattr(backend, 'type', 'chosen')} backend yet "
                        "(each worker would archive only the events it routed): remove them, or run "
                        "this bus on runtime.backend: sqlite",
                    )
                )
            elif spec.archives:
                self.archives[bus_name] = dict(spec.archives)
            for rule_name, rule in spec.rules.items():
                where: KeyPath = ("buses", bus_name, "rules", rule_name)
                try:
                    bus.put_rule(
                        rule_name,
                        rule.pattern,
                        schedule_expression=rule.schedule,
                        state=rule.state,
                        description=rule.description,
                    )
                    targets = []
                    for index, entry in enumerate(rule.targets):
                        self._where = (*where, "targets", index)
                        targets.append(
                            self._rule_target(model, f"{bus_name}/{rule_name}", entry, index, rule.targets)
                        )
                    if targets:
                        bus.put_targets(rule_name, targets)
                except (EventBusError, ValueError, OSError) as exc:
                    problems.append(config.document.problem(self._where or where, _reason(exc)))
                self._where = ()
            self.buses[bus_name] = bus
        return problems

    def _build_pipes(self, config: LoadedConfig, wanted: set[str] | None) -> list[Problem]:
        problems: list[Problem] = []
        if not config.model.pipes:
            return problems
        from eventbus.pipes import Pipe

        for name, pipe_config in config.model.pipes.items():
            if wanted is not None and name not in wanted:
                continue
            update: dict[str, Any] = {}
            where: KeyPath = ("pipes", name)
            try:
                if self.adapt_pipe is not None:
                    pipe_config = self.adapt_pipe(name, pipe_config)
                for stage in ("target", "enrichment", "dead_letter"):
                    stage_config = getattr(pipe_config, stage)
                    where = ("pipes", name, stage)
                    address = f"pipe/{name}/{stage.replace('_', '-')}"
                    if kind_of(stage_config) == REF:
                        # {ref: NAME}: the named target, shared with every other use of it.
                        update[stage] = self._target(config.model, address, stage_config)
                    elif isinstance(stage_config, TargetConfig):
                        target = (
                            self.target_factory(address, stage_config)
                            if self.target_factory
                            else stage_config.build()
                        )
                        target = self._observed(target, address)
                        self.targets[address] = target
                        update[stage] = target
                where = ("pipes", name, "source")
                backend = self.backend_of(config)
                places = backend.places(name, config_file=config.file)
                self.pipes[name] = Pipe(
                    pipe_config.model_copy(update=update), name=name, places=places, share=backend.share(name)
                )
            except (EventBusError, ValueError, OSError) as exc:
                problems.append(config.document.problem(where, _reason(exc)))
        return problems

    def _build_maps(self, config: LoadedConfig, wanted: set[str] | None) -> list[Problem]:
        problems: list[Problem] = []
        if not config.model.maps:
            return problems
        from eventbus.maps import Map

        for name, map_config in config.model.maps.items():
            if wanted is not None and name not in wanted:
                continue
            update: dict[str, Any] = {}
            where: KeyPath = ("maps", name)
            try:
                if self.adapt_map is not None:
                    map_config = self.adapt_map(name, map_config)
                for stage in ("target", "reduce", "dead_letter"):
                    stage_config = getattr(map_config, stage)
                    where = ("maps", name, stage)
                    address = f"map/{name}/{stage.replace('_', '-')}"
                    if kind_of(stage_config) == REF:
                        update[stage] = self._target(config.model, address, stage_config)
                    elif isinstance(stage_config, TargetConfig):
                        # Not wrapped for ``observe``: a map calls a function target directly,
                        # once a row, and reports each row in its summary instead.
                        target = (
                            self.target_factory(address, stage_config)
                            if self.target_factory
                            else stage_config.build()
                        )
                        self.targets[address] = target
                        update[stage] = target
                where = ("maps", name, "source")
                # On a backend shared by several processes (JetStream), every one runs a part.
                spread = self.backend_of(config).spread(name)
                built = map_config.model_copy(update=update)
                self.maps[name] = spread(built) if spread is not None else Map(built, name=name)
            except (EventBusError, ValueError, OSError) as exc:
                problems.append(config.document.problem(where, _reason(exc)))
        return problems

    def _rule_target(
        self, model: Any, rule_address: str, entry: Any, index: int, entries: Sequence[Any]
    ) -> RuleTarget:
        tid = target_id(entry, index, entries)
        address = f"{rule_address}/{tid}"
        dead_spec = entry.dead_letter if entry.dead_letter is not None else model.defaults.dead_letter
        policy = entry.retry_policy or model.defaults.retry_policy or RetryPolicy()
        self.retry_horizon = max(self.retry_horizon, float(policy.maximum_event_age_in_seconds))
        return RuleTarget(
            id=tid,
            target=self._target(model, address, entry),
            input=entry.input,
            input_path=entry.input_path,
            input_transformer=entry.input_transformer.model_dump() if entry.input_transformer else None,
            retry_policy=policy,
            dead_letter=self._dead_letter(model, address, dead_spec),
            max_concurrency=entry.max_concurrency,
            queue_size=entry.queue_size,
        )

    def _dead_letter(self, model: Any, address: str, spec: Any) -> Target | None:
        if spec is None:
            return None
        self._where = (*self._where, "dead_letter")
        return self._target(model, f"{address}/dead-letter", spec)

    def build_target(self, config: LoadedConfig, address: str, entry: Any) -> Target:
        """A target entry of ``config`` (``{KIND: options}`` or ``{ref: NAME}``) built as the
        runtime builds its rules' targets: a named target is the one instance all its uses share,
        and ``instrument``, ``observe`` and ``target_factory`` apply. Whoever asked closes it."""
        return self._target(config.model, address, entry)

    def _target(self, model: Any, address: str, entry: Any) -> Target:
        kind = kind_of(entry)
        shared_name: str | None = None
        if kind == REF:
            shared_name = getattr(entry, REF)
            entry = model.targets[shared_name]
            kind = kind_of(entry)
        assert kind is not None
        config: TargetConfig = getattr(entry, kind)
        target: Target
        if self.target_factory is not None:
            # Config tests record each address on its own.
            target = self.target_factory(address, config)
        elif shared_name is not None:
            key = (id(model), shared_name)
            shared = self._shared.get(key)
            if shared is None:
                shared = self._shared[key] = _SharedTarget(config.build())
            target = shared.use()
        else:
            target = config.build()
        target = self._observed(target, address)
        self.targets[address] = target
        return target

    def _observed(self, target: Target, address: str) -> Target:
        if self.instrument is not None:
            target = self.instrument(address, target)
        if self.observe is None and self.observe_failure is None:
            return target
        return _Observed(target, address, self.observe, self.observe_failure)

    @property
    def running(self) -> bool:
        """Whether the runtime was entered (``async with``) and has not exited yet."""
        return self._stack is not None


def _reason(exc: BaseException, *, with_type: bool = False) -> str:
    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {text[0]}" if with_type else text[0]
