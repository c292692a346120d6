"""The function of orders.yaml: prices orders from a catalogue.

It is the pipe's enrichment, so it gets the batch of webhook records (each ``body`` the JSON text
that was POSTed) and answers one event for each, which the pipe puts on the shop bus.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

#: The catalogue: what a unit of each product costs. Clients send quantities, never prices.
PRICES = {"tea": Decimal("4.50"), "mug": Decimal("12.00"), "biscuits": Decimal("2.25")}

SOURCE = "shop.api"


def price(order: dict[str, Any]) -> dict[str, Any]:
    """One order → an ``OrderPriced`` event, or ``OrderRejected`` saying why."""
    lines = order.get("lines")
    if not isinstance(lines, list) or not lines:
        return rejected(order, "an order needs at least one line")
    total = Decimal(0)
    priced = []
    for line in lines:
        sku, quantity = line.get("sku"), line.get("quantity")
        if sku not in PRICES:
            return rejected(order, f"unknown product {sku!r}")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            return rejected(order, f"{sku}: the quantity must be a whole number of at least 1")
        amount = PRICES[sku] * quantity
        priced.append({"sku": sku, "quantity": quantity, "amount": float(amount)})
        total += amount
    detail = {
        "id": str(order["id"]),
        "customer": order.get("customer"),
        "lines": priced,
        "total": float(total),
    }
    return {"source": SOURCE, "detail-type": "OrderPriced", "detail": detail}


def rejected(order: dict[str, Any], reason: str) -> dict[str, Any]:
    return {
        "source": SOURCE,
        "detail-type": "OrderRejected",
        "detail": {"id": str(order.get("id")), "reason": reason},
    }


def price_orders(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [price(json.loads(record["body"])) for record in records]
