"""``make demo``: run examples/quickstart.yaml end to end and show where each event went.

It starts a small HTTP receiver on 127.0.0.1 (a free port) for the HTTP target, points the file
target at a temporary folder, starts the orders bus from the config, puts sample orders, waits
for delivery and prints every delivery, what the receiver got and the archived lines. The bus
runs on the embedded default of ``eventbus run``: a SQLite state file (in the temporary folder).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import anyio

from eventbus.config import Delivered, Runtime, load_config
from eventbus.config.backends import SqliteBackend
from eventbus.config.entries import to_entry

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
QUICKSTART = EXAMPLES / "quickstart.yaml"

SAMPLE_EVENTS: list[dict[str, Any]] = [
    {"source": "shop", "detail-type": "OrderPlaced", "detail": {"id": "o-1", "total": 20, "customer": "ada"}},
    {"source": "shop", "detail-type": "OrderPlaced", "detail": {"id": "o-2", "total": 250, "customer": "grace"}},
    {"source": "shop", "detail-type": "OrderCancelled", "detail": {"id": "o-1"}},
    {"source": "warehouse", "detail-type": "StockLow", "detail": {"sku": "s-9"}},
]


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8")
        type(self).received.append(json.loads(body) if body else None)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, format: str, *args: Any) -> None:
        return None


async def _run(environ: dict[str, str], state: Path) -> dict[str, list[str]]:
    went: dict[str, list[str]] = defaultdict(list)

    def observe(delivery: Delivered) -> None:
        for event_id in delivery.context.event_ids:
            went[event_id].append(delivery.address)

    # The embedded default of `eventbus run`: events and deliveries in a SQLite state file.
    runtime = Runtime([load_config(QUICKSTART, environ)], observe=observe, backend=SqliteBackend(path=str(state)))
    async with runtime:
        response = await runtime.bus("orders").put_events([to_entry(e) for e in SAMPLE_EVENTS])
        await runtime.wait_idle(15)
    print(f"PutEvents: FailedEntryCount={response['FailedEntryCount']}")
    for event, result in zip(SAMPLE_EVENTS, response["Entries"], strict=True):
        label = f"{event['source']}/{event['detail-type']} {json.dumps(event['detail'])}"
        targets = went.get(result.get("EventId", ""), [])
        print(f"  {label}")
        print(f"      -> {', '.join(sorted(targets)) if targets else 'no rule matched'}")
    return went


def main() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory(prefix="eventbus-demo-") as out:
            environ = {
                **os.environ,
                "QUICKSTART_HTTP_PORT": str(server.server_address[1]),
                "QUICKSTART_OUT": out,
            }
            print(f"config: {QUICKSTART.relative_to(EXAMPLES.parent)}")
            state = Path(out) / "quickstart.db"
            print(f"state file (SQLite, as `eventbus run` keeps it): {state.name}")
            anyio.run(_run, environ, state)
            print(f"HTTP receiver on 127.0.0.1:{server.server_address[1]} got:")
            for body in _Receiver.received:
                print(f"  {json.dumps(body)}")
            archive = Path(out) / "orders.jsonl"
            lines = archive.read_text(encoding="utf-8").splitlines() if archive.exists() else []
            print(f"archive file got {len(lines)} line(s)")
            functions = sys.modules.get("quickstart_functions")
            acknowledged = getattr(functions, "ACKNOWLEDGED", [])
            print(f"function acknowledged: {', '.join(sorted(acknowledged)) or 'nothing'}")
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
