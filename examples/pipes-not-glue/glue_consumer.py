"""BEFORE: the hand-written consumer that payments.yaml replaces (run: python glue_consumer.py)."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from eventbus import SqliteQueue

QUEUE = os.environ.get("PAYMENTS_QUEUE", "payments.db")
SERVICES = os.environ.get("SERVICES_URL", "http://127.0.0.1:8081")
OUT = Path(os.environ.get("PAYMENTS_OUT", "out"))
MAX_ATTEMPTS = 6
BIG = 1000

log = logging.getLogger("glue")


def append(name: str, item: Any) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / name, "a", encoding="utf-8") as file:
        file.write(json.dumps(item, separators=(",", ":")) + "\n")


async def post_with_retries(client: httpx.AsyncClient, url: str, body: Any) -> Any:
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            response = await client.post(url, json=body)
            if response.status_code < 500 and response.status_code != 429:
                response.raise_for_status()
                return response.json()
            error: Exception = RuntimeError(f"{url} answered {response.status_code}")
        except (httpx.TransportError, json.JSONDecodeError) as exc:
            error = exc
        except httpx.HTTPStatusError:
            raise  # a 4xx other than 429 will not get better
        if attempt == MAX_ATTEMPTS:
            raise error
        delay = random.uniform(0, min(10.0, 0.5 * 2 ** (attempt - 1)))
        log.warning("retrying %s in %.1f s: %s", url, delay, error)
        await anyio.sleep(delay)


def parse(body: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return None


async def handle(client: httpx.AsyncClient, payments: list[dict[str, Any]]) -> None:
    try:
        enriched = await post_with_retries(
            client, f"{SERVICES}/customers/enrich", [{"payment": p} for p in payments]
        )
    except Exception as exc:
        log.error("enrichment failed: %s", exc)
        for payment in payments:
            append("failed.jsonl", {"payment": payment, "error": str(exc)})
        return
    for payment in enriched:
        customer = payment.get("customer") or {}
        append(
            "ledger.jsonl",
            {"payment": payment["id"], "amount": payment["amount"], "customer": customer.get("name")},
        )
        if isinstance(payment.get("amount"), (int, float)) and payment["amount"] >= BIG:
            review = {"payment": payment["id"], "amount": payment["amount"], "tier": customer.get("tier")}
            try:
                await post_with_retries(client, f"{SERVICES}/reviews", review)
            except Exception as exc:
                log.error("review failed for %s: %s", payment["id"], exc)
                append("failed.jsonl", {"payment": payment, "error": str(exc)})


async def main() -> None:
    queue = SqliteQueue(QUEUE)
    stopping = anyio.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    async with httpx.AsyncClient(timeout=5) as client:
        while not stopping.is_set():
            messages = await queue.receive(max_messages=10, wait_seconds=1)
            wanted = []
            for message in messages:
                body = parse(message.body)
                if isinstance(body, dict) and body.get("type") == "payment.succeeded":
                    wanted.append(body)
            if wanted:
                started = time.monotonic()
                await handle(client, wanted)
                log.info("handled %d payment(s) in %.3f s", len(wanted), time.monotonic() - started)
            for message in messages:
                await queue.delete(message.receipt_handle)
    await queue.aclose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    anyio.run(main)
