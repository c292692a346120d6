"""The function map.yaml runs over every row: a stand-in for a call that waits (a model, an API).

It does no work worth the name; it waits ``MAP_DELAY`` seconds (10 ms by default), as a remote
call would, so what a run measures is how many rows are in flight at once, not the CPU.
"""

from __future__ import annotations

import os

import anyio

DELAY = float(os.environ.get("MAP_DELAY", "0.010"))


async def score(row: dict[str, str]) -> dict[str, object]:
    """A CSV row (every column a string) → its score; a negative amount is refused."""
    await anyio.sleep(DELAY)
    amount = float(row["amount"])
    if amount < 0:
        raise ValueError(f"a negative amount: {row['amount']}")
    return {"id": int(row["id"]), "country": row["country"], "score": round(amount * 1.21, 2)}
