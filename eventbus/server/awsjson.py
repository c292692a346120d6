"""AWS JSON 1.1, the protocol of EventBridge's API: ``POST /`` with ``X-Amz-Target:
AWSEvents.<Operation>`` and a JSON object body, answered with a JSON object or with
``{"__type": CODE, "message": ...}`` and status 400 (500 for ``InternalException``).

Anything a client gets wrong on the wire is answered the same way, never with a traceback: an
unknown operation (``UnknownOperationException``), a body that is not a JSON object or a content
type that is not JSON (``SerializationException``), an input that does not fit the operation's
documented shape (``ValidationException``, from the botocore model).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from eventbus._logger import get_logger
from eventbus.server.errors import ApiError, from_library
from eventbus.server.model import ServiceModel

__all__ = ["CONTENT_TYPE", "Handler", "dispatch", "error_response", "json_response", "read_json"]

_log = get_logger("eventbus.server")

CONTENT_TYPE = "application/x-amz-json-1.1"
#: Content types a JSON body may come with (the SDKs send the first).
JSON_TYPES = frozenset({CONTENT_TYPE, "application/x-amz-json-1.0", "application/json"})

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def json_response(body: Mapping[str, Any] | None, *, status: int = 200, request_id: str | None = None) -> Response:
    return Response(
        _encode(dict(body or {})),
        status_code=status,
        media_type=CONTENT_TYPE,
        headers={"x-amzn-RequestId": request_id or str(uuid.uuid4())},
    )


def error_response(error: ApiError, *, request_id: str | None = None) -> Response:
    return json_response(
        {"__type": error.code, "message": error.message}, status=error.status, request_id=request_id
    )


def read_json(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The request body as a JSON object; ``SerializationException`` otherwise."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in JSON_TYPES:
        raise ApiError(
            "SerializationException",
            f"Content-Type {media or '(none)'} is not supported: send {CONTENT_TYPE}.",
        )
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except RecursionError:
        raise ApiError("SerializationException", "The request body is nested too deeply to read.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError("SerializationException", f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise ApiError("SerializationException", "The request body must be a JSON object.")
    return value


async def dispatch(
    request: Request,
    body: bytes,
    model: ServiceModel,
    handlers: Mapping[str, Handler],
    on_answer: Callable[[str, str], None] | None = None,
) -> Response:
    """Answer one JSON 1.1 request: find the operation, check its input, run its handler."""
    request_id = str(uuid.uuid4())
    operation = "-"
    try:
        target = request.headers.get("x-amz-target", "")
        prefix, _, operation = target.partition(".")
        if prefix != model.metadata["targetPrefix"] or not operation:
            operation = "-"
            raise ApiError(
                "UnknownOperationException",
                f"X-Amz-Target {target or '(missing)'} names no operation; "
                f"send {model.metadata['targetPrefix']}.<Operation>.",
            )
        if operation not in model.operations:
            raise ApiError("UnknownOperationException", f"Unknown operation {operation}.")
        handler = handlers.get(operation)
        if handler is None:
            raise ApiError(
                "UnknownOperationException",
                f"Operation {operation} is part of the EventBridge API but not served by eventbus.",
            )
        params = read_json(body, request.headers.get("content-type"))
        model.check_input(operation, params)
        result = await handler(params)
        response = json_response(result, request_id=request_id)
        code = "OK"
    except ApiError as exc:
        response, code = error_response(exc, request_id=request_id), exc.code
    except Exception as exc:
        error = from_library(exc)
        if error.code == "InternalException":
            _log.error("request failed", operation=operation, error=f"{type(exc).__name__}: {exc}")
        response, code = error_response(error, request_id=request_id), error.code
    if on_answer is not None:
        on_answer(operation, code)
    return response
