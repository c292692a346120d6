"""An HTTP receiver for the JetStream tests: records each event id it is sent and by which worker."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Receiver:
    """An ASGI app: ``POST /<path>`` with an event records ``(path, id, X-Worker)``."""

    delay: float = 0.0
    got: list[tuple[str, str, str]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if self.delay:
            await asyncio.sleep(self.delay)
        try:
            event_id = str(json.loads(body)["id"])
        except (ValueError, KeyError, TypeError):
            # A request cut short (its worker was killed while sending): nothing was delivered.
            status = 400
        else:
            self.got.append((scope["path"], event_id, headers.get("x-worker", "")))
            status = 200
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    def ids(self, path: str = "/events") -> Counter[str]:
        return Counter(event_id for p, event_id, _ in list(self.got) if p == path)

    def by_worker(self, path: str = "/events") -> Counter[str]:
        return Counter(worker for p, _, worker in list(self.got) if p == path)
