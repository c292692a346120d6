"""How a target's answer becomes an HTTP response, and how events are framed on a stream.

The body is the answer as JSON (``application/json``), whatever the target's kind: a function's
return value, an ``http`` target's response body (parsed when it is JSON, a JSON string
otherwise), a generator function's chunks joined (strings) or listed; kinds that answer nothing
(``queue``, ``log``, ``file``, ``sql``...) answer ``null``. Two answers are sent as they are:
``bytes`` (``application/octet-stream``), and a mapping with an integer ``statusCode``, which is
Lambda's proxy response (API Gateway, function URLs): ``statusCode``, ``headers``, ``body`` (a
string) and ``isBase64Encoded``. A job's ``result`` is the same value as JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from starlette.responses import Response

from eventbus.server.invoke.refusals import Refusal

__all__ = ["encode_value", "response_of", "sse", "value_json"]

JSON = "application/json"


def value_json(value: Any) -> str:
    """``value`` as JSON text, or a 502 ``Refusal`` when it is not JSON (a set, an object)."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise Refusal(502, "AnswerNotJson", f"The target's answer cannot be written as JSON: {exc}") from None


def encode_value(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return value_json(value).encode()


def response_of(value: Any, headers: dict[str, str] | None = None) -> Response:
    """The HTTP response for a target's answer (see the module's docstring)."""
    extra = dict(headers or {})
    if isinstance(value, bytes | bytearray):
        return Response(bytes(value), 200, extra, "application/octet-stream")
    if isinstance(value, dict) and isinstance(value.get("statusCode"), int) and not isinstance(
        value["statusCode"], bool
    ):
        return _proxy(value, extra)
    if not extra:
        return _json_response(encode_value(value))
    return Response(encode_value(value), 200, extra, JSON)


class _JsonResponse(Response):
    media_type = JSON


def _json_response(body: bytes) -> Response:
    """A 200 JSON response with its two headers written directly (Starlette's constructor looks
    through the headers it is given; there are none)."""
    response = _JsonResponse.__new__(_JsonResponse)
    response.status_code = 200
    response.background = None
    response.body = body
    response.raw_headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    return response


def _proxy(value: dict[str, Any], extra: dict[str, str]) -> Response:
    status = value["statusCode"]
    if not 100 <= status <= 599:
        raise Refusal(502, "InvalidProxyAnswer", f"statusCode {status} is not an HTTP status (100 to 599).")
    headers = value.get("headers")
    headers = {} if headers is None else headers
    if not isinstance(headers, dict):
        raise Refusal(502, "InvalidProxyAnswer", "headers must be a mapping of names to values.")
    body = value.get("body", "")
    if body is None:
        body = ""
    if not isinstance(body, str):
        # Lambda's proxy integration wants a string; an object is written as JSON, as a
        # function URL does with a return value that is not a proxy answer.
        body = value_json(body)
    raw: bytes
    if value.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise Refusal(502, "InvalidProxyAnswer", "isBase64Encoded is true but body is not base64.") from None
    else:
        raw = body.encode()
    # The length is the body's as sent here, whatever the function said.
    merged = {str(k): str(v) for k, v in headers.items() if str(k).lower() != "content-length"}
    lowered = {k.lower() for k in merged}
    media = None if "content-type" in lowered else JSON
    merged.update(extra)
    return Response(raw, status, merged, media)


def sse(event: str, data: Any) -> bytes:
    """One server-sent event: ``event: NAME`` and its data as one line of JSON."""
    return f"event: {event}\ndata: {value_json(data)}\n\n".encode()
