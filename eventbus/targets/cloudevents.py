"""The ``cloudevents`` target: POST each event to an endpoint as a CloudEvent 1.0.

An event becomes a CloudEvent the way ``POST /cloudevents/{bus}`` reads one, backwards: ``id``,
``source`` and ``time`` as they are, ``detail-type`` as ``type``, ``detail`` as ``data``
(``application/json``), and the attributes kept under ``detail.cloudevents`` (``subject``,
extensions) as attributes again. A payload that is not an event (a rule's input transformer made
it) is the ``data`` of a CloudEvent whose ``id`` is the event's, whose ``source`` is the rule's
ARN (or the configured ``source``) and whose ``type`` is the configured ``type``.

``mode: binary`` puts the attributes in ``ce-`` headers (percent-encoded, as the HTTP binding
says) and the data in the body; ``mode: structured`` sends the whole CloudEvent as
``application/cloudevents+json``. Statuses are classified as the ``http`` target does (429 and
5xx retried, ``Retry-After`` honoured; other 4xx not).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import Field

from eventbus.errors import RetryableError, TargetTimeoutError
from eventbus.targets.base import DeliveryContext, TargetConfig
from eventbus.targets.http import HttpTarget, HttpTargetConfig

__all__ = ["EXTENSIONS_KEY", "CloudEventsTarget", "CloudEventsTargetConfig", "to_cloudevent"]

#: Where an event's ``detail`` keeps the CloudEvents attributes the envelope has no place for.
EXTENSIONS_KEY = "cloudevents"
_NAME = re.compile(r"^[a-z0-9]{1,20}$")
#: The HTTP binding percent-encodes space, double quote, percent and anything not printable ASCII.
_SAFE = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')


class CloudEventsTargetConfig(TargetConfig):
    """``endpoint``: where to POST; ``mode``: ``binary`` (``ce-`` headers) or ``structured``."""

    kind: ClassVar[str] = "cloudevents"

    endpoint: str = Field(pattern=r"^https?://")
    mode: Literal["binary", "structured"] = "binary"
    #: ``type`` of a CloudEvent made from a payload that is not an event.
    type: str = Field(default="eventbus.target-input", min_length=1)
    #: ``source`` of such a CloudEvent (default: the rule's or pipe's ARN).
    source: str | None = Field(default=None, min_length=1)
    timeout: float = Field(default=5.0, gt=0)
    header_parameters: dict[str, str] = Field(default_factory=dict)

    def build(self) -> CloudEventsTarget:
        return CloudEventsTarget(self)


class CloudEventsTarget:
    max_batch_size: int = 10
    per_payload_calls: bool = True

    def __init__(self, config: CloudEventsTargetConfig) -> None:
        self.config = config
        # The http target's client and status classification, without its JSON body and headers.
        self._http = HttpTarget(
            HttpTargetConfig(endpoint=config.endpoint, timeout=config.timeout, invocation_rate_limit_per_second=None)
        )

    def __repr__(self) -> str:
        return f"CloudEventsTarget({self.config.mode} {self._http.where})"

    async def deliver(self, payloads: Sequence[str], context: DeliveryContext) -> list[Any]:
        results = []
        for index, payload in enumerate(payloads):
            event_id = context.event_ids[index] if index < len(context.event_ids) else None
            attributes, data = to_cloudevent(payload, context, self.config, event_id)
            headers, body = _encode(attributes, data, self.config.mode)
            headers.update(self.config.header_parameters)
            results.append(await self._post(headers, body))
        return results

    async def _post(self, headers: dict[str, str], body: bytes) -> Any:
        import httpx

        client = self._http._get_client()
        try:
            response = await client.post(self._http.url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise TargetTimeoutError(f"POST {self._http.where} timed out after {self.config.timeout:g} seconds") from None
        except httpx.TransportError as exc:
            raise RetryableError(f"POST {self._http.where} failed: {type(exc).__name__}") from None
        return self._http._classify(response)

    async def aclose(self) -> None:
        await self._http.aclose()


def to_cloudevent(
    payload: str, context: DeliveryContext, config: CloudEventsTargetConfig, event_id: str | None = None
) -> tuple[dict[str, str], Any]:
    """``(attributes, data)`` of the CloudEvent a payload becomes."""
    try:
        value: Any = json.loads(payload)
    except ValueError:
        value = payload
    if isinstance(value, dict) and all(isinstance(value.get(k), str) for k in ("id", "source", "detail-type")):
        attributes = {"specversion": "1.0", "id": value["id"], "source": value["source"], "type": value["detail-type"]}
        if isinstance(value.get("time"), str):
            attributes["time"] = value["time"]
        data = value.get("detail", {})
        if isinstance(data, dict) and isinstance(data.get(EXTENSIONS_KEY), dict):
            extra = data[EXTENSIONS_KEY]
            data = {k: v for k, v in data.items() if k != EXTENSIONS_KEY}
            for name, item in extra.items():
                if _NAME.match(name) and name not in attributes and item is not None:
                    attributes[name] = item if isinstance(item, str) else json.dumps(item)
        return attributes, data
    attributes = {
        "specversion": "1.0",
        "id": event_id or (context.event_ids[0] if context.event_ids else str(uuid.uuid4())),
        "source": config.source or context.arn or "eventbus",
        "type": config.type,
    }
    return attributes, value


def _encode(attributes: dict[str, str], data: Any, mode: str) -> tuple[dict[str, str], bytes]:
    data_type = attributes.get("datacontenttype", "application/json")
    if mode == "structured":
        document: dict[str, Any] = {**attributes, "datacontenttype": data_type, "data": data}
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        return {"Content-Type": "application/cloudevents+json; charset=utf-8"}, body
    headers = {f"ce-{name}": quote(str(value), safe=_SAFE) for name, value in attributes.items() if name != "datacontenttype"}
    headers["Content-Type"] = data_type
    return headers, json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
