"""The two services both versions talk to: a customer directory and a fraud-review inbox.

Not part of either version (neither is counted): `python services.py` serves both on
127.0.0.1:8081 (`SERVICES_PORT` for another port).
"""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CUSTOMERS = {
    "c-1": {"name": "Ada Lovelace", "tier": "gold"},
    "c-2": {"name": "Grace Hopper", "tier": "silver"},
}
UNKNOWN = {"name": None, "tier": "unknown"}

#: What the review inbox received, in order (GET /reviews shows it).
REVIEWS: list[Any] = []


async def enrich(request: Request) -> JSONResponse:
    """Pipes' HTTP enrichment contract: a JSON array in (``{"payment": ...}`` items), a JSON array
    out, one payment an item, its customer filled in."""
    payments = [item["payment"] for item in await request.json()]
    return JSONResponse(
        [{**p, "customer": {"id": p["customer"], **CUSTOMERS.get(p["customer"], UNKNOWN)}} for p in payments]
    )


async def review(request: Request) -> JSONResponse:
    REVIEWS.append(await request.json())
    return JSONResponse({"queued": len(REVIEWS)}, status_code=202)


async def reviews(request: Request) -> JSONResponse:
    return JSONResponse(REVIEWS)


app = Starlette(
    routes=[
        Route("/customers/enrich", enrich, methods=["POST"]),
        Route("/reviews", review, methods=["POST"]),
        Route("/reviews", reviews, methods=["GET"]),
    ]
)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("SERVICES_PORT", "8081")), log_level="warning")
