"""The EventBridge Pipes API, REST-JSON: CreatePipe, DescribePipe, ListPipes, UpdatePipe,
StartPipe, StopPipe, DeletePipe, over the library's ``Pipe``.

Each operation is the method and path botocore's model gives it (CreatePipe is
``POST /v1/pipes/{Name}``); errors are the status the model gives the code (``NotFoundException``
404, ``ConflictException`` 409, ``ValidationException`` 400), with ``x-amzn-ErrorType`` and a
``{"message": ...}`` body. Source, enrichment and target are ARNs mapped as ``arns.py`` says; a
source may also be an SQS queue's name, and ``arn:eventbus:nats:REGION:ACCOUNT:stream/NAME``
reads a NATS JetStream stream. API pipes run in the server's task group, each in a task of its
own; the config's pipes may be started and stopped, not changed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventbus.server.errors import ApiError, from_library
from eventbus.server.model import service_model, timestamp
from eventbus.server.paging import page
from eventbus.server.state import ServerState
from eventbus.targets.arns import UnmappableArnError, parse_arn

__all__ = ["PipesApi"]

#: HTTP status of each error code, from the model (plus the wire's own).
_STATUS = {
    "ValidationException": 400,
    "NotFoundException": 404,
    "ConflictException": 409,
    "ServiceQuotaExceededException": 402,
    "ThrottlingException": 429,
    "InternalException": 500,
}


@dataclass(slots=True)
class PipeEntry:
    name: str
    pipe: Any
    request: dict[str, Any]
    desired: str
    owner: str  # "config" or "api"
    file: str | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    stop: anyio.Event | None = None
    ended: anyio.Event | None = None


class PipesApi:
    def __init__(self, state: ServerState, on_answer: Callable[[str, str], None] | None = None) -> None:
        self.state = state
        self.on_answer = on_answer
        self.model = service_model("pipes")
        self.entries: dict[str, PipeEntry] = {}
        for name, pipe in state.runtime.pipes.items():
            self.entries[name] = PipeEntry(
                name, pipe, {}, pipe.config.desired_state, "config", state.config_pipes.get(name)
            )
        self._tg: anyio.abc.TaskGroup | None = None

    def all_pipes(self) -> dict[str, Any]:
        return {name: entry.pipe for name, entry in self.entries.items()}

    def routes(self, guard: Callable[[Request], Awaitable[bytes]]) -> list[Route]:
        """One route a path; the method picks the operation (as the model's ``http`` says)."""
        by_path: dict[str, dict[str, str]] = {}
        for name, op in self.model.operations.items():
            by_path.setdefault(op["http"]["requestUri"].split("?")[0], {})[op["http"]["method"]] = name
        handlers = {
            "CreatePipe": self.create_pipe,
            "DescribePipe": self.describe_pipe,
            "ListPipes": self.list_pipes,
            "UpdatePipe": self.update_pipe,
            "StartPipe": self.start_pipe,
            "StopPipe": self.stop_pipe,
            "DeletePipe": self.delete_pipe,
        }
        routes = []
        for path, methods in by_path.items():
            path = path.replace("{resourceArn}", "{resourceArn:path}")

            async def endpoint(request: Request, methods: dict[str, str] = methods) -> Response:
                operation = methods.get(request.method, "-")
                return await self._answer(request, operation, handlers.get(operation), guard)

            routes.append(Route(path, endpoint, methods=sorted(methods)))
        return routes

    async def _answer(
        self,
        request: Request,
        operation: str,
        handler: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None,
        guard: Callable[[Request], Awaitable[bytes]],
    ) -> Response:
        try:
            body = await guard(request)
            if handler is None:
                raise ApiError(
                    "UnknownOperationException",
                    f"Operation {operation} is part of the Pipes API but not served by eventbus.",
                )
            params = self._params(request, operation, body)
            result = await handler(params)
            response = Response(json.dumps(result), media_type="application/json")
            code = "OK"
        except ApiError as exc:
            response, code = _error(exc), exc.code
        except Exception as exc:
            error = from_library(exc)
            if error.code not in _STATUS:
                error = ApiError("ValidationException", error.message)
            response, code = _error(error), error.code
        if self.on_answer is not None:
            self.on_answer(operation, code)
        return response

    def _params(self, request: Request, operation: str, body: bytes) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if body.strip():
            try:
                loaded = json.loads(body)
            except (ValueError, RecursionError):
                raise ApiError("ValidationException", "The request body is not valid JSON.") from None
            if not isinstance(loaded, dict):
                raise ApiError("ValidationException", "The request body must be a JSON object.")
            params.update(loaded)
        shape = self.model.shapes[self.model.input_shape(operation) or ""]
        for key, member in shape.get("members", {}).items():
            location, wire = member.get("location"), member.get("locationName", key)
            if location == "uri" and wire in request.path_params:
                params[key] = request.path_params[wire]
            elif location == "querystring" and wire in request.query_params:
                value: Any = request.query_params[wire]
                if self.model.shapes[member["shape"]]["type"] == "integer":
                    try:
                        value = int(value)
                    except ValueError:
                        raise ApiError("ValidationException", f"{wire} must be an integer.") from None
                params[key] = value
        self.model.check_input(operation, params)
        return params

    # -- lifecycle of API pipes --------------------------------------------------------------

    def bind(self, tg: anyio.abc.TaskGroup | None) -> None:
        self._tg = tg

    async def _host(self, entry: PipeEntry) -> None:
        if self._tg is None:
            raise ApiError("InternalException", "The server is not running.")
        entry.stop, entry.ended = anyio.Event(), anyio.Event()
        started = anyio.Event()
        failure: list[BaseException] = []

        async def host() -> None:
            assert entry.stop is not None and entry.ended is not None
            try:
                async with entry.pipe:
                    started.set()
                    await entry.stop.wait()
            except Exception as exc:
                failure.append(exc)
            finally:
                started.set()
                entry.ended.set()

        self._tg.start_soon(host)
        await started.wait()
        if failure:
            raise ApiError("ValidationException", f"Pipe {entry.name} could not start: {failure[0]}")

    async def stop_all(self) -> None:
        for entry in self.entries.values():
            if entry.stop is not None:
                entry.stop.set()
        for entry in self.entries.values():
            if entry.ended is not None:
                await entry.ended.wait()

    async def restore(self, docs: Mapping[str, dict[str, Any]]) -> None:
        for name, doc in docs.items():
            if name not in self.entries:
                try:
                    await self.create_pipe({**doc, "Name": name}, save=False)
                except ApiError:
                    continue

    # -- operations --------------------------------------------------------------------------

    async def create_pipe(self, params: dict[str, Any], *, save: bool = True) -> dict[str, Any]:
        name = params["Name"]
        if name in self.entries:
            raise ApiError("ConflictException", f"Pipe {name} already exists.")
        pipe = self._build(name, params)
        entry = PipeEntry(name, pipe, dict(params), params.get("DesiredState", "RUNNING"), "api")
        await self._host(entry)
        self.entries[name] = entry
        if save:
            self.state.store.save("pipe", name, params)
        return self._summary(entry)

    def _build(self, name: str, params: Mapping[str, Any]) -> Any:
        from eventbus.pipes import Pipe, PipeConfig

        source_params = params.get("SourceParameters") or {}
        sqs = source_params.get("SqsQueueParameters") or {}
        filters = [f["Pattern"] for f in (source_params.get("FilterCriteria") or {}).get("Filters", []) if "Pattern" in f]
        state = self.state
        try:
            target = state.build(f"pipe/{name}/target", state.resolver.target(params["Target"]))
            enrichment = None
            if params.get("Enrichment"):
                enrichment = state.build(f"pipe/{name}/enrichment", state.resolver.target(params["Enrichment"]))
            source = self._source(params["Source"])
        except UnmappableArnError as exc:
            raise ApiError("ValidationException", str(exc)) from None
        config = {
            "description": params.get("Description", ""),
            "desired_state": params.get("DesiredState", "RUNNING"),
            "source": source,
            "filter": filters,
            "enrichment": enrichment,
            "enrichment_input_template": (params.get("EnrichmentParameters") or {}).get("InputTemplate"),
            "target": target,
            "target_input_template": (params.get("TargetParameters") or {}).get("InputTemplate"),
            "log_level": (params.get("LogConfiguration") or {}).get("Level", "ERROR"),
            "account": state.account,
            "region": state.region,
        }
        if "BatchSize" in sqs:
            config["batch_size"] = sqs["BatchSize"]
        if "MaximumBatchingWindowInSeconds" in sqs:
            config["maximum_batching_window_in_seconds"] = sqs["MaximumBatchingWindowInSeconds"]
        try:
            pipe_config = PipeConfig.model_validate(config)
        except ValueError as exc:
            raise ApiError("ValidationException", from_library(exc).message) from None
        pipe = Pipe(pipe_config, name=name)
        pipe.source_arn = params["Source"]
        pipe.target_arn = params["Target"]
        if params.get("Enrichment"):
            pipe.enrichment_arn = params["Enrichment"]
        return pipe

    def _source(self, spec: str) -> dict[str, Any]:
        if not spec.startswith("arn:"):
            config = self.state.queues.get(spec)
            if config is None:
                return {"queue": {"type": "memory", "name": spec}}
            return {"queue": _queue_options(config)}
        arn = parse_arn(spec)
        if arn.service == "sqs":
            return {"queue": _queue_options(self.state.resolver.queue(spec))}
        if arn.service == "nats" and arn.resource.startswith("stream/"):
            return {"nats": {"stream": arn.resource.removeprefix("stream/")}}
        raise UnmappableArnError(
            f"eventbus cannot read from {spec}: pipe sources are SQS queues of the config (by ARN or name) "
            "and NATS streams (arn:eventbus:nats:REGION:ACCOUNT:stream/NAME)."
        )

    def _entry(self, name: str) -> PipeEntry:
        entry = self.entries.get(name)
        if entry is None:
            raise ApiError("NotFoundException", f"Pipe {name} does not exist.")
        return entry

    def _summary(self, entry: PipeEntry) -> dict[str, Any]:
        return {
            "Arn": entry.pipe.arn,
            "Name": entry.name,
            "DesiredState": entry.desired,
            "CurrentState": entry.pipe.state,
            "CreationTime": timestamp(entry.created),
            "LastModifiedTime": timestamp(entry.modified),
        }

    async def describe_pipe(self, params: dict[str, Any]) -> dict[str, Any]:
        entry = self._entry(params["Name"])
        described = entry.pipe.describe()
        request = entry.request
        out = {
            **self._summary(entry),
            "Description": described.get("Description") or None,
            "Source": described["Source"],
            "Target": described["Target"],
            "Enrichment": described.get("Enrichment"),
            "SourceParameters": request.get("SourceParameters") or _source_parameters(described),
            "EnrichmentParameters": request.get("EnrichmentParameters"),
            "TargetParameters": request.get("TargetParameters"),
            "RoleArn": request.get("RoleArn"),
            "Tags": request.get("Tags"),
            "LogConfiguration": {"Level": entry.pipe.config.log_level},
        }
        return {k: v for k, v in out.items() if v is not None}

    async def list_pipes(self, params: dict[str, Any]) -> dict[str, Any]:
        def keep(entry: PipeEntry) -> bool:
            return (
                entry.name.startswith(params.get("NamePrefix", ""))
                and params.get("DesiredState") in (None, entry.desired)
                and params.get("CurrentState") in (None, entry.pipe.state)
                and entry.pipe.source_arn.startswith(params.get("SourcePrefix", ""))
                and entry.pipe.target_arn.startswith(params.get("TargetPrefix", ""))
            )

        chunk, token = page([e for e in self.entries.values() if keep(e)], params, key=lambda e: e.name)
        pipes = []
        for entry in chunk:
            summary = {**self._summary(entry), "Source": entry.pipe.source_arn, "Target": entry.pipe.target_arn}
            if entry.pipe.enrichment_arn:
                summary["Enrichment"] = entry.pipe.enrichment_arn
            pipes.append(summary)
        return {"Pipes": pipes} | ({"NextToken": token} if token else {})

    async def start_pipe(self, params: dict[str, Any]) -> dict[str, Any]:
        entry = self._entry(params["Name"])
        try:
            await entry.pipe.start()
        except RuntimeError as exc:
            raise ApiError("ConflictException", f"Pipe {entry.name} cannot start now: {exc}") from None
        entry.desired, entry.modified = "RUNNING", datetime.now(UTC)
        self._save_state(entry)
        return self._summary(entry)

    async def stop_pipe(self, params: dict[str, Any]) -> dict[str, Any]:
        entry = self._entry(params["Name"])
        await entry.pipe.stop()
        entry.desired, entry.modified = "STOPPED", datetime.now(UTC)
        self._save_state(entry)
        return self._summary(entry)

    def _save_state(self, entry: PipeEntry) -> None:
        if entry.owner == "api":
            entry.request["DesiredState"] = entry.desired
            self.state.store.save("pipe", entry.name, entry.request)

    async def update_pipe(self, params: dict[str, Any]) -> dict[str, Any]:
        entry = self._entry(params["Name"])
        self._refuse_config(entry, "changed")
        merged = {**entry.request, **{k: v for k, v in params.items() if v is not None}}
        pipe = self._build(entry.name, merged)
        await self._retire(entry)
        fresh = PipeEntry(entry.name, pipe, merged, merged.get("DesiredState", "RUNNING"), "api", created=entry.created)
        await self._host(fresh)
        self.entries[entry.name] = fresh
        self.state.store.save("pipe", entry.name, merged)
        return self._summary(fresh)

    async def rebuild_using(self, arns: Collection[str]) -> None:
        """Build again the API's pipes whose target or enrichment is one of ``arns`` (an API
        destination that changed), as an UpdatePipe that changes nothing would."""
        wanted = set(arns)
        for entry in list(self.entries.values()):
            if entry.owner == "api" and wanted & {entry.request.get("Target"), entry.request.get("Enrichment")}:
                await self.update_pipe({"Name": entry.name})

    async def delete_pipe(self, params: dict[str, Any]) -> dict[str, Any]:
        entry = self._entry(params["Name"])
        self._refuse_config(entry, "deleted")
        await self._retire(entry)
        del self.entries[entry.name]
        self.state.store.delete("pipe", entry.name)
        return {**self._summary(entry), "DesiredState": "DELETED", "CurrentState": "DELETING"}

    def _refuse_config(self, entry: PipeEntry, verb: str) -> None:
        if entry.owner == "config":
            raise ApiError(
                "ConflictException",
                f"Pipe {entry.name} is declared in {entry.file} and cannot be {verb} through the API; "
                "edit the file instead (StartPipe and StopPipe work).",
            )

    async def _retire(self, entry: PipeEntry) -> None:
        if entry.stop is not None and entry.ended is not None:
            entry.stop.set()
            await entry.ended.wait()


def _queue_options(config: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"type": config.type}
    for key in ("name", "path", "max_size", "visibility_timeout"):
        value = getattr(config, key, None)
        if value is not None:
            options[key] = value
    return options


def _source_parameters(described: Mapping[str, Any]) -> dict[str, Any]:
    params = described.get("SourceParameters", {})
    out: dict[str, Any] = {}
    if params.get("FilterCriteria", {}).get("Filters"):
        out["FilterCriteria"] = params["FilterCriteria"]
    out["SqsQueueParameters"] = {
        "BatchSize": params.get("BatchSize"),
        "MaximumBatchingWindowInSeconds": int(params.get("MaximumBatchingWindowInSeconds", 0)),
    }
    return out


def _error(error: ApiError) -> Response:
    status = _STATUS.get(error.code, error.status)
    return Response(
        json.dumps({"message": error.message}),
        status_code=status,
        media_type="application/json",
        headers={"x-amzn-ErrorType": error.code},
    )
